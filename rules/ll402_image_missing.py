"""Images whose file is not under the image root.

## What it does
Reports image entries whose `file_name` names no file under the `--images` root. For the common
layout where each split's JSON sits beside its pictures (`train/_annotations.coco.json` with
`train/0001.jpg`), the annotation file's own folder is searched too when it lies inside the root.

## Why it matters
Training loaders crash on the first missing file, or worse, skip it and train on fewer images
than the file claims; evaluation then counts its boxes as missed.

## Example
With an image root that holds only `a.jpg`:
```json bad
{"images": [{"id": 7, "file_name": "missing.jpg", "width": 64, "height": 48}],
 "annotations": [], "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [], "categories": [{"id": 1, "name": "cat"}]}
```

## Options
None.

## Fix
Unsafe: delete the image entry and its annotations, or restore the file.
"""

from labellint.findings import Fix, Problem
from labellint.toolkit import drop_image
from labellint.toolkit import images

CODE = "LL402"
NAME = "image-missing"
SEVERITY = "error"
OPTIONS: dict = {}
FIX = "unsafe"
REQUIRES = ("images",)
#: what the examples' image root holds (tests/rule_examples.py builds it)
EXAMPLE_IMAGES = {"a.jpg": "64x48"}


def check(ds, options, context):
    annotated = set(ds.ann_image_row[ds.ann_image_row >= 0].tolist())
    for row, info in enumerate(context.result("images")):
        if info.status == images.MISSING:
            boxes = " (it has annotations)" if row in annotated else ""
            why = f": {info.message}" if info.message else ""
            yield Problem(f"image file '{ds.images.file_name[row]}' not found under the image root{boxes}{why}",
                          image=row, score=1.0 if boxes else 0.8,
                          fix=Fix("delete the image entry and its annotations", drop_image(ds, row), "unsafe"))
