"""Categories that no annotation uses.

## What it does
Reports every category that is declared in `categories` but that no annotation of the file
points at.

## Why it matters
Training code sizes the classifier from `categories`: a declared but unused class is an output
that never sees a positive example, and a class-index mapping that silently differs from a
file that does use it. Roboflow exports, for example, declare the dataset name as category 0.
In a validation or test split it can also mean the split misses a class that training has.

## Example
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}],
 "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
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
Unsafe: delete the category. Models trained with it have an output for it, and other splits of
the dataset may use it.
"""

import numpy as np

from labellint.toolkit import MISSING_ID

from labellint.findings import Fix, Problem, delete

CODE = "LL016"
NAME = "unused-category"
SEVERITY = "warning"
OPTIONS: dict = {}
FIX = "unsafe"


def check(ds, options):
    ids = ds.categories.id
    if len(ids) == 0:
        return
    used = np.zeros(len(ids), bool)
    rows = ds.ann_category_row
    used[rows[rows >= 0]] = True
    _, first = np.unique(ids, return_index=True)
    first_of_its_id = np.zeros(len(ids), bool)
    first_of_its_id[first] = True  # a repeated id is LL010's; annotations resolve to the first
    first_of_its_id &= ids != MISSING_ID  # an id that is no integer (LL001's) names nothing to use
    for row in np.flatnonzero(~used & first_of_its_id).tolist():
        yield Problem(f"category {ds.category_name(row)!r} (id {int(ids[row])}) is declared but no annotation "
                      "uses it", category=row, score=0.6,
                      fix=Fix("delete the category", (delete("categories", row),), "unsafe"))
