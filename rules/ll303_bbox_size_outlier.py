"""Boxes far larger or smaller than the other boxes of their class.

## What it does
For every class with at least `min_class_size` boxes, takes the size of each box (the square
root of its area) on a log scale and scores how far it lies from the class median in robust
standard deviations: the distance from the median to the quartile on the box's side, which a
few bad boxes cannot drag along and which keeps the long side of a skewed class from being
reported. Reports boxes beyond `z_threshold` that are also at least twice or at most half the
median size, the most extreme first.

## Why it matters
A "bottle" box that covers the whole picture, or a "car" of four pixels, is usually a box drawn
for another object, a class picked from the wrong row of a menu, or coordinates in the wrong
unit (normalised instead of pixels). Outliers in size are where such mistakes are cheapest to
find.

## Example
The examples use `min_class_size = 5`.
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20]},
                 {"id": 2, "image_id": 1, "category_id": 1, "bbox": [50, 0, 22, 20]},
                 {"id": 3, "image_id": 1, "category_id": 1, "bbox": [100, 0, 18, 21]},
                 {"id": 4, "image_id": 1, "category_id": 1, "bbox": [150, 0, 21, 19]},
                 {"id": 5, "image_id": 1, "category_id": 1, "bbox": [200, 0, 19, 22]},
                 {"id": 6, "image_id": 1, "category_id": 1, "bbox": [0, 100, 400, 380]}],
 "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20]},
                 {"id": 2, "image_id": 1, "category_id": 1, "bbox": [50, 0, 22, 20]},
                 {"id": 3, "image_id": 1, "category_id": 1, "bbox": [100, 0, 18, 21]},
                 {"id": 4, "image_id": 1, "category_id": 1, "bbox": [150, 0, 21, 19]},
                 {"id": 5, "image_id": 1, "category_id": 1, "bbox": [200, 0, 19, 22]},
                 {"id": 6, "image_id": 1, "category_id": 1, "bbox": [0, 100, 30, 28]}],
 "categories": [{"id": 1, "name": "cat"}]}
```

## Options
- `z_threshold` (float, default 5.0): robust z-score beyond which a box is reported.
- `min_class_size` (int, default 20): classes with fewer boxes have no reliable typical size
  and are skipped.

## Fix
None: look at the box; fix its class or its coordinates.
"""

import numpy as np

from labellint.findings import Problem
from labellint.toolkit import box_columns, class_outliers

CODE = "LL303"
NAME = "bbox-size-outlier"
SEVERITY = "info"
OPTIONS = {"z_threshold": 5.0, "min_class_size": 20}
OPTION_RANGES = {"z_threshold": (0, None, "(]"), "min_class_size": (1, 2**62)}
FIX = "none"
EXAMPLE_OPTIONS = {"min_class_size": 5}

_MIN_FACTOR = np.log(2.0)  # below twice (or half) the typical size nothing is worth a look


def check(ds, options):
    threshold = float(options["z_threshold"])
    bbox = ds.annotations.bbox
    with np.errstate(invalid="ignore", divide="ignore"):
        _, _, w, h = box_columns(ds)
        side = np.sqrt(w * h)
        log_side = np.where(side > 0, np.log(side), np.nan)
    flagged, z, median, score = class_outliers(log_side, ds, threshold, int(options["min_class_size"]), _MIN_FACTOR)
    for row, s in zip(flagged.tolist(), score.tolist()):
        factor = float(np.exp(log_side[row] - median[row]))
        relation = f"{factor:.3g}x larger" if factor > 1 else f"{1 / factor:.3g}x smaller"
        w, h = bbox[row, 2], bbox[row, 3]
        name = ds.category_name(int(ds.ann_category_row[row]))
        yield Problem(f"box {w:g}x{h:g}px is {relation} than the typical {name!r} box "
                      f"(median side {np.exp(median[row]):.3g}px; robust z {z[row]:+.1f})", annotation=row, score=s)

