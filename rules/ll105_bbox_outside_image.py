"""Boxes that extend outside their image.

## What it does
Reports boxes that reach past the left, top, right or bottom edge of their image by more than
`tolerance_px`, and says by how much. Boxes of unknown images, or of images without a valid
width and height, are left to the rules that report those.

## Why it matters
Annotation tools clip boxes to the image; a box that sticks out was drawn in another frame
(a resized or rotated image), shifted by an export bug, or typed by hand. Augmentation
libraries raise on it or clip it into a different box than was meant, and it inflates the box
size statistics the anchors are tuned on.

## Example
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [50, 10, 20, 20]}],
 "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [34, 10, 30, 20]}],
 "categories": [{"id": 1, "name": "cat"}]}
```

## Options
- `tolerance_px` (float, default 1.0): overshoot in pixels that is accepted, since many tools
  round box corners outward.

## Fix
Safe: clip the box to the image (and recompute `area` when it was `w * h`). A box that keeps
less than half of itself inside points to a wrong image size or scale: its clip is unsafe
(`--unsafe-fixes`). A box with nothing inside the image gets no automatic fix: delete or redraw it.
"""

import numpy as np

from labellint.findings import Fix, Problem, set_field
from labellint.toolkit import box_columns, clip_safety

CODE = "LL105"
NAME = "bbox-outside-image"
SEVERITY = "error"
OPTIONS = {"tolerance_px": 1.0}
OPTION_RANGES = {"tolerance_px": (0, None)}
FIX = "safe"


def check(ds, options):
    tol = float(options["tolerance_px"])
    row = ds.ann_image_row
    known = row >= 0
    if not known.any():
        return
    if known.all():  # the usual case: no gather at all
        ann, img, (x, y, bw, bh) = np.arange(len(row)), row, box_columns(ds)
    else:
        ann = np.flatnonzero(known)
        img = row[ann]
        x, y, bw, bh = np.take(box_columns(ds), ann, axis=1)
    w, h = np.take(ds.images.width, img), np.take(ds.images.height, img)
    with np.errstate(invalid="ignore"):
        sides_over = [-x, -y, x + bw - w, y + bh - h]  # left, top, right, bottom; column by column
        for col in sides_over:
            col[~np.isfinite(col)] = 0.0
        worst = np.maximum(np.maximum(sides_over[0], sides_over[1]), np.maximum(sides_over[2], sides_over[3]))
        flagged = np.flatnonzero((worst > tol) & (w > 0) & (h > 0))
    over = np.stack([col[flagged] for col in sides_over], axis=1)  # only the flagged rows
    sides = ("left", "top", "right", "bottom")
    for j, i in enumerate(flagged.tolist()):
        parts = [f"{sides[s]} by {over[j, s]:.4g}px" for s in range(4) if over[j, s] > tol]
        extent = max(float(w[i]), float(h[i]))
        row = int(ann[i])
        yield Problem(
            f"bbox [{', '.join(f'{v:g}' for v in ds.annotations.bbox[ann[i]])}] extends outside its "
            f"{w[i]:g}x{h[i]:g} image: {', '.join(parts)}",
            annotation=row,
            score=min(1.0, 0.5 + float(worst[i]) / (2 * extent)),
            fix=_clip(ds, row, float(w[i]), float(h[i])),
        )


def _clip(ds, row: int, width: float, height: float) -> Fix | None:
    """The box cut to the image; ``area`` follows when it was the box's ``w * h``. A box with
    nothing inside the image gets no fix (deleting it is a person's call); one that keeps less than
    half of itself points to a wrong image size or scale, so its clip is unsafe."""
    x, y, bw, bh = (float(v) for v in ds.annotations.bbox[row])
    if not all(np.isfinite([x, y, bw, bh])):
        return None
    x0, y0 = max(x, 0.0), max(y, 0.0)
    x1, y1 = min(x + bw, width), min(y + bh, height)
    if x1 <= x0 or y1 <= y0:
        return None
    edits = [set_field("annotations", row, "bbox", [x0, y0, x1 - x0, y1 - y0])]
    from labellint.toolkit import area_is_box

    if area_is_box(float(ds.annotations.area[row]), bw, bh):
        edits.append(set_field("annotations", row, "area", (x1 - x0) * (y1 - y0)))
    kept = (x1 - x0) * (y1 - y0) / (bw * bh) if bw * bh > 0 else 0.0
    return Fix("clip the box to the image", tuple(edits), clip_safety(kept))
