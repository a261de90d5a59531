"""An annotation with id 0, which pycocotools' evaluation cannot match.

## What it does
Reports the annotation whose `id` is 0.

## Why it matters
pycocotools' `COCOeval` records each match as the matched annotation's id, and an id of 0
means "unmatched". A ground-truth box with id 0 is therefore never counted as found: a perfect
detector scores below 1.0 AP, and every mAP computed on this file is silently wrong. Roboflow
exports start annotation ids at 0. (Image and category ids of 0 are harmless.)

## Example
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 0, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}],
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
Safe: give the annotation an unused id (or shift every annotation id by one). Nothing in a COCO
file refers to annotation ids.
"""

import numpy as np

from labellint.findings import Fix, Problem, set_field
from labellint.toolkit import fresh_annotation_ids

CODE = "LL014"
NAME = "annotation-id-zero"
SEVERITY = "error"
OPTIONS: dict = {}
FIX = "safe"


def check(ds, options):
    rows = np.flatnonzero(ds.annotations.id == 0).tolist()
    fresh = fresh_annotation_ids(ds) if rows else {}  # shared with LL010, so fixes never collide
    for row in rows:
        new_id = fresh[row]
        yield Problem("annotation id 0: pycocotools' COCOeval reads a match with id 0 as 'unmatched', so this box "
                      "never counts as detected and every mAP computed on this file is silently wrong; "
                      "start annotation ids at 1", annotation=row,
                      fix=Fix(f"give the annotation the unused id {new_id}",
                              (set_field("annotations", row, "id", new_id),)))
