"""One object with two classes: boxes of different categories on top of each other.

## What it does
Finds pairs of annotations on the same image, with different categories, whose boxes overlap
with an IoU of at least `min_iou`, and reports the later annotation of each pair with the class
of the other. Crowd regions and annotations of unknown images are left out.

## Why it matters
Two classes on one box is almost always a labelling mistake: an annotator relabelled the object
by drawing a new box instead of changing the class, or two annotators disagreed and both
labels were kept. The detector is trained to predict both classes at once, and one of the two
is always a missed object in evaluation.

## Example
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10]},
                 {"id": 2, "image_id": 1, "category_id": 2, "bbox": [10, 10, 20, 10]}],
 "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10]},
                 {"id": 2, "image_id": 1, "category_id": 2, "bbox": [30, 20, 20, 10]}],
 "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
```

## Options
- `min_iou` (float, default 0.95): IoU from which two boxes count as one object. Datasets with
  nested classes that share boxes (`person` and `rider`) need it higher, or this rule ignored.

## Fix
None: which class is right needs a look at the picture.
"""

import numpy as np

from labellint import geometry
from labellint.findings import Problem

CODE = "LL202"
NAME = "conflicting-labels"
SEVERITY = "warning"
OPTIONS = {"min_iou": 0.95}
FIX = "none"


def check(ds, options):
    ann = ds.annotations
    a, b, iou = geometry.same_image_overlaps(ds, float(options["min_iou"]))
    differ = ann.category_id[a] != ann.category_id[b]
    earlier, later, iou = np.minimum(a, b)[differ], np.maximum(a, b)[differ], iou[differ]
    for i in np.lexsort((earlier, later)).tolist():
        row, other = int(later[i]), int(earlier[i])
        yield Problem(f"labelled {_category(ds, row)!r}, but overlaps annotation id {int(ann.id[other])} "
                      f"labelled {_category(ds, other)!r} with IoU {iou[i]:.2f}: one object, two classes?",
                      annotation=row, score=float(iou[i]), key=f"with:{int(ann.id[other])}")


def _category(ds, row: int) -> str:
    crow = int(ds.ann_category_row[row])
    return ds.category_name(crow) if crow >= 0 else f"#{int(ds.annotations.category_id[row])}"
