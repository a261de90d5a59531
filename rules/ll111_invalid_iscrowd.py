"""`iscrowd` values other than 0 and 1.

## What it does
Reports annotations whose `iscrowd` is an integer other than 0 or 1. (A non-integer is
reported by LL001.)

## Why it matters
pycocotools treats any non-zero `iscrowd` as a crowd region: the object becomes an area where
detections are ignored, neither rewarded nor punished, and it is dropped from training by most
loaders. A value like 2 or -1 is an export bug that silently removes objects.

## Example
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "iscrowd": 2}],
 "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "iscrowd": 0}],
 "categories": [{"id": 1, "name": "cat"}]}
```

## Options
None.

## Fix
None: 0 or 1 depends on what the exporter meant.
"""

import numpy as np

from labellint.findings import Problem
from labellint.toolkit import MISSING_ID

CODE = "LL111"
NAME = "invalid-iscrowd"
SEVERITY = "error"
OPTIONS: dict = {}
FIX = "none"


def check(ds, options):
    iscrowd = ds.annotations.iscrowd
    for row in np.flatnonzero((iscrowd != 0) & (iscrowd != 1) & (iscrowd != MISSING_ID)).tolist():
        yield Problem(f"'iscrowd' is {int(iscrowd[row])}; COCO allows 0 (an object) or 1 (a crowd region that "
                      "evaluation ignores), and pycocotools reads any non-zero value as 1",
                      annotation=row, pointer=f"/annotations/{row}/iscrowd")
