"""Decode a COCO file into a :class:`Dataset`.

Fast path: msgspec decodes into typed Structs (segmentation kept as raw bytes, the garbage
collector paused), then numpy columns. Any value of the wrong type makes the typed decode fail;
the tolerant path then decodes generically and turns each odd value into a :class:`SchemaIssue`
instead of crashing. Non-strict JSON (``Infinity``, ``NaN``) is read with the standard library.
Truly broken JSON raises :class:`InputError` with line and column.
"""

from __future__ import annotations

import gc
import json
import math
import operator
import re
from contextlib import contextmanager
from itertools import chain
from pathlib import Path

import msgspec
import numpy as np

from labellint.coco.dataset import (
    MISSING_ID,
    Annotations,
    Categories,
    Dataset,
    Images,
    SchemaIssue,
)
from labellint.coco.positions import offset_to_line_column
from labellint.errors import InputError

SECTIONS = ("images", "annotations", "categories")
_NAN = float("nan")
_BOM = b"\xef\xbb\xbf"


class NotCoco(Exception):
    """The file is JSON but not a COCO annotation file (e.g. package.json)."""


# -- fast path: typed structs -------------------------------------------------------------------
class _Image(msgspec.Struct, gc=False):
    id: int
    width: float
    height: float
    file_name: str


class _Annotation(msgspec.Struct, gc=False):
    id: int
    image_id: int
    category_id: int
    bbox: list[float]
    area: float = _NAN
    iscrowd: int = 0
    segmentation: msgspec.Raw = msgspec.Raw()  # empty: absent; decoded only when a rule needs it


class _Category(msgspec.Struct, gc=False):
    id: int
    name: str
    supercategory: str | None = None


class _Doc(msgspec.Struct):
    images: list[_Image] | None = None
    annotations: list[_Annotation] | None = None
    categories: list[_Category] | None = None


_doc_decoder = msgspec.json.Decoder(_Doc)


@contextmanager
def _gc_paused():
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _ids(items, attr: str) -> np.ndarray:
    return np.fromiter(map(operator.attrgetter(attr), items), np.int64, len(items))


def _floats(items, attr: str) -> np.ndarray:
    return np.fromiter(map(operator.attrgetter(attr), items), np.float64, len(items))


def _bbox_column(boxes: list) -> np.ndarray:
    n = len(boxes)
    lens = np.fromiter(map(len, boxes), np.int64, n)
    if n and (lens == 4).all():
        return np.fromiter(chain.from_iterable(boxes), np.float64, 4 * n).reshape(n, 4)
    out = np.full((n, 4), np.nan)
    for i in np.flatnonzero(lens == 4):
        out[i] = boxes[i]
    return out


def _from_typed(doc: _Doc) -> tuple[Images, Annotations, Categories, dict]:
    imgs = doc.images or []
    anns = doc.annotations or []
    cats = doc.categories or []
    images = Images(
        id=_ids(imgs, "id"),
        width=_floats(imgs, "width"),
        height=_floats(imgs, "height"),
        file_name=[i.file_name for i in imgs],
    )
    annotations = Annotations(
        id=_ids(anns, "id"),
        image_id=_ids(anns, "image_id"),
        category_id=_ids(anns, "category_id"),
        bbox=_bbox_column([a.bbox for a in anns]),
        area=_floats(anns, "area"),
        iscrowd=_ids(anns, "iscrowd"),
        segmentation=[a.segmentation for a in anns],
    )
    categories = Categories(
        id=_ids(cats, "id"),
        name=[c.name for c in cats],
        supercategory=[c.supercategory for c in cats],
    )
    sections = {k: "array" for k in SECTIONS if getattr(doc, k) is not None}
    return images, annotations, categories, sections


# -- tolerant path: generic values, every odd value an issue -------------------------------------
def _type_name(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


class _Collector:
    def __init__(self, section: str):
        self.section = section
        self.issues: list[SchemaIssue] = []

    def issue(self, index, fld, message, kind, value=None):
        self.issues.append(SchemaIssue(self.section, index, fld, message, kind, value))

    def int_field(self, entry: dict, index: int, key: str, required: bool = True, default=MISSING_ID):
        if key not in entry:
            if required:
                self.issue(index, key, f"missing key '{key}'", "missing-key")
            return default
        v = entry[key]
        if type(v) is int:
            return v if -(2**63) < v < 2**63 else MISSING_ID
        if isinstance(v, str):
            what = f"a string ({v!r})" if len(v) <= 40 else "a string"
        elif isinstance(v, float) and math.isfinite(v) and v.is_integer():
            what = f"a float ({v!r})"
        else:
            what = _type_name(v) if not isinstance(v, float) else f"a non-integer number ({v!r})"
        self.issue(index, key, f"'{key}' must be an integer, got {what}", "field-type", v)
        return MISSING_ID

    def number_field(self, entry: dict, index: int, key: str, required: bool = True):
        if key not in entry:
            if required:
                self.issue(index, key, f"missing key '{key}'", "missing-key")
            return _NAN
        v = entry[key]
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if not math.isfinite(v):
                self.issue(index, key, f"'{key}' is {_json_number(v)}", "non-finite", v)
            return float(v)
        self.issue(index, key, f"'{key}' must be a number, got {_type_name(v)}", "field-type", v)
        return _NAN

    def str_field(self, entry: dict, index: int, key: str, required: bool = True):
        if key not in entry:
            if required:
                self.issue(index, key, f"missing key '{key}'", "missing-key")
            return None
        v = entry[key]
        if isinstance(v, str):
            return v
        if v is None and not required:
            return None
        self.issue(index, key, f"'{key}' must be a string, got {_type_name(v)}", "field-type", v)
        return None

    def bbox_field(self, entry: dict, index: int):
        if "bbox" not in entry:
            self.issue(index, "bbox", "missing key 'bbox'", "missing-key")
            return [_NAN] * 4
        v = entry["bbox"]
        if isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
            if not all(math.isfinite(x) for x in v):
                self.issue(index, "bbox", "'bbox' has a non-finite number: [" + ", ".join(map(_json_number, v)) + "]",
                           "non-finite", v)
            if len(v) == 4:
                return [float(x) for x in v]
            self.issue(index, "bbox", f"'bbox' must have 4 numbers [x, y, width, height], got {len(v)}", "field-type", v)
        else:
            self.issue(index, "bbox", f"'bbox' must be an array of 4 numbers, got {_type_name(v)}"
                       + (" with non-numeric items" if isinstance(v, list) else ""), "field-type", v)
        return [_NAN] * 4


def _json_number(v) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    return repr(v)


def _non_finite_in(value) -> bool:
    """True when a (possibly nested) list of numbers holds Infinity or NaN."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list):
        return any(_non_finite_in(v) for v in value)
    if isinstance(value, dict):
        return any(_non_finite_in(v) for v in value.values())
    return False


def _entries(doc: dict, section: str, issues: list[SchemaIssue]) -> list:
    if section not in doc:
        return []
    value = doc[section]
    if isinstance(value, list):
        return value
    issues.append(SchemaIssue(None, None, section, f"'{section}' must be an array, got {_type_name(value)}",
                              "section-type", value))
    return []


def _from_generic(doc: dict, strict: bool = True) -> tuple[Images, Annotations, Categories, dict, list[SchemaIssue]]:
    issues: list[SchemaIssue] = []
    sections = {k: _type_name(doc[k]) for k in SECTIONS if k in doc}

    def rows(section):
        col = _Collector(section)
        for i, entry in enumerate(_entries(doc, section, issues)):
            if not isinstance(entry, dict):
                col.issue(i, None, f"entry must be an object, got {_type_name(entry)}", "entry-type", entry)
                yield col, i, None
            else:
                yield col, i, entry
        issues.extend(col.issues)

    ids, ws, hs, names = [], [], [], []
    for col, i, e in rows("images"):
        if e is None:
            ids.append(MISSING_ID), ws.append(_NAN), hs.append(_NAN), names.append(None)
            continue
        ids.append(col.int_field(e, i, "id"))
        ws.append(col.number_field(e, i, "width"))
        hs.append(col.number_field(e, i, "height"))
        names.append(col.str_field(e, i, "file_name"))
    images = Images(np.array(ids, np.int64), np.array(ws, np.float64), np.array(hs, np.float64), names)

    a_id, a_img, a_cat, a_box, a_area, a_crowd, a_seg = [], [], [], [], [], [], []
    for col, i, e in rows("annotations"):
        if e is None:
            a_id.append(MISSING_ID), a_img.append(MISSING_ID), a_cat.append(MISSING_ID)
            a_box.append([_NAN] * 4), a_area.append(_NAN), a_crowd.append(0), a_seg.append(None)
            continue
        a_id.append(col.int_field(e, i, "id"))
        a_img.append(col.int_field(e, i, "image_id"))
        a_cat.append(col.int_field(e, i, "category_id"))
        a_box.append(col.bbox_field(e, i))
        a_area.append(col.number_field(e, i, "area", required=False))
        a_crowd.append(col.int_field(e, i, "iscrowd", required=False, default=0))
        seg = e.get("segmentation")
        if not strict and _non_finite_in(seg):
            col.issue(i, "segmentation", "'segmentation' has a non-finite number", "non-finite")
        a_seg.append(seg)
    annotations = Annotations(
        np.array(a_id, np.int64), np.array(a_img, np.int64), np.array(a_cat, np.int64),
        np.array(a_box, np.float64).reshape(-1, 4), np.array(a_area, np.float64),
        np.array(a_crowd, np.int64), a_seg,
    )

    c_id, c_name, c_super = [], [], []
    for col, i, e in rows("categories"):
        if e is None:
            c_id.append(MISSING_ID), c_name.append(None), c_super.append(None)
            continue
        c_id.append(col.int_field(e, i, "id"))
        c_name.append(col.str_field(e, i, "name"))
        c_super.append(col.str_field(e, i, "supercategory", required=False))
    categories = Categories(np.array(c_id, np.int64), c_name, c_super)
    return images, annotations, categories, sections, issues


# -- entry points --------------------------------------------------------------------------------
_BYTE = re.compile(r"\(byte (\d+)\)")
_NON_STRICT = (b"NaN", b"Infinity", b"-Infinity")


def _parse_generic(data: bytes, path: str):
    """Generic decode; returns (value, strict_json). Raises InputError with line:col if broken."""
    try:
        return msgspec.json.decode(data), True
    except msgspec.DecodeError as exc:
        m = _BYTE.search(str(exc))
        offset = int(m.group(1)) if m else (len(data) if "truncated" in str(exc) else 0)
        if not any(data.startswith(tok, offset) for tok in _NON_STRICT) and b"NaN" not in data and b"Infinity" not in data:
            line, col = offset_to_line_column(data, offset)
            reason = str(exc).split(" (byte")[0].replace("JSON is malformed: ", "")
            raise InputError(f"invalid JSON: {reason}", path, line, col) from None
    try:
        return json.loads(data.decode("utf-8")), False
    except UnicodeDecodeError as exc:
        line, col = offset_to_line_column(data, exc.start)
        raise InputError("invalid JSON: bytes that are not UTF-8", path, line, col) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg.lower()}", path, exc.lineno, exc.colno) from None
    except RecursionError:
        raise InputError("invalid JSON: nested too deeply", path) from None


def is_coco(doc) -> bool:
    return isinstance(doc, dict) and ("annotations" in doc or "images" in doc)


def load_bytes(data: bytes, path: str) -> Dataset:
    """Decode ``data`` (the content of ``path``, shown in messages). Raises NotCoco or InputError."""
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    with _gc_paused():
        try:
            doc = _doc_decoder.decode(data)
        except (msgspec.ValidationError, msgspec.DecodeError):
            doc = None
        if doc is not None:
            if doc.images is None and doc.annotations is None:
                raise NotCoco(path)
            images, annotations, categories, sections = _from_typed(doc)
            del doc
            return Dataset(path, data, images, annotations, categories, sections, [], True)
        generic, strict = _parse_generic(data, path)
        if not is_coco(generic):
            raise NotCoco(path)
        images, annotations, categories, sections, issues = _from_generic(generic, strict)
        del generic
    return Dataset(path, data, images, annotations, categories, sections, issues, strict)


def load(path: str | Path, display_path: str | None = None) -> Dataset:
    p = Path(path)
    shown = display_path or str(path)
    try:
        data = p.read_bytes()
    except IsADirectoryError:
        raise InputError("is a directory, not a file", shown) from None
    except FileNotFoundError:
        raise InputError("no such file", shown) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", shown) from None
    return load_bytes(data, shown)
