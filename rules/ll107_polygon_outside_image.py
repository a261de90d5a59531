"""Polygons with points outside their image.

## What it does
Reports annotations whose polygon points reach past the left, top, right or bottom edge of
their image by more than `tolerance_px`, and says by how much. RLE masks cannot leave their
image (their size is checked by LL108).

## Why it matters
The same causes as a box outside its image (LL105): a shape drawn on a resized or rotated
copy of the picture, or shifted by an export bug. Rasterising it clips the mask silently, so
mask and box disagree, and augmentations that transform points may raise.

## Example
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [40, 10, 20, 10],
                  "segmentation": [[40, 10, 80, 10, 80, 20, 40, 20]]}],
 "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [40, 10, 20, 10],
                  "segmentation": [[40, 10, 60, 10, 60, 20, 40, 20]]}],
 "categories": [{"id": 1, "name": "cat"}]}
```

## Options
- `tolerance_px` (float, default 1.0): overshoot in pixels that is accepted; many tools put
  points on the pixel border at `width` rather than `width - 1`.

## Fix
Safe: clip the polygons to the image (their intersection with it, not moved points) and recompute
`area` from the clipped mask; a box that sticks out too is LL105's fix.
"""

import numpy as np

from labellint import geometry
from labellint.findings import Fix, Problem, set_field

CODE = "LL107"
NAME = "polygon-outside-image"
SEVERITY = "error"
OPTIONS = {"tolerance_px": 1.0}
FIX = "safe"


def check(ds, options):
    tol = float(options["tolerance_px"])
    seg = geometry.segmentations(ds)
    _, extent = geometry.segmentation_shapes(ds)
    image = ds.ann_image_row
    ann = np.flatnonzero((seg.kind == geometry.POLYGONS) & (image >= 0) & np.isfinite(extent).all(axis=1))
    w, h = ds.images.width[image[ann]], ds.images.height[image[ann]]
    x, y, ew, eh = extent[ann].T
    with np.errstate(invalid="ignore"):
        over = np.stack([-x, -y, x + ew - w, y + eh - h], axis=1)  # left, top, right, bottom
        worst = over.max(axis=1)
        flagged = np.flatnonzero((worst > tol) & (w > 0) & (h > 0))
    sides = ("left", "top", "right", "bottom")
    for i in flagged.tolist():
        parts = [f"{sides[s]} by {over[i, s]:.4g}px" for s in range(4) if over[i, s] > tol]
        yield Problem(f"polygon points lie outside the {w[i]:g}x{h[i]:g} image: {', '.join(parts)}",
                      annotation=int(ann[i]), pointer=f"/annotations/{int(ann[i])}/segmentation",
                      score=min(1.0, 0.5 + float(worst[i]) / (2 * max(float(w[i]), float(h[i])))),
                      fix=Fix("clip the polygons to the image", _clip(ds, int(ann[i]), float(w[i]), float(h[i]))))


def _clip(ds, row: int, width: float, height: float):
    """Edits replacing the polygons by their intersection with the image (Sutherland-Hodgman) and
    ``area`` by the clipped mask's; none when no polygon keeps any part inside."""
    def edits():
        from labellint.fix import values

        entry = values.entry(ds, "annotations", row)
        polygons = entry.get("segmentation") if entry else None
        if not isinstance(polygons, list):
            return ()
        clipped = [c for c in (values.clip_polygon(p, width, height) for p in polygons if isinstance(p, list)) if c]
        if not clipped:
            return ()
        out = [set_field("annotations", row, "segmentation", clipped)]
        area = values.coco_area(clipped, height, width)
        if area is not None and "area" in entry:
            out.append(set_field("annotations", row, "area", area))
        return tuple(out)
    return edits
