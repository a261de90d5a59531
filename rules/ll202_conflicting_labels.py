"""One object with two classes: boxes of different categories on top of each other.

## What it does
Finds pairs of annotations on the same image, with different categories, whose boxes overlap
with an IoU of at least `min_iou`, and reports the later annotation of each pair with the class
of the other. Crowd regions and annotations of unknown images are left out. More than two boxes
linked by such overlaps are one pile: each box of it but the first is reported once, naming the
first, the pile's size and its number of classes (not once per pair: 3,000 copies of a box in
two classes would be 2.25 million findings). The search stops on an image as LL201's does, with
one warning.

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

from labellint.findings import Problem
from labellint.toolkit import capped_images, class_label, geometry

CODE = "LL202"
NAME = "conflicting-labels"
SEVERITY = "warning"
OPTIONS = {"min_iou": 0.95}
OPTION_RANGES = {"min_iou": (0, 1, "(]")}
FIX = "none"


def check(ds, options):
    ann = ds.annotations
    min_iou = float(options["min_iou"])
    pairs = geometry.same_image_overlaps(ds, min_iou)
    a, b, iou = pairs
    differ = ann.category_id[a] != ann.category_id[b]
    earlier, later, iou = np.minimum(a, b)[differ], np.maximum(a, b)[differ], iou[differ]
    pile = geometry.components(earlier, later, len(ann))  # each row's pile, by its first row
    pile_size = np.bincount(pile, minlength=len(ann))
    two = pile_size[pile[later]] == 2
    for i in np.flatnonzero(two)[np.lexsort((earlier[two], later[two]))].tolist():
        row, other = int(later[i]), int(earlier[i])
        yield Problem(f"labelled {class_label(ds, row)!r}, but overlaps annotation id {int(ann.id[other])} "
                      f"labelled {class_label(ds, other)!r} with IoU {iou[i]:.2f}: one object, two classes?",
                      annotation=row, score=float(iou[i]), key=f"with:{int(ann.id[other])}")
    piled = np.unique(np.concatenate([earlier[~two], later[~two]]))
    if piled.size:
        best = np.zeros(len(ann))
        np.maximum.at(best, earlier[~two], iou[~two])
        np.maximum.at(best, later[~two], iou[~two])
        heads = pile[piled]
        # classes per pile: distinct (pile, category) pairs counted by pile
        kinds = np.unique(np.stack([heads, ann.category_id[piled].astype(np.int64)]), axis=1)[0]
        classes = dict(zip(*(v.tolist() for v in np.unique(kinds, return_counts=True))))
        for row, head in zip(piled.tolist(), heads.tolist()):
            if row == head:
                continue
            yield Problem(f"labelled {class_label(ds, row)!r}, one of {int(pile_size[head])} boxes on one spot "
                          f"(IoU >= {min_iou:g} between them, up to {best[row]:.2f} for this one) labelled "
                          f"{classes[head]} ways, from annotation id {int(ann.id[head])} labelled "
                          f"{class_label(ds, head)!r}: one object, several classes?",
                          annotation=row, score=float(best[row]), key=f"with:{int(ann.id[head])}")
    yield from capped_images(ds, pairs.capped, "conflicting labels")
