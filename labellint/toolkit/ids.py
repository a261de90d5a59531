"""Fresh annotation ids, shared by the rules whose fixes renumber annotations (LL010, LL014).

Every annotation that needs a new id gets one from one sequence (the later copies of a repeated
id and the annotations with id 0, in file order, numbered from the largest id + 1): two rules
counting up on their own would offer one "unused" id twice, and applying both fixes (``--fix``
in one pass, or the gallery's decisions through ``labellint apply``) would make a new duplicate.
"""

from __future__ import annotations

import numpy as np

from labellint.coco import MISSING_ID


def repeated_rows(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose id already appeared earlier, and the row of that first appearance."""
    order = np.argsort(ids, kind="stable")
    s = ids[order]
    same = np.zeros(len(ids), bool)
    same[1:] = (s[1:] == s[:-1]) & (s[1:] != MISSING_ID)
    group_start = np.maximum.accumulate(np.where(~same, np.arange(len(ids)), 0))
    return order[same], order[group_start[same]]


def annotation_repeats(ds) -> tuple[np.ndarray, np.ndarray]:
    """:func:`repeated_rows` of the annotations, computed once per Dataset."""
    return ds.shared("rules.annotation_repeats", lambda: repeated_rows(ds.annotations.id))


def fresh_annotation_ids(ds) -> dict[int, int]:
    """Row -> the unused id its fix gives it, for every annotation that needs one; computed once
    per Dataset, so both rules offer the same id for an annotation they both report."""
    def compute() -> dict[int, int]:
        ids = ds.annotations.id
        rows = set(annotation_repeats(ds)[0].tolist())
        rows.update(np.flatnonzero(ids == 0).tolist())
        valid = ids[ids != MISSING_ID]
        start = int(valid.max()) + 1 if valid.size else 1
        return {row: start + k for k, row in enumerate(sorted(rows))}
    return ds.shared("rules.fresh_annotation_ids", compute)
