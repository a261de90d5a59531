"""Images whose `width` or `height` is zero, negative or not a whole number.

## What it does
Reports images whose `width` or `height` is a number but not a positive whole number of
pixels. A missing or non-numeric size is reported by LL001, an infinite one by LL002.

## Why it matters
Every check of boxes against their image, every normalisation to [0, 1] (YOLO export,
torchvision transforms) and every mask decode uses the size: a zero size divides by zero, a
negative one flips boxes, and pycocotools rejects a fractional one when it rasterises masks.

## Example
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 0, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}],
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
None from the file alone: the true size is in the image file (the image rules read it when
`--images` is given).
"""

import numpy as np

from labellint.findings import Problem

CODE = "LL015"
NAME = "invalid-image-size"
SEVERITY = "error"
OPTIONS: dict = {}
FIX = "none"


def check(ds, options):
    for name, values in (("width", ds.images.width), ("height", ds.images.height)):
        finite = np.isfinite(values)
        not_positive = finite & (values <= 0)
        fractional = finite & ~not_positive & (values != np.floor(values))
        for row in np.flatnonzero(not_positive | fractional).tolist():
            v = float(values[row])
            why = f"is {v:g}" if not_positive[row] else f"{v:g} is not a whole number of pixels"
            yield Problem(f"image {name} {why}", image=row, pointer=f"/images/{row}/{name}", key=name)
