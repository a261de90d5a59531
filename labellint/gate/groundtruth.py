"""The ground truth of an evaluation, read by one backend, and what checks need to know about it.

hotcoco reads a file with typed fields and refuses what pycocotools never looks at: a Roboflow
export's ``"year": "2020"``, a license id written as a string, an int ``supercategory``. When it
refuses a file, the file is read again keeping only what evaluation reads (``_evaluated_fields``)
and given to hotcoco as a dict; if hotcoco still refuses it (a fractional or negative annotation
id, say), ``load_ground_truth(..., fallback=True)`` reads it with pycocotools, the reference,
and says so in its ``notes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from labellint.errors import InputError, LabellintError
from labellint.gate import predictions as predictions_mod
from labellint.gate.backends import BACKENDS, _hotcoco, _printable, _quiet, _refused
from labellint.gate.predictions_check import GroundTruthIndex


@dataclass
class GroundTruth:
    """A ground-truth file loaded for one backend, and what checks need to know about it."""

    path: str
    backend: str
    coco: object  # hotcoco.COCO or pycocotools.coco.COCO
    index: GroundTruthIndex
    category_names: dict  # id -> name
    gt_counts: dict  # category id -> number of non-crowd boxes
    has_id_zero: bool
    sha256: str = ""
    notes: list = field(default_factory=list)  # how the file was read, when not as asked


def _read_json(path: Path) -> dict:
    doc = predictions_mod.read_json(path, missing="ground-truth file not found")
    if not isinstance(doc, dict) or "images" not in doc or "annotations" not in doc:
        raise InputError("not a COCO ground-truth file (needs 'images', 'annotations' and 'categories')", str(path))
    return doc


_IMAGE_FIELDS = ("id", "width", "height", "file_name")
_CATEGORY_FIELDS = ("id", "name", "supercategory")
_ANNOTATION_FIELDS = ("id", "image_id", "category_id", "bbox", "area", "iscrowd", "segmentation")


def _number(v):
    """A width or height as a finite number, or None: a numeric string is its number (a whole one an int)."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            return None
        if math.isfinite(v) and v.is_integer():
            return int(v)
    if isinstance(v, float) and math.isfinite(v):
        return v
    return None


def _evaluated_fields(doc: dict) -> dict:
    """The document with only what a bbox or segm evaluation reads, each in the type hotcoco takes.

    Dropped: ``info``, ``licenses`` and every other top-level key, an image's license, dates and
    URLs, keypoint fields and any extra key of an entry. Kept as given (hotcoco judges them): ids,
    boxes, areas, segmentations. A null ``iscrowd`` is left out, as a missing one is (not a crowd);
    a category's ``name`` becomes a string. Entries that are not objects are kept, for hotcoco to
    refuse."""

    def section(key, fields, fix=None):
        value = doc.get(key)
        if not isinstance(value, list):
            return value
        out = []
        for entry in value:
            if isinstance(entry, dict):
                entry = {k: entry[k] for k in fields if k in entry}
                if fix is not None:
                    fix(entry)
            out.append(entry)
        return out

    def image(e):
        for k in ("width", "height"):
            if k in e and _number(e[k]) is None:
                del e[k]
            elif k in e:
                e[k] = _number(e[k])
        if not isinstance(e.get("file_name", ""), str):
            del e["file_name"]

    def category(e):
        if "name" in e and not isinstance(e["name"], str):
            e["name"] = str(e["name"])
        if "supercategory" in e and not isinstance(e["supercategory"], str):
            del e["supercategory"]

    def annotation(e):
        if "iscrowd" in e and e["iscrowd"] is None:
            del e["iscrowd"]

    out = {"images": section("images", _IMAGE_FIELDS, image),
           "annotations": section("annotations", _ANNOTATION_FIELDS, annotation)}
    if "categories" in doc:
        out["categories"] = section("categories", _CATEGORY_FIELDS, category)
    return out


def load_ground_truth(path: str | Path, backend: str = "hotcoco", fallback: bool = False) -> GroundTruth:
    """The ground truth, read by ``backend``. hotcoco gets the file's evaluated fields when it refuses
    the file as it is; with ``fallback``, what it still refuses is read by pycocotools (see ``notes``)."""
    path = Path(path)
    if backend not in BACKENDS:
        raise LabellintError(f"unknown backend {backend!r} (use {' or '.join(BACKENDS)})")
    if backend == "pycocotools":
        return _load_pycocotools(path, _read_json(path))
    hotcoco = _hotcoco()
    if not path.is_file():
        _read_json(path)  # raises the one-line error
    try:
        coco = hotcoco.COCO(str(path))
    except BaseException as first:  # hotcoco raises ValueError/RuntimeError with a message
        if not _refused(first):
            raise
        doc = _read_json(path)  # a file that is not JSON gets the line and column here
        try:
            with _quiet():
                coco = hotcoco.COCO(_evaluated_fields(doc))
        except BaseException as exc:
            if not _refused(exc):
                raise
            if not fallback:
                raise InputError(f"cannot load as COCO ground truth: {_printable(exc)}", str(path)) from None
            gt = _load_pycocotools(path, doc)
            gt.notes.append(f"hotcoco cannot read this ground truth ({_printable(exc)}): evaluated with pycocotools, "
                            "the reference implementation")
            return gt
        del doc
    try:
        img_ids = np.asarray(coco.get_img_ids(), np.int64)
        imgs = coco.load_imgs(img_ids.tolist()) if len(img_ids) else []
        cat_ids = sorted(coco.get_cat_ids())
        cats = coco.load_cats(cat_ids) if cat_ids else []
        ann_ids = coco.get_ann_ids()
        counts = {c: len(coco.get_ann_ids(cat_ids=[c], iscrowd=False)) for c in cat_ids}
    except Exception as exc:
        raise InputError(f"cannot index as COCO ground truth: {_printable(exc)}", str(path)) from None
    return _ground_truth(path, "hotcoco", coco, img_ids, imgs, cat_ids, cats, counts, ann_ids)


def _load_pycocotools(path: Path, doc: dict) -> GroundTruth:
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = doc
    try:
        with _quiet():
            coco.createIndex()
    except Exception as exc:
        raise InputError(f"cannot index as COCO ground truth: {type(exc).__name__}: {_printable(exc)}",
                         str(path)) from None
    try:
        # pycocotools indexes ids of any hashable type; predictions carry integers
        by_id = sorted(((_integer_id(i, "image"), im) for i, im in coco.imgs.items()), key=lambda t: t[0])
        img_ids = np.asarray([i for i, _ in by_id], np.int64)
        imgs = [im for _, im in by_id]
        cats = sorted(coco.cats.values(), key=lambda c: _integer_id(c["id"], "category"))
        cat_ids = [_integer_id(c["id"], "category") for c in cats]
        ann_ids = [a["id"] for a in doc["annotations"]]  # createIndex has read each one
        counts = {c: 0 for c in cat_ids}
        for a in doc["annotations"]:
            cid = a.get("category_id")
            if not a.get("iscrowd", 0) and _is_id(cid) and int(cid) in counts:
                counts[int(cid)] += 1
    except InputError as exc:
        raise InputError(exc.message, str(path)) from None
    except Exception as exc:
        raise InputError(f"cannot index as COCO ground truth: {type(exc).__name__}: {_printable(exc)}",
                         str(path)) from None
    return _ground_truth(path, "pycocotools", coco, img_ids, imgs, cat_ids, cats, counts, ann_ids)


def _is_id(v) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())


def _integer_id(v, what: str) -> int:
    if not _is_id(v) or not -(2 ** 63) <= v < 2 ** 63:
        raise InputError(f"{what} id {_printable(repr(v)[:60])} is not a 64-bit integer, so no prediction can "
                         "refer to it")
    return int(v)


def _shared_id(ann_ids: list):
    """An annotation id that two annotations carry, or None."""
    seen = set()
    for a in ann_ids:
        if a in seen:
            return a
        seen.add(a)
    return None


def _ground_truth(path, backend, coco, img_ids, imgs, cat_ids, cats, counts, ann_ids) -> GroundTruth:
    # both libraries look a ground-truth box up by its id while matching: of two boxes with one id,
    # one is counted twice and the other never, and the numbers come out wrong without a word
    shared = _shared_id(ann_ids)
    if shared is not None:
        missing = " (or have none: hotcoco reads a missing id as 0)" if shared == 0 and backend == "hotcoco" else ""
        raise InputError(f"two annotations have the id {_printable(repr(shared)[:60])}{missing}: COCO evaluation "
                         "looks boxes up by id, so its numbers would be wrong; give each annotation its own id",
                         str(path))
    order = np.argsort(img_ids, kind="stable")
    widths = np.array([_float_or_nan(im.get("width")) for im in imgs], np.float64)
    heights = np.array([_float_or_nan(im.get("height")) for im in imgs], np.float64)
    index = GroundTruthIndex(str(path), img_ids[order], widths[order] if len(imgs) else widths,
                             heights[order] if len(imgs) else heights, np.asarray(cat_ids, np.int64))
    names = {int(c["id"]): str(c.get("name", c["id"])) for c in cats}
    has_id_zero = any(a == 0 and not isinstance(a, bool) for a in ann_ids)
    return GroundTruth(str(path), backend, coco, index, names, counts, has_id_zero)


def _float_or_nan(v) -> float:
    """An image's width or height for the predictions' checks: nan when missing or not a number."""
    v = _number(v)
    return float(v) if v else np.nan
