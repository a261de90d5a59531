"""COCO results files ("predictions"): read fast, check against a ground truth, one-line errors.

The COCO results format is a JSON list of detections::

    [{"image_id": 42, "category_id": 18, "bbox": [x, y, width, height], "score": 0.87}, ...]

with ``segmentation`` (RLE or polygons) instead of, or besides, ``bbox`` for mask results.
Reading is a typed msgspec decode into columns; any odd entry makes it fall back to a generic
decode that names the first bad detection, so a user gets ``detection 12: no "score"`` rather
than a traceback.
"""

from __future__ import annotations

import gc
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain
from operator import attrgetter
from pathlib import Path

import msgspec
import numpy as np

from labellint.errors import InputError

_NAN = float("nan")


def read_json(path: str | Path, missing: str = "file not found", hint: str = ""):
    """A JSON file's value, or a one-line InputError (not found, unreadable, not valid JSON)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError(missing, str(p)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", str(p)) from None
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise _json_error(data, exc, str(p), hint) from None


def _json_error(data: bytes, exc: msgspec.DecodeError, path: str, hint: str = "") -> InputError:
    """msgspec's "(byte N)" turned into the file's line and column."""
    from labellint.coco.positions import offset_to_line_column

    m = re.search(r"\(byte (\d+)\)", str(exc))
    offset = min(int(m.group(1)) if m else len(data), len(data))
    line, col = offset_to_line_column(data, offset)
    reason = str(exc).split(" (byte")[0].replace("JSON is malformed: ", "")
    return InputError(f"not valid JSON: {reason}{hint}", path, line, col)


class _Det(msgspec.Struct, gc=False):
    image_id: int
    category_id: int
    score: float
    bbox: tuple[float, float, float, float] | None = None  # the decoder checks there are four
    segmentation: msgspec.Raw = msgspec.Raw()


_decoder = msgspec.json.Decoder(list[_Det])


@dataclass(eq=False)
class Predictions:
    """Detections as columns. Row ``i`` is the ``i``-th detection of the file."""

    path: str
    image_id: np.ndarray  # int64
    category_id: np.ndarray  # int64
    bbox: np.ndarray  # (n, 4) float64 x, y, w, h; nan where the detection has no box
    score: np.ndarray  # float64
    segmentation: list | None = None  # raw JSON bytes per detection (b"" where absent), or None
    cache: dict = field(default_factory=dict, repr=False)  # per-dataset work shared by rules

    def __len__(self) -> int:
        return len(self.image_id)

    def __bool__(self) -> bool:  # an empty file is still "given" (rules then find nothing)
        return True

    @property
    def has_boxes(self) -> bool:
        return len(self) == 0 or bool(np.isfinite(self.bbox).all())

    @property
    def has_segmentation(self) -> bool:
        return self.segmentation is not None and all(len(s) for s in self.segmentation)

    def as_array(self) -> np.ndarray:
        """``(n, 7)`` rows ``[image_id, x, y, w, h, score, category_id]`` (the loadRes array form)."""
        return np.column_stack([self.image_id.astype(np.float64), self.bbox, self.score,
                                self.category_id.astype(np.float64)])

    def segmentations(self) -> list:
        """Decoded segmentation of every detection (RLE dicts or polygon lists)."""
        if self.segmentation is None:
            raise InputError("the predictions have no segmentation (mask results are needed for --iou-type segm)",
                             self.path)
        decode = msgspec.json.decode
        return [decode(s) for s in self.segmentation]

    def as_dicts(self, with_bbox: bool = True, with_segmentation: bool = False) -> list[dict]:
        out = []
        segs = self.segmentations() if with_segmentation else None
        for i in range(len(self)):
            d = {"image_id": int(self.image_id[i]), "category_id": int(self.category_id[i]),
                 "score": float(self.score[i])}
            if with_bbox and np.isfinite(self.bbox[i]).all():
                d["bbox"] = [float(v) for v in self.bbox[i]]
            if segs is not None:
                d["segmentation"] = segs[i]
            out.append(d)
        return out


def _describe(i: int, entry) -> str:
    if isinstance(entry, dict) and "image_id" in entry:
        return f"detection {i} (image_id {entry['image_id']!r})"
    return f"detection {i}"


def _explain(doc, path: str) -> InputError:
    """The first reason a generically decoded file is not a valid results list."""
    if isinstance(doc, dict):
        if "annotations" in doc:
            return InputError("expected a list of detections (COCO results format), got an object with "
                              "'annotations': this looks like a COCO annotation file, not predictions", path)
        return InputError("expected a list of detections (COCO results format), got a JSON object", path)
    if not isinstance(doc, list):
        return InputError(f"expected a list of detections (COCO results format), got {type(doc).__name__}", path)
    for i, d in enumerate(doc):
        where = _describe(i, d)
        if not isinstance(d, dict):
            return InputError(f"{where} is {type(d).__name__}, not an object", path)
        for key in ("image_id", "category_id"):
            if key not in d:
                return InputError(f'{where} has no "{key}"', path)
            if not isinstance(d[key], int) or isinstance(d[key], bool):
                return InputError(f'{where}: "{key}" must be an integer, not {d[key]!r}', path)
        if "score" not in d:
            return InputError(f'{where} has no "score": COCO results need a confidence for every '
                              "detection to rank them", path)
        if not isinstance(d["score"], (int, float)) or isinstance(d["score"], bool):
            return InputError(f'{where}: "score" must be a number, not {d["score"]!r}', path)
        if "bbox" not in d and "segmentation" not in d:
            return InputError(f'{where} has neither "bbox" nor "segmentation"', path)
        if "bbox" in d:
            box = d["bbox"]
            if isinstance(box, dict):
                return InputError(f'{where}: "bbox" must be a list [x, y, width, height], not an object with '
                                  f"keys {sorted(box)}", path)
            if not isinstance(box, list) or len(box) != 4 or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in box):
                return InputError(f'{where}: "bbox" must be four numbers [x, y, width, height], got {box!r}', path)
    return InputError("not a valid COCO results list", path)


@contextmanager
def _gc_paused():
    """Decoding half a million detections makes as many objects: the collector would rescan them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_bytes(data: bytes, path: str = "<predictions>") -> Predictions:
    with _gc_paused():
        return _load_bytes(data, path)


def _load_bytes(data: bytes, path: str) -> Predictions:
    try:
        dets = _decoder.decode(data)
    except msgspec.ValidationError:
        try:
            doc = msgspec.json.decode(data)
        except msgspec.DecodeError as exc:
            raise _json_error(data, exc, path) from None
        raise _explain(doc, path) from None
    except msgspec.DecodeError as exc:
        raise _json_error(data, exc, path) from None
    n = len(dets)
    image_id = np.fromiter(map(attrgetter("image_id"), dets), np.int64, n)
    category_id = np.fromiter(map(attrgetter("category_id"), dets), np.int64, n)
    score = np.fromiter(map(attrgetter("score"), dets), np.float64, n)
    boxes = list(map(attrgetter("bbox"), dets))
    if None not in boxes:  # the common case: one flat pass
        bbox = np.fromiter(chain.from_iterable(boxes), np.float64, 4 * n).reshape(n, 4)
    else:
        bbox = np.array([b if b is not None else (_NAN, _NAN, _NAN, _NAN) for b in boxes], np.float64).reshape(n, 4)
    has_seg = b'"segmentation"' in data and any(map(len, map(attrgetter("segmentation"), dets)))
    seg = [bytes(d.segmentation) for d in dets] if has_seg else None
    no_geometry = np.isnan(bbox).all(axis=1)
    if has_seg:
        no_geometry &= np.fromiter(map(len, seg), np.int64, n) == 0
    if n and no_geometry.any():
        i = int(np.flatnonzero(no_geometry)[0])
        raise InputError(f'detection {i} (image_id {int(image_id[i])}) has neither "bbox" nor "segmentation"', path)
    if n and not np.isfinite(score).all():
        i = int(np.flatnonzero(~np.isfinite(score))[0])
        raise InputError(f"detection {i} (image_id {int(image_id[i])}): score {score[i]} is not a finite number",
                         path)
    return Predictions(path, image_id, category_id, bbox, score, seg)


def load(path: str | Path) -> Predictions:
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError("predictions file not found", str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a predictions file", str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read predictions: {exc.strerror or exc}", str(path)) from None
    return load_bytes(data, str(path))


@lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int, size: int) -> Predictions:
    return load(path)


def load_cached(path: str | Path) -> Predictions:
    """``load`` once per run: keyed by path, modification time and size."""
    try:
        st = os.stat(path)
    except OSError:
        return load(path)  # raises the one-line error
    return _load_cached(str(path), st.st_mtime_ns, st.st_size)


@dataclass
class GroundTruthIndex:
    """What checking predictions against a ground truth needs to know about it."""

    path: str
    image_ids: np.ndarray  # int64, sorted
    widths: np.ndarray  # aligned with image_ids
    heights: np.ndarray
    category_ids: np.ndarray  # int64, sorted


def check_against(pred: Predictions, gt: GroundTruthIndex, iou_type: str = "bbox") -> None:
    """Raise a one-line InputError when the predictions cannot be evaluated on this ground truth."""
    path = pred.path
    n = len(pred)
    if n == 0:
        return
    pos = np.searchsorted(gt.image_ids, pred.image_id)
    pos_c = np.minimum(pos, max(len(gt.image_ids) - 1, 0))
    known = (len(gt.image_ids) > 0) & (gt.image_ids[pos_c] == pred.image_id) if len(gt.image_ids) else \
        np.zeros(n, bool)
    if not known.all():
        bad = np.unique(pred.image_id[~known])
        i = int(np.flatnonzero(~known)[0])
        raise InputError(f"detection {i} is on image_id {int(pred.image_id[i])}, which is not an image of {gt.path} "
                         f"({int((~known).sum())} detections on {len(bad)} unknown image"
                         f"{'s' * (len(bad) != 1)}; predictions must be made on the ground truth's images)", path)
    cat_known = np.isin(pred.category_id, gt.category_ids)
    if not cat_known.all():
        bad = np.unique(pred.category_id[~cat_known])
        i = int(np.flatnonzero(~cat_known)[0])
        shown = ", ".join(str(int(c)) for c in bad[:5]) + (", ..." if len(bad) > 5 else "")
        raise InputError(f"detection {i} has category_id {int(pred.category_id[i])}, which is not a category of "
                         f"{gt.path} (unknown: {shown}; map the model's labels back to the dataset's ids)", path)
    if iou_type == "segm":
        if not pred.has_segmentation:
            i = 0 if pred.segmentation is None else next(k for k, s in enumerate(pred.segmentation) if not len(s))
            raise InputError(f'detection {i} has no "segmentation": --iou-type segm needs mask results', path)
        return
    if not pred.has_boxes:
        i = int(np.flatnonzero(~np.isfinite(pred.bbox).all(axis=1))[0])
        raise InputError(f'detection {i} (image_id {int(pred.image_id[i])}) has no "bbox"', path)
    _check_box_format(pred, gt, pos_c)


def _check_box_format(pred: Predictions, gt: GroundTruthIndex, image_pos: np.ndarray) -> None:
    x, y, w, h = pred.bbox.T
    path = pred.path
    neg = (w < 0) | (h < 0)
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        hint = ""
        if (x[neg] > x[neg] + w[neg]).all():
            hint = " (the boxes look like [x1, y1, x2, y2] with x2 < x1?)"
        raise InputError(f"detection {i} (image_id {int(pred.image_id[i])}): bbox {pred.bbox[i].tolist()} has a "
                         f"negative width or height; COCO boxes are [x, y, width, height]{hint}", path)
    img_w, img_h = gt.widths[image_pos], gt.heights[image_pos]
    sized = np.isfinite(img_w) & np.isfinite(img_h) & (img_w > 2) & (img_h > 2)
    if not sized.any():
        return
    xs, ys, ws, hs, iw, ih = x[sized], y[sized], w[sized], h[sized], img_w[sized], img_h[sized]
    # Normalised boxes: every coordinate within [0, 1] on images that are many pixels wide.
    if len(xs) >= 5 and max(xs.max(), ys.max(), (xs + ws).max(), (ys + hs).max()) <= 1.0 and np.median(iw) > 16:
        raise InputError("every bbox lies within [0, 1]: the boxes look normalised; COCO results use pixel "
                         "[x, y, width, height]", path)
    # Corner boxes: many boxes overflow their image as [x, y, w, h] but fit as [x1, y1, x2, y2].
    tol = 0.05 * np.maximum(iw, ih) + 2
    overflow = (xs + ws > iw + tol) | (ys + hs > ih + tol)
    fits_as_corners = (ws >= xs) & (hs >= ys) & (ws <= iw + tol) & (hs <= ih + tol)
    if overflow.sum() >= max(3, 0.2 * len(xs)) and fits_as_corners[overflow].all():
        i = int(np.flatnonzero(sized)[np.flatnonzero(overflow)[0]])
        raise InputError(f"{int(overflow.sum())} of {len(xs)} boxes extend past their image as [x, y, width, height] "
                         f"but fit as [x1, y1, x2, y2] (detection {i}: {pred.bbox[i].tolist()}); convert them: "
                         "width = x2 - x1, height = y2 - y1", path)
