"""COCO results files ("predictions"): read fast, check against a ground truth, one-line errors.

The COCO results format is a JSON list of detections::

    [{"image_id": 42, "category_id": 18, "bbox": [x, y, width, height], "score": 0.87}, ...]

with ``segmentation`` (RLE or polygons) instead of, or besides, ``bbox`` for mask results.
Reading is a typed msgspec decode into columns; any odd entry makes it fall back to a generic
decode that names the first bad detection, so a user gets ``detection 12: no "score"`` rather
than a traceback.

The common file (every detection a box, no masks) takes a faster road: a Struct with no optional
field, and for large files two processes, each decoding half of the array
(labellint.gate.predictions_fast). Whatever that road does not like (a bad entry, a cut it
cannot prove, no second core) goes the general way, which says what is wrong. Checks against
a ground truth: labellint.gate.predictions_check.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain
from operator import attrgetter
from pathlib import Path

import msgspec
import numpy as np

from labellint import jsonscan
from labellint.coco.gcpause import gc_paused
from labellint.errors import InputError
from labellint.fsutil import read_or_map, read_regular
from labellint.gate.predictions_check import GroundTruthIndex, check_against
from labellint.gate.predictions_fast import (
    _SEGMENTATION,
    _can_fork,
    _decode_boxes,
    _finish_split,
    _ints,
    _reap,
    _SplitChild,
    _start_split,
)

# the checks and the fast road, under the names callers and tests reach them by
__all__ = ["GroundTruthIndex", "Loading", "Predictions", "check_against", "load", "load_bytes", "load_cached",
           "read_json", "_can_fork", "_decode_boxes"]

#: Files at least this large are decoded in two processes (when a second core is there): below
#: it the fork and the transfer of the child's columns cost about what they save.
SPLIT_MIN_BYTES = 8 << 20

_NAN = float("nan")


def read_json(path: str | Path, missing: str = "file not found", hint: str = ""):
    """A JSON file's value, or a one-line InputError (not found, unreadable, not valid JSON)."""
    p = Path(path)
    try:
        data = read_regular(p)
    except FileNotFoundError:
        raise InputError(missing, str(p)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", str(p)) from None
    jsonscan.check(data, str(p))
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise _json_error(data, exc, str(p), hint) from None
    except RecursionError:  # LABELLINT_MAX_JSON_DEPTH above what the decoder takes
        raise jsonscan.too_deep(data, str(p), None) from None


def _json_error(data: bytes, exc: msgspec.DecodeError, path: str, hint: str = "") -> InputError:
    """msgspec's "(byte N)" turned into the file's line and column."""
    from labellint.coco.positions import offset_to_line_column

    m = re.search(r"\(byte (\d+)\)", str(exc))
    if m is None and "out of range" in str(exc) and jsonscan.long_integer_at(data) is not None:
        return jsonscan.long_integer(data, path)
    offset = min(int(m.group(1)) if m else len(data), len(data))
    line, col = offset_to_line_column(data, offset)
    reason = str(exc).split(" (byte")[0].replace("JSON is malformed: ", "")
    if not hint and bytes(data[offset:offset + 9]).lstrip(b"-").startswith((b"NaN", b"Infinity")):
        hint = " (NaN and Infinity are not JSON numbers: a score or box coordinate that is not a number?)"
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
    _rows: np.ndarray | None = field(default=None, init=False, repr=False)  # as_array(), once

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
        """``(n, 7)`` rows ``[image_id, x, y, w, h, score, category_id]`` (the loadRes array form).

        Made once and kept (the fast loader fills it while decoding, and ``bbox`` and ``score`` are
        views of it): not to be modified."""
        if self._rows is None or len(self._rows) != len(self):
            rows = np.empty((len(self), 7), np.float64)
            rows[:, 0] = self.image_id
            rows[:, 1:5] = self.bbox
            rows[:, 5] = self.score
            rows[:, 6] = self.category_id
            self._rows = rows
        return self._rows

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


def _explain(doc, path: str, reason: str = "") -> InputError:
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
    return InputError("not a valid COCO results list" + (f": {reason}" if reason else ""), path)




def load_bytes(data, path: str = "<predictions>") -> Predictions:
    """Predictions from a file's content (bytes, or a writable buffer the split decode may cut in place)."""
    return Loading.from_bytes(data, path).result()


def load(path: str | Path) -> Predictions:
    return Loading(path).result()


class Loading:
    """A predictions file being read. For a large file a forked child is already decoding the first
    part of it (``share`` of the bytes) when this returns, so the caller can do other work (load
    the ground truth) meanwhile; :meth:`result` decodes the rest here and raises what ``load``
    raises; :meth:`cancel` stops the child when the result is no longer wanted."""

    def __init__(self, path: str | Path | None, share: float = 0.5):
        self.path = str(path)
        self._error: InputError | None = None
        self._data = None
        self._child: _SplitChild | None = None
        if path is None:
            return
        try:
            self._data = _read(Path(path), self.path)
        except InputError as exc:  # reported by result(), in the caller's order of errors
            self._error = exc
            return
        self._start(share)

    @classmethod
    def from_bytes(cls, data, path: str, share: float = 0.5) -> Loading:
        self = cls(None)
        self.path, self._data = path, data
        self._start(share)
        return self

    def _start(self, share: float) -> None:
        if len(self._data) >= SPLIT_MIN_BYTES:
            self._child = _start_split(self._data, share)

    def result(self) -> Predictions:
        if self._error is not None:
            raise self._error
        try:  # no deeper than the limit, before anything decoded is used (a child may be decoding)
            jsonscan.check(self._data, self.path)
        except InputError:
            self.cancel()
            raise
        child, self._child = self._child, None
        try:
            with gc_paused():
                columns = _finish_split(self._data, child) if child is not None else None
                if columns is None and self._data.find(_SEGMENTATION) < 0:  # boxes only: the fast decode
                    columns = _decode_boxes(self._data)
                if columns is None:  # masks, or anything the fast decode did not take
                    return _load_general(self._data, self.path)
        except RecursionError:  # LABELLINT_MAX_JSON_DEPTH above what the decoder takes
            raise jsonscan.too_deep(self._data, self.path, None) from None
        image_id, category_id, rows = columns
        pred = _checked(self.path, image_id, category_id, rows[:, 5], rows[:, 1:5], None)
        pred._rows = rows
        return pred

    def cancel(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            _reap(child.pid, child.fd)

    def __del__(self):  # neither result() nor cancel(): don't leave the child waiting on its pipe
        try:
            self.cancel()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


def _read(p: Path, shown: str):
    """The file's bytes; a large file is mapped copy-on-write (the split decode cuts it in place,
    nothing reaches the file; each process reads in only the pages of its part)."""
    try:
        return read_or_map(p, SPLIT_MIN_BYTES, shown)
    except FileNotFoundError:
        raise InputError("predictions file not found", shown) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a predictions file", shown) from None
    except OSError as exc:
        raise InputError(f"cannot read predictions: {exc.strerror or exc}", shown) from None


def _load_general(data, path: str) -> Predictions:
    """Any results file: boxes, masks or both; names the first bad detection of a file that is not valid."""
    try:
        dets = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        try:
            doc = msgspec.json.decode(data)
        except msgspec.DecodeError as exc2:
            raise _json_error(data, exc2, path) from None
        raise _explain(doc, path, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise _json_error(data, exc, path) from None
    n = len(dets)
    try:
        image_id = _ints(dets, "image_id")
        category_id = _ints(dets, "category_id")
    except OverflowError:
        raise _out_of_range(dets, path) from None
    score = np.fromiter(map(attrgetter("score"), dets), np.float64, n)
    boxes = list(map(attrgetter("bbox"), dets))
    if None not in boxes:  # the common case: one flat pass
        bbox = np.fromiter(chain.from_iterable(boxes), np.float64, 4 * n).reshape(n, 4)
    else:
        bbox = np.array([b if b is not None else (_NAN, _NAN, _NAN, _NAN) for b in boxes], np.float64).reshape(n, 4)
    has_seg = data.find(_SEGMENTATION) >= 0 and any(map(len, map(attrgetter("segmentation"), dets)))
    seg = [bytes(d.segmentation) for d in dets] if has_seg else None
    return _checked(path, image_id, category_id, score, bbox, seg)


def _checked(path: str, image_id, category_id, score, bbox, seg) -> Predictions:
    n = len(image_id)
    no_geometry = np.isnan(bbox).all(axis=1)
    if seg is not None:
        no_geometry &= np.fromiter(map(len, seg), np.int64, n) == 0
    if n and no_geometry.any():
        i = int(np.flatnonzero(no_geometry)[0])
        raise InputError(f'detection {i} (image_id {int(image_id[i])}) has neither "bbox" nor "segmentation"', path)
    if n and not np.isfinite(score).all():
        i = int(np.flatnonzero(~np.isfinite(score))[0])
        raise InputError(f"detection {i} (image_id {int(image_id[i])}): score {score[i]} is not a finite number",
                         path)
    return Predictions(path, image_id, category_id, bbox, score, seg)




def _out_of_range(dets, path: str) -> InputError:
    for i, d in enumerate(dets):
        for key in ("image_id", "category_id"):
            v = getattr(d, key)
            if not -(1 << 63) <= v < (1 << 63):
                return InputError(f'detection {i} (image_id {d.image_id}): "{key}" {v} is out of range '
                                  "(ids are 64-bit integers)", path)
    return InputError("an id is out of range (ids are 64-bit integers)", path)  # pragma: no cover



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
