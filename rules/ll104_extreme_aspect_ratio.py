"""Boxes that are extremely thin: one side many times the other.

## What it does
Reports boxes whose longer side is more than `max_ratio` times their shorter side.

## Why it matters
Real objects rarely are: such a box is usually a slip of the mouse at the end of a drag, or
a box whose width or height was scaled by the wrong image dimension. Anchor-based detectors
cannot match it to any anchor, so it contributes only noise.

## Example
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 300, 3]}],
 "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 300, 200]}],
 "categories": [{"id": 1, "name": "cat"}]}
```

## Options
- `max_ratio` (float, default 20.0): the longest accepted side ratio. Per-class outliers in
  shape are LL304's.

## Fix
None: redraw the box, or raise `max_ratio` for datasets of thin objects (poles, cracks, text
lines).
"""

import numpy as np

from labellint.findings import Problem
from labellint.toolkit import box_columns

CODE = "LL104"
NAME = "extreme-aspect-ratio"
SEVERITY = "warning"
OPTIONS = {"max_ratio": 20.0}
OPTION_RANGES = {"max_ratio": (1, None)}
FIX = "none"


def check(ds, options):
    limit = float(options["max_ratio"])
    bbox = ds.annotations.bbox
    _, _, w, h = box_columns(ds)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.maximum(w, h) / np.minimum(w, h)
        bad = np.flatnonzero((w > 0) & (h > 0) & (ratio > limit))
    # one gather and one tolist for all rows: a file may hold tens of thousands of such boxes
    for row, (x, y, bw, bh), r in zip(bad.tolist(), np.take(bbox, bad, axis=0).tolist(), ratio[bad].tolist()):
        yield Problem(f"bbox [{x:g}, {y:g}, {bw:g}, {bh:g}] is {r:.3g} times {'wider' if bw > bh else 'taller'} "
                      f"than it is {'high' if bw > bh else 'wide'} (limit {limit:g})",
                      annotation=row, score=1 - limit / r)
