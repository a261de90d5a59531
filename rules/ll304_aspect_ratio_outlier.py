"""Boxes whose shape is unusual for their class.

## What it does
For every class with at least `min_class_size` boxes, takes each box's aspect ratio
(width / height) on a log scale and scores how far it lies from the class median in robust
standard deviations (the distance from the median to the quartile on the box's side). Reports
boxes beyond `z_threshold` that are also at least twice as wide or as tall, relatively, as the
typical box, the most extreme first.

## Why it matters
Objects of one class have a typical shape: a standing person is tall, a car is wide. A "person"
box that is five times wider than tall is usually a box drawn around something else, two
objects in one box, or a box with width and height swapped by an export.

## Example
The examples use `min_class_size = 5`.
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 40]},
                 {"id": 2, "image_id": 1, "category_id": 1, "bbox": [50, 0, 22, 42]},
                 {"id": 3, "image_id": 1, "category_id": 1, "bbox": [100, 0, 18, 38]},
                 {"id": 4, "image_id": 1, "category_id": 1, "bbox": [150, 0, 21, 40]},
                 {"id": 5, "image_id": 1, "category_id": 1, "bbox": [200, 0, 19, 41]},
                 {"id": 6, "image_id": 1, "category_id": 1, "bbox": [0, 100, 200, 40]}],
 "categories": [{"id": 1, "name": "person"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 40]},
                 {"id": 2, "image_id": 1, "category_id": 1, "bbox": [50, 0, 22, 42]},
                 {"id": 3, "image_id": 1, "category_id": 1, "bbox": [100, 0, 18, 38]},
                 {"id": 4, "image_id": 1, "category_id": 1, "bbox": [150, 0, 21, 40]},
                 {"id": 5, "image_id": 1, "category_id": 1, "bbox": [200, 0, 19, 41]},
                 {"id": 6, "image_id": 1, "category_id": 1, "bbox": [0, 100, 40, 80]}],
 "categories": [{"id": 1, "name": "person"}]}
```

## Options
- `z_threshold` (float, default 5.0): robust z-score beyond which a box is reported.
- `min_class_size` (int, default 20): classes with fewer boxes have no reliable typical shape
  and are skipped.

## Fix
None: look at the box; redraw it or fix its class.
"""

import numpy as np

from labellint.findings import Problem
from labellint.toolkit import box_columns, class_outliers

CODE = "LL304"
NAME = "aspect-ratio-outlier"
SEVERITY = "info"
OPTIONS = {"z_threshold": 5.0, "min_class_size": 20}
OPTION_RANGES = {"z_threshold": (0, None, "(]"), "min_class_size": (1, 2**62)}
FIX = "none"
EXAMPLE_OPTIONS = {"min_class_size": 5}

_MIN_FACTOR = np.log(2.0)  # a shape within a factor of two of the typical one is not worth a look


def check(ds, options):
    threshold = float(options["z_threshold"])
    bbox = ds.annotations.bbox
    with np.errstate(invalid="ignore", divide="ignore"):
        _, _, w, h = box_columns(ds)
        log_ratio = np.where((w > 0) & (h > 0), np.log(w / h), np.nan)
    flagged, z, median, score = class_outliers(log_ratio, ds, threshold, int(options["min_class_size"]), _MIN_FACTOR)
    for row, s in zip(flagged.tolist(), score.tolist()):
        w, h = bbox[row, 2], bbox[row, 3]
        shape = "wide" if log_ratio[row] > median[row] else "tall"
        name = ds.category_name(int(ds.ann_category_row[row]))
        yield Problem(f"box {w:g}x{h:g}px (width/height {w / h:.3g}) is unusually {shape} for {name!r} "
                      f"(median width/height {np.exp(median[row]):.3g}; robust z {z[row]:+.1f})",
                      annotation=row, score=s)

