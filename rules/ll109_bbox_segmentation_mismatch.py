"""Boxes that do not match the extent of their own segmentation.

## What it does
Compares each box with the bounding box of its segmentation (polygons or RLE) and reports
those whose IoU is below `min_iou` while some edge is more than `tolerance_px` away.

## Why it matters
In COCO the box is derived from the mask. When they disagree, one of them was edited or
transformed without the other (a flip, a crop, a resize applied to one list only), so a model
trained on this file learns boxes and masks that contradict each other, and box and mask mAP
measure different objects.

## Example
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [30, 20, 20, 10],
                  "segmentation": [[10, 10, 30, 10, 30, 20, 10, 20]]}],
 "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10],
                  "segmentation": [[10, 10, 30, 10, 30, 20, 10, 20]]}],
 "categories": [{"id": 1, "name": "cat"}]}
```

## Options
- `min_iou` (float, default 0.9): the lowest accepted IoU between the box and the extent.
- `tolerance_px` (float, default 2.0): edge differences up to this many pixels are always
  accepted, so that small objects and masks rasterised to whole pixels are not reported.

## Fix
Unsafe: set the box to the segmentation's extent, if the segmentation is the one that is right.
"""

import numpy as np

from labellint.findings import Fix, Problem, set_field
from labellint.toolkit import geometry

CODE = "LL109"
NAME = "bbox-segmentation-mismatch"
SEVERITY = "warning"
OPTIONS = {"min_iou": 0.9, "tolerance_px": 2.0}
OPTION_RANGES = {"min_iou": (0, 1), "tolerance_px": (0, None)}
FIX = "unsafe"
REQUIRES = ("segmentations",)  # the polygon summary: a late pass (labellint.passes)


def _fmt(box) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in box) + "]"


def check(ds, options):
    min_iou, tol = float(options["min_iou"]), float(options["tolerance_px"])
    _, extent = geometry.segmentation_shapes(ds)
    bbox = ds.annotations.bbox
    bx, by, bw, bh = geometry.box_columns(ds)
    ex, ey, ew, eh = extent.T
    # edges first: most boxes are within the tolerance of their extent, and need no IoU
    with np.errstate(invalid="ignore"):  # Infinity in a box (LL002's) makes nan here
        edge = np.abs(bx - ex)  # the largest edge difference; nan where either is nan
        np.maximum(edge, np.abs(by - ey), out=edge)
        np.maximum(edge, np.abs((bx + bw) - (ex + ew)), out=edge)
        np.maximum(edge, np.abs((by + bh) - (ey + eh)), out=edge)
        rows = np.flatnonzero((edge > tol) & (ew > 0) & (eh > 0) & (bw > 0) & (bh > 0))
    a, b = bbox[rows], extent[rows]
    iou = geometry.box_iou(a, b)
    for i in np.flatnonzero(iou < min_iou).tolist():
        yield Problem(f"bbox {_fmt(a[i])} does not match its segmentation's extent {_fmt(b[i])} "
                      f"(IoU {iou[i]:.2f})", annotation=int(rows[i]), score=1.0 - float(iou[i]),
                      fix=Fix("set the box to the segmentation's extent",
                              (set_field("annotations", int(rows[i]), "bbox", [float(v) for v in b[i]]),), "unsafe"))
