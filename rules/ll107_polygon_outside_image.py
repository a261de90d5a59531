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
`area` from the clipped mask; a box that sticks out too is LL105's fix. A shape that keeps less
than half of itself inside points to a wrong image size or scale: its clip is unsafe
(`--unsafe-fixes`); one with nothing inside gets no automatic fix.
"""

import numpy as np

from labellint.findings import Fix, Problem, set_field
from labellint.toolkit import clip_safety, geometry

CODE = "LL107"
NAME = "polygon-outside-image"
SEVERITY = "error"
OPTIONS = {"tolerance_px": 1.0}
OPTION_RANGES = {"tolerance_px": (0, None)}
FIX = "safe"
REQUIRES = ("segmentations",)  # the polygon summary: a late pass (labellint.passes)


def check(ds, options):
    tol = float(options["tolerance_px"])
    seg = geometry.segmentations(ds)
    _, extent = geometry.segmentation_shapes(ds)
    image = ds.ann_image_row
    ann = np.flatnonzero((seg.kind == geometry.POLYGONS) & (image >= 0) & geometry.finite_rows(extent))
    img = np.take(image, ann)
    w, h = np.take(ds.images.width, img), np.take(ds.images.height, img)
    ext = np.take(extent, ann, axis=0)
    x, y, ew, eh = (ext[:, c] for c in range(4))
    with np.errstate(invalid="ignore"):
        sides_over = [-x, -y, x + ew - w, y + eh - h]  # left, top, right, bottom; column by column
        worst = np.maximum(np.maximum(sides_over[0], sides_over[1]), np.maximum(sides_over[2], sides_over[3]))
        flagged = np.flatnonzero((worst > tol) & (w > 0) & (h > 0))
    over = np.stack([col[flagged] for col in sides_over], axis=1)  # only the flagged rows
    sides = ("left", "top", "right", "bottom")
    for j, i in enumerate(flagged.tolist()):
        parts = [f"{sides[s]} by {over[j, s]:.4g}px" for s in range(4) if over[j, s] > tol]
        yield Problem(f"polygon points lie outside the {w[i]:g}x{h[i]:g} image: {', '.join(parts)}",
                      annotation=int(ann[i]), pointer=f"/annotations/{int(ann[i])}/segmentation",
                      score=min(1.0, 0.5 + float(worst[i]) / (2 * max(float(w[i]), float(h[i])))),
                      fix=_clip(ds, int(ann[i]), float(w[i]), float(h[i])))


def _clip(ds, row: int, width: float, height: float) -> Fix | None:
    """The polygons replaced by their intersection with the image (Sutherland-Hodgman) and
    ``area`` by the clipped mask's (rasterised only when fixing). None when nothing is inside;
    unsafe when less than half of the shape is (a wrong image size or scale, not a slip)."""
    from labellint.toolkit import values

    entry = values.entry(ds, "annotations", row)
    polygons = values.valid_polygons(entry.get("segmentation") if entry else None)
    clipped = [c for c in (values.clip_polygon(p, width, height) for p in polygons) if c]
    if not clipped:
        return None
    before = sum(values.polygon_area(p) for p in polygons)
    kept = sum(values.polygon_area(p) for p in clipped) / before if before > 0 else 0.0

    def edits():
        out = [set_field("annotations", row, "segmentation", clipped)]
        area = values.coco_area(clipped, height, width)
        if area is not None and "area" in entry:
            out.append(set_field("annotations", row, "area", area))
        return tuple(out)
    return Fix("clip the polygons to the image", edits, clip_safety(kept))
