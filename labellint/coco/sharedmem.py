"""Shared memory for the split decode: the children write the annotation columns in place."""

from __future__ import annotations

import mmap
import os

import numpy as np

from labellint.coco.fields import array_layout

#: An annotation the typed decode accepts has "id", "image_id", "category_id" and "bbox": never
#: fewer bytes than this, with its separator. So the annotations array has at most
#: (its bytes) / MIN_ELEMENT_BYTES elements.
MIN_ELEMENT_BYTES = 40
_COLUMNS = array_layout("annotations")


class SharedColumns:
    """Where the children put the annotation columns so that this process finds them in place:
    a shared anonymous mapping with room for ``cap`` rows of each column (only the pages written
    count). The first child writes rows [0, n1) and tells the other child n1 through a pipe;
    that one writes rows [n1, n1 + n2). The columns then need no pickling, no pipe and no
    concatenation on the way to the first rule. A part that does not fit (or whose count does
    not come) goes the pickled way."""

    def __init__(self, cap: int):
        self.cap = cap
        self.mem = mmap.mmap(-1, cap * sum(width * 8 for _, _, width in _COLUMNS))
        self.count_r, self.count_w = os.pipe()

    def views(self, lo: int, hi: int) -> dict:
        out, offset = {}, 0
        for name, dtype, width in _COLUMNS:
            column = np.frombuffer(self.mem, dtype, count=self.cap * width, offset=offset)
            out[name] = (column.reshape(self.cap, width) if width > 1 else column)[lo:hi]
            offset += self.cap * width * 8
        return out

    def put(self, lo: int, columns: dict) -> tuple:
        n = len(columns["id"])
        for name, view in self.views(lo, lo + n).items():
            view[...] = columns[name]
        return ("shared", lo, n)

    def close_pipe(self) -> None:
        for fd in (self.count_r, self.count_w):
            try:
                os.close(fd)
            except OSError:
                pass

    @classmethod
    def for_plan(cls, buf, plan) -> SharedColumns | None:
        try:
            return cls((len(buf) - plan.start) // MIN_ELEMENT_BYTES + 1)
        except (OSError, ValueError, OverflowError):  # no shared memory: pickled columns
            return None


def rows_of(part) -> int:
    """The rows of a part of the columns: a dict of columns, or where ``put`` wrote them."""
    return part[2] if isinstance(part, tuple) else len(part["id"])
