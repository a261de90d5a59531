"""Annotations whose `image_id` names no image in the file.

## What it does
Reports annotations that point at an image id that no entry of `images` has.

## Why it matters
Such a box belongs to no picture: loaders crash on it (pycocotools raises `KeyError` in
`showAnns` and evaluation) or drop it silently. It usually means images were removed from the
file without their annotations, or two files were merged with clashing ids.

## Example
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 2, "category_id": 1, "bbox": [1, 2, 3, 4]}],
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
Unsafe: delete the annotation (or restore its image entry). None when an image has this id
written as a string (`"id": "5"`): the message names that image, whose id is what to fix.
"""

import numpy as np

from labellint.findings import Fix, Problem, delete
from labellint.toolkit import MISSING_ID, idvalues

CODE = "LL011"
NAME = "unknown-image"
SEVERITY = "error"
OPTIONS: dict = {}
FIX = "unsafe"


def check(ds, options):
    image_id = ds.annotations.image_id
    bad = (ds.ann_image_row < 0) & (image_id != MISSING_ID)
    for row in np.flatnonzero(bad).tolist():
        message, mistyped = idvalues.unknown_reference(ds, "image_id", int(image_id[row]))
        # the image is there with its id mistyped: that id is the thing to fix, not this box
        fix = None if mistyped else Fix("delete the annotation", (delete("annotations", row),), "unsafe")
        yield Problem(message, annotation=row, fix=fix)
