"""Segmentations that are not valid polygons.

## What it does
Reports annotations whose `segmentation` is neither a list of polygons nor an RLE object (a
flat list of numbers, a string, a polygon holding a non-number), and polygons that have an odd
number of coordinates, fewer than 3 points, or zero area (all points on one line). An empty
list `[]` means "no segmentation" and is accepted.

## Why it matters
pycocotools rasterises polygons pairwise: an odd coordinate is dropped or read out of bounds,
a polygon of exactly 4 numbers is silently taken for a box `[x, y, w, h]`, and a flat list
crashes `annToMask`. A zero-area polygon becomes an empty mask, which mask losses and the
segmentation metrics count as an object nobody can find.

## Example
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10],
                  "segmentation": [[10, 10, 30, 10, 30]]}],
 "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10],
                  "segmentation": [[10, 10, 30, 10, 30, 20]]}],
 "categories": [{"id": 1, "name": "cat"}]}
```

## Options
None.

## Fix
None: the shape must be redrawn. Dropping a broken polygon from an annotation that has others
is safe only if those cover the object.
"""

from labellint.findings import Problem
from labellint.toolkit import geometry

CODE = "LL106"
NAME = "invalid-polygon"
SEVERITY = "error"
OPTIONS: dict = {}
FIX = "none"
REQUIRES = ("segmentations",)  # the polygon summary: a late pass (labellint.passes)
_LISTED = 10  # polygons named in one finding; an entry of a million broken ones says how many more


def check(ds, options):
    seg = geometry.segmentations(ds)
    for row, message in sorted(seg.malformed.items()):
        yield Problem(message, annotation=row, pointer=f"/annotations/{row}/segmentation")
    ann, index, length, area = geometry.invalid_polygons(ds)  # odd, fewer than 3 points or flat
    reasons: dict[int, list[str]] = {}
    for row, k, n in zip(ann.tolist(), index.tolist(), length.tolist()):
        if n % 2 == 1:
            why = f"has an odd number of coordinates ({n}): the last x has no y"
        elif n // 2 < 3:
            why = f"has {n // 2} point{'s' * (n != 2)}, fewer than 3"
            if n == 4:
                why += " (pycocotools takes 4 numbers for a box [x, y, w, h])"
        else:
            why = "has zero area: its points lie on one line"
        reasons.setdefault(row, []).append(f"polygon {k} {why}")
    for row, parts in reasons.items():
        more = f"; and {len(parts) - _LISTED} more" if len(parts) > _LISTED else ""
        yield Problem("; ".join(parts[:_LISTED]) + more, annotation=row, pointer=f"/annotations/{row}/segmentation")
