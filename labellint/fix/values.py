"""Values that fixes write: COCO areas of segmentations and polygons clipped to their image.

``area`` in COCO is the pixel count of the rasterised mask (pycocotools' ``maskUtils.area``),
not the polygon's exact area, so fixes compute it the way COCOeval's own files were made.
"""

from __future__ import annotations

import math

import numpy as np


def valid_polygons(segmentation) -> list[list[float]]:
    """The polygons of a segmentation that can be drawn: lists of at least three finite points."""
    if not isinstance(segmentation, list):
        return []
    return [p for p in segmentation if isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0
            and all(isinstance(v, (int, float)) and math.isfinite(v) for v in p)]


def area_is_box(area, width: float, height: float) -> bool:
    """Whether ``area`` is the box's ``width * height`` (then a fix that changes the box changes
    the area with it)."""
    box = float(width) * float(height)
    return (isinstance(area, (int, float)) and not isinstance(area, bool) and math.isfinite(area)
            and abs(float(area) - box) <= 1e-6 * max(1.0, abs(box)))


def coco_area(segmentation, height: float, width: float) -> float | None:
    """pycocotools' area of a polygon list or RLE at the image's size (None: cannot tell)."""
    from pycocotools import mask as mask_utils

    h, w = int(round(height)), int(round(width))
    if h <= 0 or w <= 0:
        return None
    try:
        if isinstance(segmentation, list):
            polys = valid_polygons(segmentation)
            if not polys:
                return None
            rles = mask_utils.frPyObjects(polys, h, w)
            return float(mask_utils.area(mask_utils.merge(rles)))
        if isinstance(segmentation, dict) and "counts" in segmentation:
            rle = segmentation
            if isinstance(rle["counts"], list):
                rle = mask_utils.frPyObjects(rle, *rle["size"])
            elif isinstance(rle["counts"], str):
                rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
            return float(mask_utils.area(rle))
    except Exception:  # a malformed mask is another rule's finding; no fix from it
        return None
    return None


def clip_polygon(flat: list[float], width: float, height: float) -> list[float]:
    """Sutherland-Hodgman clip of one COCO polygon ([x1, y1, x2, y2, ...]) to the image
    rectangle; [] when nothing of it is inside."""
    pts = list(zip(flat[0::2], flat[1::2]))
    # each edge: inside test and intersection with the clip line
    for axis, limit, keep_below in ((0, 0.0, False), (0, float(width), True), (1, 0.0, False), (1, float(height), True)):
        if not pts:
            break
        out = []
        inside = (lambda p: p[axis] <= limit) if keep_below else (lambda p: p[axis] >= limit)
        prev = pts[-1]
        for cur in pts:
            if inside(cur):
                if not inside(prev):
                    out.append(_cross(prev, cur, axis, limit))
                out.append(cur)
            elif inside(prev):
                out.append(_cross(prev, cur, axis, limit))
            prev = cur
        pts = out
    if len(pts) < 3:
        return []
    return [float(f"{v:.12g}") for p in pts for v in p]


def polygon_area(flat: list[float]) -> float:
    """Shoelace area of one COCO polygon."""
    x = np.asarray(flat[0::2], float)
    y = np.asarray(flat[1::2], float)
    return float(abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))) / 2)


def _cross(a, b, axis, limit):
    t = (limit - a[axis]) / (b[axis] - a[axis])
    x = a[0] + t * (b[0] - a[0])
    y = a[1] + t * (b[1] - a[1])
    return (limit, y) if axis == 0 else (x, limit)


def extent(polygons: list[list[float]]) -> list[float]:
    xy = np.concatenate([np.asarray(p, float).reshape(-1, 2) for p in polygons])
    x0, y0 = xy.min(axis=0)
    x1, y1 = xy.max(axis=0)
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]


def entry(ds, section: str, index: int) -> dict | None:
    """One entry of the file, decoded from its bytes (cheap: only the entries a fix needs)."""
    from labellint.fix import jsonedit, state

    span = jsonedit.entry_span(ds, section, index)
    if span is None:
        return None
    value = state.decode_entry(ds.data, *span)
    return value if isinstance(value, dict) else None


def segmentation_area(ds, row: int) -> float | None:
    """COCO area of annotation ``row``'s segmentation at its image's size (None: cannot tell)."""
    image = int(ds.ann_image_row[row])
    found = entry(ds, "annotations", row)
    if image < 0 or found is None:
        return None
    return coco_area(found.get("segmentation"), ds.images.height[image], ds.images.width[image])


def drop_image(ds, row: int):
    """Edits deleting image ``row`` and every annotation on it (computed when fixing)."""
    from labellint.findings import delete

    def edits():
        boxes = np.flatnonzero(ds.ann_image_row == row).tolist()
        return (delete("images", row), *(delete("annotations", a) for a in boxes))
    return edits
