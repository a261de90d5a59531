"""The training data of ``labellint train``: the COCO files read into samples, and the images
(with their masks) as a torch dataset."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labellint.errors import InputError
from labellint.gate.predictions import read_json


def read_coco(path: str | Path) -> dict:
    p = Path(path)
    doc = read_json(p, hint=" (run `labellint check` on it)")
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) or \
            not isinstance(doc.get("categories"), list):
        raise InputError("not a COCO file with 'images' and 'categories' lists", str(p))
    if not isinstance(doc.get("annotations", []), list):
        raise InputError("'annotations' is not a list", str(p))
    return doc


@dataclass
class CategoryMap:
    """Category ids, whatever their values (0, 7, 1000), to the model's labels 1..K and back."""

    ids: list  # category id of label k+1 at position k
    names: list

    @classmethod
    def from_coco(cls, doc: dict, path: str) -> CategoryMap:
        cats = {}
        for c in doc["categories"]:
            if not isinstance(c, dict) or not _is_int(c.get("id")):
                raise InputError(f"category {c!r} has no integer id", path)
            if c["id"] in cats:
                raise InputError(f"category id {c['id']} appears twice", path)
            cats[c["id"]] = str(c.get("name", c["id"]))
        if not cats:
            raise InputError("no categories: nothing to train", path)
        ids = sorted(cats)
        return cls(ids, [cats[i] for i in ids])

    def label(self) -> dict:
        return {cid: k + 1 for k, cid in enumerate(self.ids)}

    def category(self, label: int) -> int:
        return self.ids[label - 1]

    def to_json(self) -> list:
        return [{"label": k + 1, "category_id": cid, "name": n} for k, (cid, n) in enumerate(zip(self.ids, self.names))]


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass
class Sample:
    image_id: int
    path: Path
    width: float
    height: float
    boxes: np.ndarray  # (n, 4) x1, y1, x2, y2
    labels: np.ndarray  # (n,) int64 model labels
    segmentations: list  # per box: polygons / RLE / None


def samples(doc: dict, path: str, root: Path, cmap: CategoryMap, need_masks: bool = False,
            for_training: bool = True) -> tuple[list[Sample], dict]:
    """Images with their usable boxes, and counts of what was left out and why."""
    from labellint import images as images_mod

    label = cmap.label()
    skipped: dict[str, int] = {}

    def skip(reason):
        skipped[reason] = skipped.get(reason, 0) + 1

    by_image: dict = {}
    if for_training:
        for a in doc.get("annotations", []):
            if not isinstance(a, dict):
                skip("not an object")
                continue
            if a.get("iscrowd") in (1, True):
                skip("crowd regions")
                continue
            if a.get("category_id") not in label:
                skip("unknown category")
                continue
            box = a.get("bbox")
            if not (isinstance(box, list) and len(box) == 4 and all(_is_num(v) for v in box)):
                skip("no valid bbox")
                continue
            by_image.setdefault(a.get("image_id") if _is_int(a.get("image_id")) else None, []).append(a)
        orphans = by_image.pop(None, [])
        if orphans:
            skipped["image_id not an integer"] = len(orphans)
    out = []
    seen = set()
    for im in doc["images"]:
        if not isinstance(im, dict) or not _is_int(im.get("id")):
            skip("images without an integer id")
            continue
        if im["id"] in seen:
            skip("images with a duplicated id")
            continue
        seen.add(im["id"])
        p, why = images_mod.resolve(root, im.get("file_name"))
        if p is None:
            raise InputError(f"image {im['id']}: {why}", path)
        w = float(im["width"]) if _is_num(im.get("width")) else float("nan")
        h = float(im["height"]) if _is_num(im.get("height")) else float("nan")
        boxes, labels, segs = [], [], []
        for a in by_image.pop(im["id"], []):
            x, y, bw, bh = (float(v) for v in a["bbox"])
            x1, y1, x2, y2 = x, y, x + bw, y + bh
            if math.isfinite(w) and math.isfinite(h):  # clip to the image, as annotation tools do
                x1, x2 = min(max(x1, 0.0), w), min(max(x2, 0.0), w)
                y1, y2 = min(max(y1, 0.0), h), min(max(y2, 0.0), h)
            if not (x2 - x1 >= 1 and y2 - y1 >= 1 and math.isfinite(x2 + y2)):  # nan and inf fail too
                skip("empty or outside the image")
                continue
            boxes.append((x1, y1, x2, y2))
            labels.append(label[a["category_id"]])
            segs.append(a.get("segmentation") if need_masks else None)
        out.append(Sample(im["id"], p, w, h, np.asarray(boxes, np.float32).reshape(-1, 4),
                          np.asarray(labels, np.int64), segs))
    leftover = sum(len(v) for v in by_image.values())
    if leftover:
        skipped["unknown image"] = skipped.get("unknown image", 0) + leftover
    return out, skipped


def load_rgb(sample: Sample):
    """The picture as an RGB PIL image (EXIF rotation applied when the JSON size is the rotated one)."""
    from PIL import ImageOps

    from labellint import images as images_mod

    data, failed = images_mod.read_file(sample.path)  # a regular file within the size limit, or why not
    if data is None:
        raise InputError(f"image {sample.image_id} ({sample.path}): {failed.message or failed.status}")
    info, im = images_mod.decode(data, images_mod.DEFAULT_MAX_PIXELS)
    if im is None:
        raise InputError(f"image {sample.image_id} ({sample.path}): {info.message}")
    if images_mod.exif_applies(info, sample.width, sample.height):
        im = ImageOps.exif_transpose(im)
    return images_mod.to_rgb(im) if im.mode != "RGB" else im


def _masks(sample: Sample, h: int, w: int):
    from pycocotools import mask as mask_utils

    from labellint.fix.values import raster_polygons, valid_polygons

    out = np.zeros((len(sample.labels), h, w), np.uint8)
    for k, seg in enumerate(sample.segmentations):
        x1, y1, x2, y2 = (int(round(v)) if np.isfinite(v) else 0 for v in np.clip(sample.boxes[k], -1, max(h, w) + 1))
        try:
            if isinstance(seg, list) and seg:
                # pycocotools would trace a point at 1e9 for gigabytes: polygons cut to the image first
                polys = raster_polygons(valid_polygons(seg), h, w)
                rle = mask_utils.merge(mask_utils.frPyObjects(polys, h, w)) if polys else None
            elif isinstance(seg, dict) and "counts" in seg and seg.get("size") == [h, w]:  # never a mask of another size
                rle = mask_utils.frPyObjects(seg, h, w) if isinstance(seg["counts"], list) else seg
            else:
                rle = None
            if rle is not None:
                with warnings.catch_warnings():  # pycocotools under numpy 2 warns about __array__(copy=)
                    warnings.simplefilter("ignore", DeprecationWarning)
                    out[k] = mask_utils.decode(rle)[:h, :w]
                continue
        except Exception:
            pass
        out[k, y1:y2, x1:x2] = 1  # no usable segmentation: the box stands for the mask
    return out


class _Images:
    """A torch Dataset of (image tensor, target) pairs; flips are applied by the training loop."""

    def __init__(self, items: list[Sample], masks: bool):
        self.items = items
        self.masks = masks

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        import torch

        s = self.items[i]
        im = load_rgb(s)
        x = torch.from_numpy(np.array(im, np.uint8)).permute(2, 0, 1).float().div_(255)
        target = {"boxes": torch.from_numpy(s.boxes.copy()), "labels": torch.from_numpy(s.labels.copy())}
        if self.masks:
            target["masks"] = torch.from_numpy(_masks(s, x.shape[1], x.shape[2]))
        return x, target


def _collate(batch):
    return batch


def _hflip(x, target):
    w = x.shape[-1]
    x = x.flip(-1)
    target = dict(target)
    boxes = target["boxes"].clone()
    boxes[:, [0, 2]] = w - target["boxes"][:, [2, 0]]
    target["boxes"] = boxes
    if "masks" in target:
        target["masks"] = target["masks"].flip(-1)
    return x, target
