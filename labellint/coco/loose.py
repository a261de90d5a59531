"""The loose typed decode: the tolerant path's results at nearly the typed path's speed.

A file with a few odd values (a string id, a missing key) is what a linter sees most often.
Rather than decode it generically (dicts, several times slower), decode every declared field as
whatever JSON value it holds (msgspec ``Any``, in Structs, unknown fields still skipped), turn a
column into numpy at once when all its values have the expected type, and check value by
value, with the tolerant path's own checks (tolerant.Collector), only the columns that do not.
Sections that are not arrays, entries that are not objects and numbers beyond a float still
need the generic decode. tests/test_loader.py checks that both give the same columns and issues.
"""

from __future__ import annotations

import operator
from itertools import chain

import msgspec
import numpy as np

from labellint.coco.dataset import MISSING_ID, Categories, Images, SchemaIssue
from labellint.coco.fields import BOX, FIELDS, INT, NUMBER, SECTIONS, STR, Field, document_struct, loose_struct
from labellint.coco.tolerant import Collector, in_file_order, to_column

loose_decoder = msgspec.json.Decoder(document_struct("_LooseDoc", {
    "images": loose_struct("_LooseImage", "images"), "annotations": loose_struct("_LooseAnnotation", "annotations"),
    "categories": loose_struct("_LooseCategory", "categories")}))
_UNSET_TYPE = type(msgspec.UNSET)
_NUMBER_TYPES = {int, float}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_FLOAT_MAX = 2**1023


def _loose_fast(values: list, f: Field):
    """The column at once when every value has the expected type, else None."""
    n = len(values)
    types = set(map(type, values))
    if _UNSET_TYPE in types:  # absent keys: fine when optional, the default stands in
        if f.required:
            return None
        fill = f.absent
        values = [fill if v is msgspec.UNSET else v for v in values]
        types.discard(_UNSET_TYPE)
    try:
        if f.kind == INT and types <= {int}:
            column = np.fromiter(values, np.int64, n)  # OverflowError beyond int64
            return None if (column == MISSING_ID).any() else column  # -2**63 is reported
        if f.kind == NUMBER and types <= _NUMBER_TYPES:
            column = np.fromiter(values, np.float64, n)
            return column if np.isfinite(column).all() else None
        if f.kind == STR and (types <= {str} or (not f.required and types <= {str, type(None)})):
            return values
        if f.kind == BOX and types <= {list} and set(map(len, values)) <= {4}:
            flat = list(chain.from_iterable(values))
            if set(map(type, flat)) <= _NUMBER_TYPES:
                column = np.fromiter(flat, np.float64, 4 * n).reshape(n, 4)
                return column if np.isfinite(column).all() else None
    except OverflowError:
        return None
    return None


def _loose_slow(col: Collector, values: list, f: Field):
    """Value by value: the usual ones directly, the odd ones through the tolerant path's checks
    (and messages)."""
    checked = col.check(f)

    def check(i, v):
        return checked(f, {} if v is msgspec.UNSET else {f.name: v}, i)

    if f.kind == INT:
        out = [v if type(v) is int and _INT64_MIN < v <= _INT64_MAX else check(i, v) for i, v in enumerate(values)]
    elif f.kind == NUMBER:
        out = [float(v) if type(v) is float or (type(v) is int and -_FLOAT_MAX < v < _FLOAT_MAX) else check(i, v)
               for i, v in enumerate(values)]  # floats here are finite: msgspec refuses the rest
    elif f.kind == STR:
        out = [v if type(v) is str else check(i, v) for i, v in enumerate(values)]
    else:
        out = [check(i, v) for i, v in enumerate(values)]
    return to_column(f, out)


def _loose_section(section: str, items: list) -> tuple[dict, list[SchemaIssue]]:
    columns, collectors = {}, []
    for rank, f in enumerate(FIELDS[section]):
        values = list(map(operator.attrgetter(f.name), items))
        column = _loose_fast(values, f)
        if column is None:
            collectors.append(Collector(section, rank))
            column = _loose_slow(collectors[-1], values, f)
        columns[f.name] = column
    return columns, in_file_order(collectors)


def from_loose(doc):
    issues: list[SchemaIssue] = []
    sections = {}
    parts = {}
    for section in SECTIONS:
        items = getattr(doc, section)
        if items is not msgspec.UNSET:
            sections[section] = "array"
        parts[section], found = _loose_section(section, items if items is not msgspec.UNSET else [])
        issues.extend(found)
    images = Images(**parts["images"])
    categories = Categories(**parts["categories"])
    return images, parts["annotations"], categories, sections, issues
