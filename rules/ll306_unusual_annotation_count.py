"""Images with far more or far fewer boxes than the others.

## What it does
Counts the annotations of each image that has any, and scores each count on a log scale by how
far it lies from the median image in robust standard deviations (the distance from the median
to the quartile on its side: counts are skewed, and most files have a long tail of busy
images). Reports images beyond `z_threshold` whose count is also at least twice or at most half
the median, the most extreme first. Files with fewer than `min_images` annotated images are
skipped.

## Why it matters
An image with one box where a typical one has forty was probably labelled only in part (the
rest of its objects now train as background); one with hundreds may hold duplicated or
exploded annotations (a polygon export that made a box per vertex).

## Example
The examples use `min_images = 5` and `z_threshold = 3`.
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
            {"id": 2, "file_name": "b.jpg", "width": 64, "height": 48},
            {"id": 3, "file_name": "c.jpg", "width": 64, "height": 48},
            {"id": 4, "file_name": "d.jpg", "width": 64, "height": 48},
            {"id": 5, "file_name": "e.jpg", "width": 64, "height": 48},
            {"id": 6, "file_name": "f.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
                 {"id": 2, "image_id": 2, "category_id": 1, "bbox": [1, 2, 3, 4]},
                 {"id": 3, "image_id": 3, "category_id": 1, "bbox": [1, 2, 3, 4]},
                 {"id": 4, "image_id": 4, "category_id": 1, "bbox": [1, 2, 3, 4]},
                 {"id": 5, "image_id": 5, "category_id": 1, "bbox": [1, 2, 3, 4]},
                 {"id": 6, "image_id": 6, "category_id": 1, "bbox": [1, 2, 3, 4]},
                 {"id": 7, "image_id": 6, "category_id": 1, "bbox": [9, 2, 3, 4]},
                 {"id": 8, "image_id": 6, "category_id": 1, "bbox": [17, 2, 3, 4]},
                 {"id": 9, "image_id": 6, "category_id": 1, "bbox": [25, 2, 3, 4]},
                 {"id": 10, "image_id": 6, "category_id": 1, "bbox": [33, 2, 3, 4]}],
 "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
            {"id": 2, "file_name": "b.jpg", "width": 64, "height": 48},
            {"id": 3, "file_name": "c.jpg", "width": 64, "height": 48},
            {"id": 4, "file_name": "d.jpg", "width": 64, "height": 48},
            {"id": 5, "file_name": "e.jpg", "width": 64, "height": 48},
            {"id": 6, "file_name": "f.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
                 {"id": 2, "image_id": 2, "category_id": 1, "bbox": [1, 2, 3, 4]},
                 {"id": 3, "image_id": 3, "category_id": 1, "bbox": [1, 2, 3, 4]},
                 {"id": 4, "image_id": 4, "category_id": 1, "bbox": [1, 2, 3, 4]},
                 {"id": 5, "image_id": 5, "category_id": 1, "bbox": [1, 2, 3, 4]},
                 {"id": 6, "image_id": 6, "category_id": 1, "bbox": [1, 2, 3, 4]}],
 "categories": [{"id": 1, "name": "cat"}]}
```

## Options
- `z_threshold` (float, default 5.0): robust z-score beyond which an image is reported.
- `min_images` (int, default 20): files with fewer annotated images are skipped.

## Fix
None: look at the image; complete its labels or remove duplicated ones.
"""

import numpy as np

from labellint.findings import Problem
from labellint.toolkit import outlier_score, robust_z

CODE = "LL306"
NAME = "unusual-annotation-count"
SEVERITY = "info"
OPTIONS = {"z_threshold": 5.0, "min_images": 20}
OPTION_RANGES = {"z_threshold": (0, None, "(]"), "min_images": (1, 2**62)}
FIX = "none"
EXAMPLE_OPTIONS = {"min_images": 5, "z_threshold": 3.0}

_MIN_FACTOR = np.log(2.0)  # counts within a factor of two of the median are never unusual


def check(ds, options):
    threshold = float(options["z_threshold"])
    rows = ds.ann_image_row
    counts = np.bincount(rows[rows >= 0], minlength=len(ds.images))
    annotated = np.flatnonzero(counts > 0)
    log_count = np.log(counts[annotated].astype(np.float64))
    z, median = robust_z(log_count, np.zeros(len(annotated), np.int64), int(options["min_images"]))
    with np.errstate(invalid="ignore"):
        flagged = np.flatnonzero((np.abs(z) > threshold) & (np.abs(log_count - median) >= _MIN_FACTOR))
    score = outlier_score(z[flagged], threshold)
    for i, s in zip(flagged.tolist(), score.tolist()):
        n, typical = int(counts[annotated[i]]), float(np.exp(median[i]))
        relation = "many more" if n > typical else "far fewer"
        yield Problem(f"image has {n} annotation{'s' * (n != 1)}, {relation} than the typical image's {typical:.3g} "
                      f"(robust z {z[i]:+.1f}): {'duplicated boxes?' if n > typical else 'labelled only in part?'}",
                      image=int(annotated[i]), score=s)
