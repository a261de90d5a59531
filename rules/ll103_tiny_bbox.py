"""Boxes smaller than a few pixels.

## What it does
Reports boxes (with a positive size) whose width or height is below `min_side_px`, or whose
area is below `min_area_px`.

## Why it matters
A box of a pixel or two is a stray click or a rounding artefact far more often than an object:
no detector resolves it (a stride-8 feature map does not see it), it adds hard negatives'
worth of noise to training, and in evaluation it is a ground truth nobody can find.

## Example
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 0.5, 4]}],
 "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 3, 4]}],
 "categories": [{"id": 1, "name": "cat"}]}
```

## Options
- `min_side_px` (float, default 1.0): boxes narrower or lower than this are reported.
- `min_area_px` (float, default 4.0): boxes with a smaller area (square pixels) are reported.

## Fix
None: delete the box if it is a stray click; keep it (and ignore this rule for the file) if the
dataset really labels objects this small.
"""

import numpy as np

from labellint.findings import Problem
from labellint.toolkit import box_columns

CODE = "LL103"
NAME = "tiny-bbox"
SEVERITY = "warning"
OPTIONS = {"min_side_px": 1.0, "min_area_px": 4.0}
OPTION_RANGES = {"min_side_px": (0, None), "min_area_px": (0, None)}
FIX = "none"


def check(ds, options):
    min_side, min_area = float(options["min_side_px"]), float(options["min_area_px"])
    bbox = ds.annotations.bbox
    _, _, w, h = box_columns(ds)
    with np.errstate(invalid="ignore"):
        side = np.minimum(w, h)
        area = w * h
        bad = np.flatnonzero((side > 0) & ((side < min_side) | (area < min_area)))
    # the smaller the box relative to the limits, the surer it is a stray
    shortfall = np.maximum(1 - side[bad] / max(min_side, 1e-9), 1 - area[bad] / max(min_area, 1e-9))
    for row, score in zip(bad.tolist(), np.clip(shortfall, 0, 1).tolist()):
        x, y, bw, bh = bbox[row].tolist()
        yield Problem(f"bbox [{x:g}, {y:g}, {bw:g}, {bh:g}] is tiny ({bw:g}x{bh:g}px; limits: side {min_side:g}px, "
                      f"area {min_area:g}px²): a stray click?", annotation=row, score=score)
