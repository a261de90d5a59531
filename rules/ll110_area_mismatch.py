"""`area` values that disagree with the shape they describe.

## What it does
Compares each annotation's `area` with the area of its segmentation (summed polygon areas, or
the RLE's pixel count), or with the box's `width * height` when it has no segmentation, and
reports differences beyond `relative_tolerance` plus 0.6 x (width + height) of the shape (what
rasterising a polygon to whole pixels can change). An annotation without an `area` is LL113's.

## Why it matters
COCO evaluation splits objects into small, medium and large by `area`, not by the box: wrong
areas move objects between AP_S, AP_M and AP_L. A stale area is also a sign that the shape was
edited after export.

## Example
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10], "area": 2000}],
 "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10], "area": 200}],
 "categories": [{"id": 1, "name": "cat"}]}
```

## Options
- `relative_tolerance` (float, default 0.1): accepted difference as a share of the larger of
  the two areas.

## Fix
Safe: set `area` to the segmentation's area, rasterised at the image's size as pycocotools does
(or to `width * height` without segmentation).
"""

import numpy as np

from labellint.findings import Fix, Problem, set_field
from labellint.toolkit import geometry

CODE = "LL110"
NAME = "area-mismatch"
SEVERITY = "warning"
OPTIONS = {"relative_tolerance": 0.1}
OPTION_RANGES = {"relative_tolerance": (0, None)}
FIX = "safe"
REQUIRES = ("segmentations",)  # the polygon summary: a late pass (labellint.passes)

# COCO's area is the rasterised mask's pixel count; for random polygons it differs from the exact
# polygon area by up to about 0.55 x (width + height), most for the smallest shapes
_RASTER_SLACK = 0.6


def check(ds, options):
    rel = float(options["relative_tolerance"])
    area = ds.annotations.area
    seg_area, extent = geometry.segmentation_shapes(ds)
    no_segmentation = geometry.segmentations(ds).kind == geometry.NONE
    # Infinity in a box (LL002's) makes nan here; a huge tolerance, an infinite allowance
    with np.errstate(invalid="ignore", over="ignore"):
        _, _, w, h = geometry.box_columns(ds)
        reference = np.where(no_segmentation, w * h, seg_area)
        size = np.where(no_segmentation, w + h, extent[:, 2] + extent[:, 3])  # width + height
        diff = np.abs(area - reference)
        allowed = rel * np.maximum(area, reference) + _RASTER_SLACK * size
        flagged = np.flatnonzero(np.isfinite(diff) & (diff > allowed))
    for row in flagged.tolist():
        ref = float(reference[row])
        what = "the box's width x height" if no_segmentation[row] else "the segmentation's area"
        yield Problem(f"area {area[row]:.6g} differs from {what} {ref:.6g}",
                      annotation=row, pointer=f"/annotations/{row}/area",
                      score=min(1.0, float(diff[row]) / max(float(area[row]), ref, 1e-9)),
                      fix=Fix("set area from the " + ("box" if no_segmentation[row] else "segmentation"),
                              _area_fix(ds, row, ref if no_segmentation[row] else None)))


def _area_fix(ds, row: int, box_area: float | None):
    """Edits setting ``area``: ``w * h`` without a segmentation, else the mask's pixel count at the
    image's size, as pycocotools computes it (computed only when fixing)."""
    def edits():
        from labellint.toolkit import values

        value = box_area if box_area is not None else values.segmentation_area(ds, row)
        return () if value is None else (set_field("annotations", row, "area", value),)
    return edits
