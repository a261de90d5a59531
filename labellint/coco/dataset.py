"""The Dataset that rules read: numpy columns, id indexes and source positions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from labellint.coco import positions
from labellint.errors import InputError

#: Stands for a missing or non-integer id in an int64 id column (already reported by the loader).
MISSING_ID = np.iinfo(np.int64).min


@dataclass
class SchemaIssue:
    """A value the loader could not take as it is: a wrong type, a missing key, a non-object entry."""

    section: str | None  # "images", "annotations", "categories" or None for the file itself
    index: int | None  # position in the section array
    field: str | None
    message: str
    kind: str  # "missing-section", "section-type", "entry-type", "missing-key", "field-type", "duplicate-key"
    value: Any = None
    offset: int | None = None  # where in the file, for an issue that is about no entry (a key twice)


@dataclass
class Images:
    id: np.ndarray  # int64, MISSING_ID where invalid
    width: np.ndarray  # float64, nan where missing or not a number
    height: np.ndarray
    file_name: list  # str or None

    def __len__(self) -> int:
        return len(self.id)


@dataclass
class Annotations:
    id: np.ndarray  # int64
    image_id: np.ndarray  # int64
    category_id: np.ndarray  # int64
    bbox: np.ndarray  # (n, 4) float64 x, y, w, h; nan where missing or not four numbers
    area: np.ndarray  # float64, nan where missing
    iscrowd: np.ndarray  # int64, MISSING_ID where not an integer
    segmentation: Sequence  # per annotation. After the typed or loose decode (strict JSON): a
    # SegmentationColumn (read on first use) of msgspec.Raw, the JSON text (an empty Raw when
    # absent). After the generic decode (non-strict JSON, a section or entry of the wrong type):
    # a list of decoded values (None when absent).

    def __len__(self) -> int:
        return len(self.id)


class SegmentationColumn(Sequence):
    """The segmentations of all annotations, read from the file only when a rule first asks.

    Most rules never look at polygons; not decoding them makes the typed load ~20% faster. The
    first access decodes every annotation's segmentation as ``msgspec.Raw`` (one pass over the
    file, ~0.3 s for train2017); an absent one is an empty Raw. When the loader's children have
    summarised the segmentations already (the split decode of large files), the geometry rules
    take that summary (:meth:`take_summaries`) and the column is never read.
    """

    def __init__(self, n: int, decode: Callable[[], list], summaries: Callable[[], list | None] | None = None):
        self._n = n
        self._decode = decode
        self._items: list | None = None
        self._summaries = summaries

    def take_summaries(self) -> list | None:
        """What the loader's children worked out from these segmentations while the file was
        decoded (``labellint.geometry.summarise`` of consecutive ranges of rows, as
        [(first row, summary), ...]), taken once; None when there is none (then the caller
        summarises the column itself)."""
        summaries, self._summaries = self._summaries, None
        return summaries() if summaries is not None else None

    def _all(self) -> list:
        if self._items is None:
            items = self._decode()
            if len(items) != self._n:
                raise RuntimeError(f"the file changed while it was linted: {len(items)} annotations, not {self._n}")
            self._items = items
        return self._items

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index):
        return self._all()[index]

    def __iter__(self):
        return iter(self._all())

    def __repr__(self) -> str:
        state = "decoded" if self._items is not None else "not decoded yet"
        return f"<SegmentationColumn of {self._n} ({state})>"


@dataclass
class Categories:
    id: np.ndarray
    name: list
    supercategory: list

    def __len__(self) -> int:
        return len(self.id)


def _row_lookup(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Row of each wanted id in ``ids`` (first occurrence), -1 where absent."""
    if len(ids) == 0 or len(wanted) == 0:
        return np.full(len(wanted), -1, np.int64)
    valid = ids != MISSING_ID
    if valid.any():
        lo, hi = int(ids[valid].min()), int(ids[valid].max())
        if hi - lo < 4 * len(ids) + 4096:
            # ids are nearly always dense-ish integers: a direct table is O(n), several times
            # faster than sorting (which train2017's 861k annotations would need twice)
            rows = np.flatnonzero(valid)
            table = np.full(hi - lo + 1, -1, np.int64)
            table[ids[rows] - lo] = rows
            if np.array_equal(table[ids[rows] - lo], rows):  # no id twice (else: which row wins?)
                out = np.full(len(wanted), -1, np.int64)
                inside = (wanted >= lo) & (wanted <= hi)
                out[inside] = table[wanted[inside] - lo]
                return out
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    pos = np.searchsorted(sorted_ids, wanted)
    pos = np.minimum(pos, len(ids) - 1)
    found = (sorted_ids[pos] == wanted) & (wanted != MISSING_ID)
    return np.where(found, order[pos], -1).astype(np.int64)


@dataclass
class Dataset:
    """One COCO file, loaded. Rules read the columns; reporters ask for positions."""

    path: str  # display path, relative to the repository root
    data: Any = field(repr=False)  # the file's bytes: ``bytes``, or a read-only mmap for large files
    images: Images
    annotations: Annotations
    categories: Categories
    sections: dict[str, str]  # top-level key -> JSON type name, for the keys COCO defines
    issues: list[SchemaIssue]
    strict_json: bool = True
    layout: dict = field(default_factory=dict, repr=False)  # loader's facts for positions.py: the
    # proven cut of the annotations array ("head_end", "start", "split"), "ascii"
    _offsets: dict | None = field(default=None, repr=False)
    _shared: dict = field(default_factory=dict, repr=False)
    _image_row: np.ndarray | None = field(default=None, repr=False)
    _category_row: np.ndarray | None = field(default=None, repr=False)

    # -- indexes -----------------------------------------------------------------------------
    def shared(self, key: str, compute=None):
        """Work several rules need (decoded polygons, one image pass), computed once per Dataset
        and gone with it. ``compute()`` runs the first time ``key`` is asked for; without
        ``compute``, what is there already (or None)."""
        if compute is None:
            return self._shared.get(key)
        if key not in self._shared:
            self._shared[key] = compute()
        return self._shared[key]

    @property
    def ann_image_row(self) -> np.ndarray:
        """For every annotation, the row of its image in ``images`` (-1: unknown image)."""
        if self._image_row is None:
            self._image_row = _row_lookup(self.images.id, self.annotations.image_id)
        return self._image_row

    @property
    def ann_category_row(self) -> np.ndarray:
        """For every annotation, the row of its category in ``categories`` (-1: unknown)."""
        if self._category_row is None:
            self._category_row = _row_lookup(self.categories.id, self.annotations.category_id)
        return self._category_row

    def category_name(self, row: int) -> str:
        """The class name as messages quote it: bounded (findings.shorten), as it may be any length."""
        from labellint.findings import shorten

        name = self.categories.name[row] if 0 <= row < len(self.categories) else None
        return shorten(name) if isinstance(name, str) else f"#{self.categories.id[row]}"

    def check_editable(self) -> None:
        """Raise InputError when an edit of this file could land elsewhere than where its readers
        look: a top-level key written twice (readers keep the last; a tool that takes the first
        would see a decoy). ``--fix``, ``--diff`` and ``apply`` call it before editing."""
        for issue in self.issues:
            if issue.kind == "duplicate-key":
                line, col = self.locate([issue.offset]).get(issue.offset, (None, None))
                raise InputError(f"not editing a file that has the top-level key {json_key(issue.field)} twice "
                                 "(readers disagree on which one counts); remove one, then fix", self.path, line, col)

    # -- positions ---------------------------------------------------------------------------
    @staticmethod
    def pointer(section: str, index: int) -> str:
        return f"/{section}/{index}"

    def offsets(self) -> dict:
        """Byte offset of every element, by section; computed on first use (only findings need it)."""
        if self._offsets is None:
            self._offsets = positions.element_offsets(self.data, self.layout)
        return self._offsets

    def locate(self, offsets) -> dict[int, tuple[int, int]]:
        """(line, column) of each byte offset; pass them all at once (one pass over the file)."""
        return positions.line_columns(self.data, [o for o in offsets if o is not None], self.layout.get("ascii", False))


def json_key(key: str) -> str:
    """A key as messages quote it: JSON-escaped (no control character reaches a terminal), and short."""
    text = json.dumps(key)  # control characters and quotes escaped, as in the file
    return text if len(text) <= 42 else text[:40] + "\u2026\""
