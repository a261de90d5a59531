"""Ids written with the wrong type: what they stand for, and how to say so.

A COCO id must be an integer. The loader reports any other value (LL001) and keeps MISSING_ID in
its place, so an annotation whose ``image_id`` is the string ``"5"`` belongs to no image even
where image 5 exists: pycocotools indexes by the value as written, and ``"5" != 5``. These
helpers let messages and the gallery say that, instead of "unknown image".
"""

from __future__ import annotations

import math
import re

import numpy as np

from labellint.coco.dataset import MISSING_ID, _row_lookup

_INTEGER = re.compile(r"-?[0-9]{1,18}")

#: For a reference field of annotations: the section it points into, and the noun for one entry.
TARGETS = {"image_id": ("images", "image"), "category_id": ("categories", "category")}


def meant(value) -> int | None:
    """The integer an id written as a string of digits (``"5"``) or a whole float (``5.0``) stands
    for; None for anything else (a name, a fraction, null, a boolean)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 2**62:
        return int(value)
    return None


def shown(value) -> str:
    """The value as a reader should see it: "the string '5'", "the float 5.0"."""
    if isinstance(value, str):
        return f"the string {value!r}" if len(value) <= 40 else "a string"
    if isinstance(value, float):
        return f"the float {value!r}"
    return "null" if value is None else f"a {type(value).__name__}"


def number(value) -> str:
    """What the value should have been, in words: "the number 5" (for a string), "the integer 5"."""
    n = meant(value)
    return f"the number {n}" if isinstance(value, str) else f"the integer {n}"


def issues_of(ds, section: str, field: str) -> dict[int, object]:
    """Row -> SchemaIssue, for the entries of ``section`` whose ``field`` the loader could not take
    (a wrong type or a missing key); computed once per Dataset."""
    def compute():
        return {i.index: i for i in ds.issues
                if i.section == section and i.field == field and i.index is not None
                and i.kind in ("field-type", "missing-key")}
    return ds.shared(f"idvalues.{section}.{field}", compute)


def references(ds, field: str) -> dict[int, tuple]:
    """Annotation row -> (issue, the id it stands for or None, the row of the entry with that
    integer id or None), for the annotations whose ``field`` (``image_id`` or ``category_id``) the
    loader could not take; one lookup for them all, computed once per Dataset."""
    def compute():
        issues = issues_of(ds, "annotations", field)
        rows = list(issues)
        ns = [meant(issues[r].value) if issues[r].kind == "field-type" else None for r in rows]
        wanted = np.array([MISSING_ID if n is None else n for n in ns], np.int64)
        found = _row_lookup(getattr(ds, TARGETS[field][0]).id, wanted).tolist()
        return {r: (issues[r], n, t if n is not None and t >= 0 else None) for r, n, t in zip(rows, ns, found)}
    return ds.shared(f"idvalues.references.{field}", compute)


def rows_meaning(ds, section: str) -> dict[int, list[int]]:
    """Id -> the rows of ``section`` whose ``id`` is written with a wrong type that stands for it
    (images whose id is the string "5", under 5); computed once per Dataset."""
    def compute():
        out: dict[int, list[int]] = {}
        for row, issue in issues_of(ds, section, "id").items():
            n = meant(issue.value) if issue.kind == "field-type" else None
            if n is not None:
                out.setdefault(n, []).append(row)
        return out
    return ds.shared(f"idvalues.meaning.{section}", compute)


def unknown_reference(ds, field: str, ident: int) -> tuple[str, bool]:
    """The message for an annotation whose ``field`` names no entry ("image_id 5 is not the id of
    any image") and whether an entry has that id written with a wrong type (``"id": "5"``), in
    which case the message names it: the reference is right, that entry's id is not."""
    section, noun = TARGETS[field]
    text = f"{field} {ident} is not the id of any {noun}"
    rows = rows_meaning(ds, section).get(ident)
    if not rows:
        return text, False
    value = issues_of(ds, section, "id")[rows[0]].value
    return (f"{text}: /{section}/{rows[0]} has {shown(value)} as its id, not {number(value)} (LL001); "
            f"write its id as {ident}"), True
