"""Annotations without an `area`.

## What it does
Reports annotations that have no `area` field. (An `area` that is not a number is LL001's, an
infinite one LL002's.)

## Why it matters
COCO makes `area` part of every annotation, and pycocotools' `COCOeval` reads it for the small,
medium and large breakdown of every evaluation: a ground-truth file without it makes
`evaluate()` raise `KeyError: 'area'`, after inference has already run.

## Example
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10]}],
 "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10], "area": 200}],
 "categories": [{"id": 1, "name": "cat"}]}
```

## Options
None.

## Fix
Safe: set `area` to the segmentation's area, or to `width * height` of the box without one.
"""

import numpy as np

from labellint.findings import Fix, Problem, set_field

CODE = "LL113"
NAME = "missing-area"
SEVERITY = "warning"
OPTIONS: dict = {}
FIX = "safe"


def check(ds, options):
    missing = np.flatnonzero(np.isnan(ds.annotations.area))
    if missing.size == 0:
        return
    already = {i.index for i in ds.issues if i.section == "annotations" and i.field in ("area", None)}
    for row in missing.tolist():
        if row not in already:
            yield Problem("annotation has no 'area': pycocotools' COCOeval reads it for every evaluation and "
                          "raises KeyError", annotation=row, score=0.5,
                          fix=Fix("add the missing area", _area(ds, row)))


def _area(ds, row: int):
    def edits():
        from labellint.toolkit import values

        found = values.entry(ds, "annotations", row)
        value = None
        if found is not None and found.get("segmentation"):
            value = values.segmentation_area(ds, row)
        if value is None:
            w, h = (float(v) for v in ds.annotations.bbox[row, 2:])
            value = w * h if np.isfinite(w * h) and w >= 0 and h >= 0 else None
        return () if value is None else (set_field("annotations", row, "area", value),)
    return edits
