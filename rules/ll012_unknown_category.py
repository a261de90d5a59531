"""Annotations whose `category_id` names no category in the file.

## What it does
Reports annotations that point at a category id that no entry of `categories` has.

## Why it matters
Training code maps category ids to class indexes through `categories`; an unknown id crashes
the mapping or, with a default, trains the box as the wrong class. Evaluation ignores it.

## Example
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 9, "bbox": [1, 2, 3, 4]}],
 "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}],
 "categories": [{"id": 1, "name": "cat"}]}
```

## Options
None.

## Fix
None automatically: relabel the box to an existing class, or add the missing category (the right class cannot be known from the file).
"""

import numpy as np

from labellint.findings import Problem
from labellint.toolkit import MISSING_ID, idvalues

CODE = "LL012"
NAME = "unknown-category"
SEVERITY = "error"
OPTIONS: dict = {}
FIX = "none"


def check(ds, options):
    category_id = ds.annotations.category_id
    bad = (ds.ann_category_row < 0) & (category_id != MISSING_ID)
    for row in np.flatnonzero(bad).tolist():
        yield Problem(idvalues.unknown_reference(ds, "category_id", int(category_id[row]))[0], annotation=row)
