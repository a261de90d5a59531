"""Values that fixes write: COCO areas of segmentations and polygons clipped to their image.

``area`` in COCO is the pixel count of the rasterised mask (pycocotools' ``maskUtils.area``),
not the polygon's exact area, so fixes compute it the way COCOeval's own files were made.
"""

from __future__ import annotations

import math

import numpy as np

from labellint import limits


def plain_number(v) -> int | float:
    """A coordinate as a file should hold it: two decimals, an integral value as an integer (40,
    not 40.0)."""
    v = round(float(v), 2)
    return int(v) if v.is_integer() else v


def valid_polygons(segmentation) -> list[list[float]]:
    """The polygons of a segmentation that can be drawn: lists of at least three finite points."""
    if not isinstance(segmentation, list):
        return []
    return [p for p in segmentation if isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0
            and all(isinstance(v, (int, float)) and math.isfinite(v) for v in p)]


def area_is_box(area, width: float, height: float) -> bool:
    """Whether ``area`` is the box's ``width * height`` (then a fix that changes the box changes
    the area with it)."""
    try:
        box = float(width) * float(height)
        return (isinstance(area, (int, float)) and not isinstance(area, bool) and math.isfinite(area)
                and abs(float(area) - box) <= 1e-6 * max(1.0, abs(box)))
    except (TypeError, ValueError, OverflowError):  # an integer beyond any float is no box's area
        return False


def coco_area(segmentation, height: float, width: float) -> float | None:
    """pycocotools' area of a polygon list or RLE at the image's size (None: cannot tell)."""
    from pycocotools import mask as mask_utils

    h, w = _image_size(height, width)
    if h is None:
        return None
    try:
        if isinstance(segmentation, list):
            polys = raster_polygons(valid_polygons(segmentation), h, w)
            if not polys:
                return None
            rles = mask_utils.frPyObjects(polys, h, w)
            return float(mask_utils.area(mask_utils.merge(rles)))
        if isinstance(segmentation, dict) and "counts" in segmentation:
            # an RLE's area is the sum of its run lengths: no raster is made, whatever its size says
            rle = segmentation
            if isinstance(rle["counts"], list):
                rle = mask_utils.frPyObjects(rle, *rle["size"])
            elif isinstance(rle["counts"], str):
                rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
            return float(mask_utils.area(rle))
    except Exception:  # a malformed mask is another rule's finding; no fix from it
        return None
    return None


# pycocotools scales polygon coordinates by 5 into C ints: a side of the clip box below (3 image
# sides) must stay under 2**31 after that
_MAX_SIDE = (2**31 - 1) // 15


def _image_size(height, width) -> tuple[int | None, int | None]:
    """The image's size as pycocotools takes it, or (None, None) when no mask of it may be made:
    not positive, or more pixels than an image may have (the decompression-bomb limit)."""
    from labellint import images

    try:
        h, w = int(round(float(height))), int(round(float(width)))
    except (TypeError, ValueError, OverflowError):
        return None, None
    if h <= 0 or w <= 0 or max(h, w) > _MAX_SIDE or h * w > images.DEFAULT_MAX_PIXELS:
        return None, None
    return h, w


def raster_polygons(polygons: list[list[float]], height: int, width: int) -> list[list[float]] | None:
    """The polygons as they may be handed to pycocotools (``frPyObjects``) at an image of this size.

    pycocotools traces a polygon's outline at 5 points per pixel before it keeps what is inside the
    image, so a point at 1e9 asks it for gigabytes (and overflows its ints: a crash, not an error).
    A polygon reaching further out than the image's own size on any side is cut to that margin
    first (one that stays within it is passed as is, so its area is pycocotools' own to the
    pixel); None when the outline left is longer than ``max_polygon_outline`` pixels or the image
    itself is too large for a mask."""
    h, w = _image_size(height, width)
    if h is None:
        return None
    out = []
    for poly in polygons:
        xs, ys = poly[0::2], poly[1::2]
        if min(xs) < -w or max(xs) > 2 * w or min(ys) < -h or max(ys) > 2 * h:
            shifted = [v + (w if k % 2 == 0 else h) for k, v in enumerate(poly)]
            cut = clip_polygon(shifted, 3 * w, 3 * h)
            poly = [v - (w if k % 2 == 0 else h) for k, v in enumerate(cut)]
            if not poly:
                continue
        out.append(poly)
    if out and outline(out) > limits.get("max_polygon_outline"):
        return None
    return out


def outline(polygons: list[list[float]]) -> float:
    """Length of the polygons' outlines in pixels as pycocotools steps along them: per edge, the
    larger of its width and height."""
    total = 0.0
    for poly in polygons:
        xy = np.asarray(poly, float).reshape(-1, 2)
        step = np.abs(xy - np.roll(xy, 1, axis=0))
        total += float(np.maximum(step[:, 0], step[:, 1]).sum())
    return total


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
