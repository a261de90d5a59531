"""Two categories with the same name.

## What it does
Reports every category whose `name` was already used by an earlier category with another id.

## Why it matters
One class split over two ids: its boxes are trained as two competing classes, evaluation
reports two half-classes, and tools that map names to ids (YOLO exports, label editors) keep
only one of them.

## Example
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
                 {"id": 2, "image_id": 1, "category_id": 2, "bbox": [20, 20, 5, 5]}],
 "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
                 {"id": 2, "image_id": 1, "category_id": 2, "bbox": [20, 20, 5, 5]}],
 "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
```

## Options
None.

## Fix
Unsafe: point the annotations of the later category at the first one and delete it, if both
really are one class.
"""

import numpy as np

from labellint.findings import Fix, Problem, delete, set_field

CODE = "LL017"
NAME = "duplicate-category-name"
SEVERITY = "error"
OPTIONS: dict = {}
FIX = "unsafe"


def check(ds, options):
    first_row: dict[str, int] = {}
    ids = ds.categories.id
    for row, name in enumerate(ds.categories.name):
        if not isinstance(name, str):
            continue
        first = first_row.setdefault(name, row)
        if first != row and ids[first] != ids[row]:  # same id twice is LL010's
            yield Problem(f"category name {name!r} is already used by category id {int(ids[first])} "
                          f"(/categories/{first}): one class split over two ids", category=row,
                          fix=Fix(f"merge into category id {int(ids[first])}", _merge(ds, row, first), "unsafe"))


def _merge(ds, row: int, first: int):
    """Point the annotations of category ``row`` at ``first`` and delete ``row``."""
    def edits():
        target = int(ds.categories.id[first])
        users = np.flatnonzero(ds.ann_category_row == row).tolist()
        return (*(set_field("annotations", a, "category_id", target) for a in users), delete("categories", row))
    return edits
