"""Crowd annotations (`iscrowd: 1`) drawn as polygons.

## What it does
Reports annotations with `iscrowd` 1 whose segmentation is a list of polygons rather than an
RLE mask.

## Why it matters
COCO stores crowd regions (a group of objects too dense to outline one by one) as RLE; a
polygon with `iscrowd: 1` is usually a single object with the flag set by mistake. Evaluation
ignores every detection on a crowd region and most loaders drop crowd boxes from training, so
the object silently disappears from both.

## Example
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10], "iscrowd": 1,
                  "segmentation": [[10, 10, 30, 10, 30, 20, 10, 20]]}],
 "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10], "iscrowd": 0,
                  "segmentation": [[10, 10, 30, 10, 30, 20, 10, 20]]}],
 "categories": [{"id": 1, "name": "cat"}]}
```

## Options
None.

## Fix
Unsafe: set `iscrowd` to 0 (`--unsafe-fixes`) if it is one object, or convert the polygons to
RLE if it really is a crowd.
"""

import numpy as np

from labellint.findings import Fix, Problem, set_field
from labellint.toolkit import geometry

CODE = "LL112"
NAME = "crowd-polygon"
SEVERITY = "warning"
OPTIONS: dict = {}
FIX = "unsafe"
REQUIRES = ("segmentations",)  # the polygon summary: a late pass (labellint.passes)


def check(ds, options):
    crowd = ds.annotations.iscrowd == 1
    if not crowd.any():
        return
    kind = geometry.segmentations(ds).kind
    for row in np.flatnonzero(crowd & (kind == geometry.POLYGONS)).tolist():
        yield Problem("crowd annotation (iscrowd 1) stored as polygons: one object flagged as a crowd by "
                      "mistake? Evaluation ignores detections on it and training usually drops it",
                      annotation=row, pointer=f"/annotations/{row}/iscrowd", score=0.7,
                      fix=Fix("set iscrowd to 0", (set_field("annotations", row, "iscrowd", 0),), "unsafe"))
