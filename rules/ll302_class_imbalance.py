"""Severe class imbalance: the largest class many times the smallest.

## What it does
Counts the annotations of each category that has any, and reports the file once (at its
smallest class) when the largest count is more than `max_ratio` times the smallest, listing
the smallest classes.

## Why it matters
A detector trained on such a file all but ignores the small classes unless training
compensates (repeat-factor sampling, class-balanced losses), and their AP estimates rest on a
few boxes. It is information for whoever sets up training, not an error in the file.

## Example
The examples use `max_ratio = 3`.
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
                 {"id": 2, "image_id": 1, "category_id": 1, "bbox": [10, 2, 3, 4]},
                 {"id": 3, "image_id": 1, "category_id": 1, "bbox": [20, 2, 3, 4]},
                 {"id": 4, "image_id": 1, "category_id": 1, "bbox": [30, 2, 3, 4]},
                 {"id": 5, "image_id": 1, "category_id": 2, "bbox": [40, 10, 5, 5]}],
 "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
                 {"id": 2, "image_id": 1, "category_id": 1, "bbox": [10, 2, 3, 4]},
                 {"id": 3, "image_id": 1, "category_id": 2, "bbox": [40, 10, 5, 5]}],
 "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
```

## Options
- `max_ratio` (float, default 100.0): the largest accepted ratio of the biggest class's count to
  the smallest's.

## Fix
None: label more of the small classes, merge them, or balance during training.
"""

import numpy as np

from labellint.findings import Problem

CODE = "LL302"
NAME = "class-imbalance"
SEVERITY = "info"
OPTIONS = {"max_ratio": 100.0}
OPTION_RANGES = {"max_ratio": (1, None)}
FIX = "none"
EXAMPLE_OPTIONS = {"max_ratio": 3.0}


def check(ds, options):
    limit = float(options["max_ratio"])
    rows = ds.ann_category_row
    counts = np.bincount(rows[rows >= 0], minlength=len(ds.categories))
    used = np.flatnonzero(counts > 0)
    if used.size < 2:
        return
    by_count = used[np.argsort(counts[used], kind="stable")]
    smallest, largest = int(by_count[0]), int(by_count[-1])
    ratio = counts[largest] / counts[smallest]
    if ratio <= limit:
        return
    small = ", ".join(f"{ds.category_name(r)!r} {counts[r]}" for r in by_count[:3].tolist())
    yield Problem(f"classes are severely imbalanced: {ds.category_name(largest)!r} has {counts[largest]} annotations, "
                  f"{ds.category_name(smallest)!r} {counts[smallest]} (ratio {ratio:.0f} > {limit:g}); "
                  f"smallest: {small}", category=smallest, score=1 - limit / ratio)
