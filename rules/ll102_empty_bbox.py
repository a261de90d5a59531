"""Boxes with a width or height of zero or less.

## What it does
Reports boxes whose width or height is zero or negative. (A box that is not four finite
numbers is reported by LL001 or LL002.)

## Why it matters
A box without area contains no object: it trains the detector on nothing, box-regression
losses divide by its size (nan losses), and augmentation libraries (albumentations) raise on
it. A negative size usually means the box was written as corners `[x1, y1, x2, y2]` with the
corners swapped, or computed from a broken export.

## Example
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 0, 4]}],
 "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 3, 4]}],
 "categories": [{"id": 1, "name": "cat"}]}
```

## Options
None.

## Fix
None: delete the annotation or redraw the box.
"""

import numpy as np

from labellint.findings import Problem
from labellint.toolkit import box_columns, finite_rows

CODE = "LL102"
NAME = "empty-bbox"
SEVERITY = "error"
OPTIONS: dict = {}
FIX = "none"


def check(ds, options):
    bbox = ds.annotations.bbox
    _, _, w, h = box_columns(ds)
    with np.errstate(invalid="ignore"):  # non-finite boxes are LL002's
        bad = np.flatnonzero(finite_rows(bbox) & ((w <= 0) | (h <= 0)))
    for row in bad.tolist():
        x, y, bw, bh = bbox[row].tolist()
        sides = [f"{name} {v:g}" for name, v in (("width", bw), ("height", bh)) if v <= 0]
        yield Problem(f"bbox [{x:g}, {y:g}, {bw:g}, {bh:g}] has {' and '.join(sides)}: it covers no pixels",
                      annotation=row)
