"""The same object labelled twice: two boxes of one class on top of each other.

## What it does
Finds pairs of annotations on the same image, with the same category, whose boxes overlap with
an IoU of at least `min_iou`, and reports the later annotation of each pair (once, naming the
earlier one it duplicates). Crowd regions and annotations of unknown images are left out. A pile
of more than two such boxes is still one finding per copy, each also naming the pile's first
box and its size. On an image with so many overlapping candidates that comparing them all would
cost more than `LABELLINT_MAX_OVERLAP_PAIRS_PER_BOX` (default 64) pairs per box, the search
stops there and one warning on the image says that its duplicates may be incomplete.

## Why it matters
A duplicated box is a ground truth no detector can match twice: after non-maximum suppression
the second copy always counts as a missed object, capping recall and AP. In training it doubles
the object's weight. Double clicks in labelling tools and merges of overlapping exports cause it.

## Example
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10]},
                 {"id": 2, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10.5]}],
 "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10]},
                 {"id": 2, "image_id": 1, "category_id": 1, "bbox": [25, 15, 20, 10]}],
 "categories": [{"id": 1, "name": "cat"}]}
```

## Options
- `min_iou` (float, default 0.9): IoU from which two boxes of one class count as one object.

## Fix
Unsafe: delete the later annotation, since two real objects can overlap this much (a stack of
plates seen from above). An exact duplicate (every field but the id equal) is deleted by `--fix`
as safe: it is the same label twice.
"""

import numpy as np

from labellint.findings import Fix, Problem, Severity, delete
from labellint.toolkit import capped_images, class_label, geometry

CODE = "LL201"
NAME = "duplicate-annotation"
SEVERITY = "error"
OPTIONS = {"min_iou": 0.9}
OPTION_RANGES = {"min_iou": (0, 1, "(]")}
FIX = "unsafe"


def check(ds, options):
    ann = ds.annotations
    pairs = geometry.same_image_overlaps(ds, float(options["min_iou"]))
    a, b, iou = pairs
    same = ann.category_id[a] == ann.category_id[b]
    earlier, later, iou = np.minimum(a, b)[same], np.maximum(a, b)[same], iou[same]
    pile = geometry.components(earlier, later, len(ann))  # each row's pile, by its first row
    pile_size = np.bincount(pile, minlength=len(ann))
    # one finding per duplicate: the pair with the highest IoU (then the earliest partner)
    order = np.lexsort((earlier, -iou, later))
    first = np.concatenate([[True], later[order][1:] != later[order][:-1]]) if order.size else order.astype(bool)
    for i in order[first].tolist():
        row, other = int(later[i]), int(earlier[i])
        identical = np.array_equal(ann.bbox[row], ann.bbox[other])
        overlap = "an identical box" if identical else f"IoU {iou[i]:.2f}"
        size, head = int(pile_size[pile[row]]), int(pile[row])
        piled = f"; one of {size} such boxes piled from annotation id {int(ann.id[head])} (/annotations/{head})"
        yield Problem(f"duplicate of annotation id {int(ann.id[other])} (/annotations/{other}): same class "
                      f"{class_label(ds, row)!r}, {overlap}{piled if size > 2 else ''}", annotation=row,
                      score=float(iou[i]), fix=_drop(ds, row, other, identical))
    yield from capped_images(ds, pairs.capped, "duplicates")


def _drop(ds, row: int, other: int, identical_box: bool) -> Fix:
    """Delete the later annotation: safe when it is the earlier one again (every field but the id
    equal), unsafe when only the boxes overlap."""
    from labellint.toolkit import values

    exact = False
    if identical_box:
        a, b = values.entry(ds, "annotations", row), values.entry(ds, "annotations", other)
        exact = a is not None and b is not None and {**a, "id": None} == {**b, "id": None}
    return Fix("delete the exact duplicate" if exact else "delete the later, overlapping annotation",
               (delete("annotations", row),), "safe" if exact else "unsafe")
