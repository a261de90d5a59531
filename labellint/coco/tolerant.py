"""The tolerant path: generic JSON values, every odd value a :class:`SchemaIssue`, never a crash.

The checks of one value (:class:`Collector`) serve the loose decode too (labellint.coco.loose),
so that both word an issue alike. Non-strict JSON (``Infinity``, ``NaN``) is read with the
standard library; truly broken JSON raises :class:`InputError` with line and column.
"""

from __future__ import annotations

import json
import math
import re

import msgspec
import numpy as np

from labellint import jsonscan
from labellint.coco.dataset import MISSING_ID, Annotations, Categories, Images, SchemaIssue
from labellint.coco.fields import BOX, FIELDS, INT, NUMBER, SECTIONS, STR, Field
from labellint.coco.positions import offset_to_line_column
from labellint.errors import InputError

_NAN = float("nan")


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


class Collector:
    """The checks of one section's values: each returns the value for the column, and records
    an issue where the value is absent (when required) or odd. ``rank``: the place of the field
    checked among the section's, which orders the issues of one entry (see in_file_order)."""

    def __init__(self, section: str, rank: int = 0):
        self.section, self.rank = section, rank
        self.issues: list[SchemaIssue] = []

    def issue(self, index, fld, message, kind, value=None):
        self.issues.append(SchemaIssue(self.section, index, fld, message, kind, value))

    def check(self, f: Field):
        """The check of field ``f``, called as ``check(f, entry, index)``: the value for the column."""
        return {INT: self.int_field, NUMBER: self.number_field, STR: self.str_field, BOX: self.bbox_field}[f.kind]

    def _absent(self, f: Field, index: int):
        if f.required:
            self.issue(index, f.name, f"missing key '{f.name}'", "missing-key")
        return f.absent

    def int_field(self, f: Field, entry: dict, index: int):
        key = f.name
        if key not in entry:
            return self._absent(f, index)
        v = entry[key]
        if type(v) is int:
            if -(2**63) < v < 2**63:
                return v
            self.issue(index, key, f"'{key}' ({v}) is outside the 64-bit integer range", "field-type", v)
            return MISSING_ID
        if isinstance(v, str):
            what = f"a string ({v!r})" if len(v) <= 40 else "a string"
        elif isinstance(v, float) and math.isfinite(v) and v.is_integer():
            what = f"a float ({v!r})"
        else:
            what = _type_name(v) if not isinstance(v, float) else f"a non-integer number ({_json_number(v)})"
        self.issue(index, key, f"'{key}' must be an integer, got {what}", "field-type", v)
        return MISSING_ID

    def number_field(self, f: Field, entry: dict, index: int):
        key = f.name
        if key not in entry:
            return self._absent(f, index)
        v = entry[key]
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            try:
                number = float(v)
            except OverflowError:  # an integer too large for a float
                number = math.inf if v > 0 else -math.inf
            if not math.isfinite(number):
                self.issue(index, key, f"'{key}' is {_json_number(number)}", "non-finite", v)
            return number
        self.issue(index, key, f"'{key}' must be a number, got {_type_name(v)}", "field-type", v)
        return _NAN

    def str_field(self, f: Field, entry: dict, index: int):
        key = f.name
        if key not in entry:
            return self._absent(f, index)
        v = entry[key]
        if isinstance(v, str):
            return v
        if v is None and not f.required:
            return None
        self.issue(index, key, f"'{key}' must be a string, got {_type_name(v)}", "field-type", v)
        return None

    def bbox_field(self, f: Field, entry: dict, index: int):
        key = f.name
        if key not in entry:
            return self._absent(f, index)
        v = entry[key]
        if isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
            try:
                floats = [float(x) for x in v]
            except OverflowError:
                floats = [math.inf] * len(v)
            if not all(math.isfinite(x) for x in floats):
                self.issue(index, key, f"'{key}' has a non-finite number: [" + ", ".join(map(_json_number, floats)) + "]",
                           "non-finite", v)
            if len(v) == 4:
                return floats
            self.issue(index, key, f"'{key}' must have 4 numbers [x, y, width, height], got {len(v)}", "field-type", v)
        else:
            self.issue(index, key, f"'{key}' must be an array of 4 numbers, got {_type_name(v)}"
                       + (" with non-numeric items" if isinstance(v, list) else ""), "field-type", v)
        return [_NAN] * 4


def _json_number(v) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    return repr(v)


def _non_finite_in(value) -> bool:
    """True when a (possibly nested) list or object holds Infinity or NaN. A loop over a stack,
    not recursion: however deep the value, the interpreter's stack is not what bounds it."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, float):
            if not math.isfinite(v):
                return True
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
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


def to_column(f: Field, values: list):
    """The column of field ``f`` from its values, as the checks return them."""
    if f.kind == INT:
        return np.array(values, np.int64)
    if f.kind == NUMBER:
        return np.array(values, np.float64)
    if f.kind == BOX:
        return np.array(values, np.float64).reshape(-1, 4)
    return values


def in_file_order(collectors: list[Collector]) -> list[SchemaIssue]:
    """The issues of a section's collectors (one per field) as the file reads: entry by entry,
    field by field."""
    found = [(issue.index, col.rank, issue) for col in collectors for issue in col.issues]
    return [issue for _, _, issue in sorted(found, key=lambda t: (t[0], t[1]))]


def _section(doc: dict, section: str, issues: list[SchemaIssue], strict: bool) -> tuple[dict, list]:
    """The columns of one section (and, for annotations, the segmentation of each entry), column
    by column: each field's check runs over every entry in one comprehension."""
    fields = FIELDS[section]
    entries = _entries(doc, section, issues)
    objects = [isinstance(entry, dict) for entry in entries]
    every = all(objects)
    collectors = [Collector(section, -1)]  # entries that are not objects: their only issue
    if not every:
        for i in (i for i, ok in enumerate(objects) if not ok):
            collectors[0].issue(i, None, f"entry must be an object, got {_type_name(entries[i])}", "entry-type",
                                entries[i])
    columns = {}
    for rank, f in enumerate(fields):
        collectors.append(Collector(section, rank))
        check = collectors[-1].check(f)
        if every:
            values = [check(f, entry, i) for i, entry in enumerate(entries)]
        else:
            values = [check(f, entry, i) if ok else f.absent for i, (entry, ok) in enumerate(zip(entries, objects))]
        columns[f.name] = to_column(f, values)
    segmentations = []
    if section == "annotations":
        segmentations = [entry.get("segmentation") if ok else None for entry, ok in zip(entries, objects)]
        if not strict:
            collectors.append(Collector(section, len(fields)))
            for i in (i for i, seg in enumerate(segmentations) if _non_finite_in(seg)):
                collectors[-1].issue(i, "segmentation", "'segmentation' has a non-finite number", "non-finite")
    issues.extend(in_file_order(collectors))
    return columns, segmentations


def _from_generic(doc: dict, strict: bool = True) -> tuple[Images, Annotations, Categories, dict, list[SchemaIssue]]:
    issues: list[SchemaIssue] = []
    sections = {k: _type_name(doc[k]) for k in SECTIONS if k in doc}
    images, _ = _section(doc, "images", issues, strict)
    annotations, segmentations = _section(doc, "annotations", issues, strict)
    categories, _ = _section(doc, "categories", issues, strict)
    return (Images(**images), Annotations(**annotations, segmentation=segmentations), Categories(**categories),
            sections, issues)


_BYTE = re.compile(r"\(byte (\d+)\)")
_NON_STRICT = (b"NaN", b"Infinity", b"-Infinity")


def _parse_generic(buf, path: str):
    """Generic decode; returns (value, strict_json). Raises InputError with line:col if broken."""
    try:
        return msgspec.json.decode(buf), True
    except msgspec.DecodeError as exc:
        m = _BYTE.search(str(exc))
        offset = int(m.group(1)) if m else (len(buf) if "truncated" in str(exc) else 0)
        at_token = any(buf[offset : offset + len(tok)] == tok for tok in _NON_STRICT)
        # msgspec also refuses numbers beyond a float (1e999); Python reads them as infinity
        out_of_range = "out of range" in str(exc)
        if not (at_token or out_of_range) and buf.find(b"NaN") < 0 and buf.find(b"Infinity") < 0:
            line, col = offset_to_line_column(buf, offset)
            reason = str(exc).split(" (byte")[0].replace("JSON is malformed: ", "")
            raise InputError(f"invalid JSON: {reason}", path, line, col) from None
    try:
        return json.loads(bytes(buf).decode("utf-8")), False
    except UnicodeDecodeError as exc:
        line, col = offset_to_line_column(buf, exc.start)
        raise InputError("invalid JSON: bytes that are not UTF-8", path, line, col) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg.lower()}", path, exc.lineno, exc.colno) from None
    except ValueError:  # an integer literal longer than Python converts (sys.set_int_max_str_digits)
        raise jsonscan.long_integer(buf, path) from None


def is_coco(doc) -> bool:
    return isinstance(doc, dict) and ("annotations" in doc or "images" in doc)
