"""Polygons: their shoelace areas and extents, and the exact reading of one segmentation value."""

from __future__ import annotations

import json

import msgspec
import numpy as np

#: What an annotation's segmentation is (Segmentations.kind)
NONE, POLYGONS, RLE, MALFORMED = 0, 1, 2, 3


def polygon_summaries(coords: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Area (shoelace) and extent [min x, min y, max x, max y] of each polygon.

    ``coords`` holds the coordinates of all polygons one after another, ``lengths`` how many
    each has. A trailing odd coordinate is ignored (the invalid-polygon rule reports it);
    polygons without a point get nan.
    """
    n = len(lengths)
    area = np.full(n, np.nan)
    extent = np.full((n, 4), np.nan)
    points = lengths // 2
    has_points = points > 0
    if not has_points.any():
        return area, extent
    if (lengths % 2 == 0).all():
        x, y = coords[0::2].copy(), coords[1::2].copy()  # contiguous: the reductions run twice as fast
    else:  # an odd polygon shifts the x/y parity of every polygon after it: gather by index
        coord_start = np.cumsum(lengths) - lengths
        point_start = np.cumsum(points) - points
        idx = np.repeat(coord_start - 2 * point_start, points) + 2 * np.arange(points.sum())
        x, y = coords[idx], coords[idx + 1]
    end = np.cumsum(points)[has_points]
    first = end - points[has_points]
    last = end - 1
    with np.errstate(invalid="ignore", over="ignore"):  # Infinity in a point (LL002's) gives nan
        # x[i] * y[i + 1] - x[i + 1] * y[i], where the point after the last is the first (the
        # edge that closes the ring)
        cross = np.empty(len(x))
        np.subtract(x[:-1] * y[1:], x[1:] * y[:-1], out=cross[:-1])
        cross[last] = x[last] * y[first] - x[first] * y[last]
        area[has_points] = 0.5 * np.abs(np.add.reduceat(cross, first))
    extent[has_points] = np.stack([np.minimum.reduceat(x, first), np.minimum.reduceat(y, first),
                                   np.maximum.reduceat(x, first), np.maximum.reduceat(y, first)], axis=1)
    return area, extent


def _describe(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def decode_raw(text) -> tuple[object, bool]:
    """One segmentation's JSON text decoded: (value, in_range). msgspec refuses a number beyond
    a float (1e999); Python's reader takes it as infinity, and ``in_range`` is then False."""
    try:
        return msgspec.json.decode(text), True
    except msgspec.DecodeError:
        return json.loads(bytes(text)), False


def classify(value) -> tuple[int, str | None, list]:
    """(kind, problem, polygons) of one decoded segmentation value: the slow, exact path."""
    if value is None or (isinstance(value, list) and not value):
        return NONE, None, []
    if isinstance(value, dict):
        return RLE, None, []
    if not isinstance(value, list):
        return MALFORMED, f"'segmentation' must be a list of polygons or an RLE object, got {_describe(value)}", []
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return MALFORMED, ("'segmentation' is a flat list of numbers; COCO wants a list of polygons, "
                           "[[x1, y1, x2, y2, ...]]"), []
    for poly in value:
        if not isinstance(poly, list):
            return MALFORMED, f"'segmentation' must be a list of polygons, but an item is {_describe(poly)}", []
        bad = next((v for v in poly if not isinstance(v, (int, float)) or isinstance(v, bool)), poly)
        if bad is not poly:
            return MALFORMED, f"a polygon must hold only numbers, but one holds {_describe(bad)}", []
    return POLYGONS, None, value


def _annotation_shapes(poly_ann: np.ndarray, poly_area: np.ndarray, poly_extent: np.ndarray, n: int):
    """Per annotation (rows 0..n-1 of ``poly_ann``, sorted): the summed area and the extent
    [x, y, w, h] of its polygons that have a finite area; nan where it has none.

    Polygon areas are summed (COCO's own area is the area of the rasterised union, which is
    the same unless polygons of one object overlap)."""
    area = np.full(n, np.nan)
    extent = np.full((n, 4), np.nan)
    usable = np.isfinite(poly_area)
    if usable.all():
        ann, poly_area, ext = poly_ann, poly_area, poly_extent
    else:
        ann, poly_area, ext = poly_ann[usable], poly_area[usable], poly_extent[usable]
    if ann.size:
        first_of = np.concatenate([[True], ann[1:] != ann[:-1]])
        if first_of.all():  # one polygon each, as most annotations have: nothing to add up
            rows, lo, hi = ann, ext[:, :2], ext[:, 2:]
            area[rows] = poly_area
        else:
            first = np.flatnonzero(first_of)
            rows = ann[first]
            area[rows] = np.add.reduceat(poly_area, first)
            lo = np.minimum.reduceat(ext[:, :2], first)
            hi = np.maximum.reduceat(ext[:, 2:], first)
        extent[rows, :2] = lo
        extent[rows, 2:] = hi - lo
    return area, extent


def _invalid_polygons(poly_ann: np.ndarray, poly_len: np.ndarray, poly_area: np.ndarray):
    """(annotation, index in it, length, area) of the polygons that have an odd number of
    coordinates, fewer than 3 points or zero area (``poly_ann`` sorted)."""
    odd = poly_len % 2 == 1
    few = poly_len // 2 < 3
    flat = ~few & (poly_area <= 1e-9)
    bad = np.flatnonzero(odd | few | flat)
    index = bad - np.searchsorted(poly_ann, poly_ann[bad])
    return poly_ann[bad], index, poly_len[bad], poly_area[bad]


def _no_invalid_polygons():
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
