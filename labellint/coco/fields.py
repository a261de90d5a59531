"""The COCO fields the loader decodes, each declared once in :data:`FIELDS`.

From that table come the typed Structs (the fast decode: a value of the wrong type fails it),
the loose Structs (every value as whatever JSON holds), the numpy columns made from either, the
tolerant path's checks and their order (a section's issues come entry by entry, field by field,
in the table's order). A field that is not declared (license, coco_url, ...) is skipped by the
decoders without creating a single object, which is most of their speed; ``segmentation`` is
read apart, on first use (see load.decode_segmentations). A new field also needs its column in
the Dataset's classes (labellint.coco.dataset).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from itertools import chain
from typing import Annotated, Any

import msgspec
import numpy as np

from labellint.coco.dataset import MISSING_ID

_NAN = float("nan")

#: The kinds of value a field holds, and so its column: INT an int64 array (MISSING_ID where
#: not an integer), NUMBER a float64 array (nan where not a number), STR a list (None where not
#: a string), BOX an (n, 4) float64 array of [x, y, width, height].
INT, NUMBER, STR, BOX = "int", "number", "str", "bbox"


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: str
    required: bool = True  # an optional string may also be null
    default: Any = MISSING_ID  # the value of an absent INT field

    @property
    def absent(self):
        """What the column holds where the value is absent (the typed Struct's default)."""
        if self.kind == INT:
            return self.default
        if self.kind == NUMBER:
            return _NAN
        if self.kind == BOX:
            return [_NAN] * 4
        return None


FIELDS = {
    "images": (Field("id", INT), Field("width", NUMBER), Field("height", NUMBER), Field("file_name", STR)),
    "annotations": (Field("id", INT), Field("image_id", INT), Field("category_id", INT), Field("bbox", BOX),
                    Field("area", NUMBER, required=False), Field("iscrowd", INT, required=False, default=0)),
    "categories": (Field("id", INT), Field("name", STR), Field("supercategory", STR, required=False)),
}
SECTIONS = tuple(FIELDS)

# A bbox of any length but 4 fails the typed decode, so that the tolerant path reports it.
_Box = Annotated[list[float], msgspec.Meta(min_length=4, max_length=4)]
_TYPES = {INT: int, NUMBER: float, STR: str, BOX: _Box}


def typed_struct(name: str, section: str) -> type:
    """The Struct that decodes an entry of ``section`` only when every field has its type."""
    spec = []
    for f in FIELDS[section]:
        kind = _TYPES[f.kind]
        if f.required:
            spec.append((f.name, kind))
        else:
            spec.append((f.name, kind | None if f.kind == STR else kind, f.absent))
    return msgspec.defstruct(name, spec, gc=False, module=__name__)


def loose_struct(name: str, section: str) -> type:
    """The Struct that decodes an entry of ``section`` whatever JSON values it holds (UNSET: absent)."""
    return msgspec.defstruct(name, [(f.name, Any, msgspec.UNSET) for f in FIELDS[section]], gc=False,
                             module=__name__)


def document_struct(name: str, entries: dict[str, type]) -> type:
    """The Struct of a whole file: each section a list of ``entries[section]``. UNSET, not None,
    for an absent section: a section that is ``null`` must fail the decode, so that the tolerant
    path reports it."""
    return msgspec.defstruct(name, [(section, list[entry] | msgspec.UnsetType, msgspec.UNSET)
                                    for section, entry in entries.items()], module=__name__)


# np.fromiter over an attrgetter is the cheapest way from Structs to a column; a bbox is
# flattened with chain (all have four numbers: the typed decoder checked).
def _column(items: list, f: Field):
    get, n = operator.attrgetter(f.name), len(items)
    if f.kind == INT:
        return np.fromiter(map(get, items), np.int64, n)
    if f.kind == NUMBER:
        return np.fromiter(map(get, items), np.float64, n)
    if f.kind == STR:
        return list(map(get, items))
    return np.fromiter(chain.from_iterable(map(get, items)), np.float64, 4 * n).reshape(n, 4)


def typed_columns(section: str, items: list) -> dict:
    """The columns of typed Structs of ``section``, by field name."""
    return {f.name: _column(items, f) for f in FIELDS[section]}


def float_columns(section: str) -> tuple[str, ...]:
    """The names of the float64 columns of ``section``."""
    return tuple(f.name for f in FIELDS[section] if f.kind in (NUMBER, BOX))


def array_layout(section: str) -> tuple[tuple[str, type, int], ...]:
    """(name, dtype, values per row) of each column of ``section``; all must be arrays."""
    layout = {INT: (np.int64, 1), NUMBER: (np.float64, 1), BOX: (np.float64, 4)}
    return tuple((f.name, *layout[f.kind]) for f in FIELDS[section])
