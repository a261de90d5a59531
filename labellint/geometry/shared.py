"""What the geometry rules share, computed once per Dataset (``Dataset.shared``)."""

from __future__ import annotations

import numpy as np

from labellint import limits
from labellint.geometry.overlaps import Pairs, overlapping_pairs
from labellint.geometry.rle import RleSummary, _check_rles
from labellint.geometry.segmentation import Segmentations, _decode


def _cached(ds, key: str, compute):
    return ds.shared(f"geometry.{key}", compute)


def box_columns(ds) -> np.ndarray:
    """The boxes of ``ds`` as a (4, n) array: x, y, width and height, each one contiguous (computed
    once). Whole-column arithmetic on them runs about three times faster than on the strided
    columns of the (n, 4) ``annotations.bbox``."""
    return _cached(ds, "box_columns", lambda: np.ascontiguousarray(ds.annotations.bbox.T))


def same_image_overlaps(ds, min_iou: float) -> Pairs:
    """Pairs of annotations on one image whose boxes overlap with IoU >= ``min_iou`` (crowd regions
    and annotations of unknown images left out), as (first, second, iou) row arrays; ``capped``
    lists the image rows whose search stopped at the ``max_overlap_pairs_per_box`` limit.

    Shared by the duplicate and conflicting-label rules: the pairs found for the lowest
    threshold asked so far are kept, and a higher threshold only filters them.
    """
    memo = _cached(ds, "overlaps", dict)
    per_box = limits.get("max_overlap_pairs_per_box")
    found = memo.get("pairs")
    if found is None or found[0] > min_iou or found[1] != per_box:
        ann = ds.annotations
        rows = np.flatnonzero((ann.iscrowd != 1) & (ds.ann_image_row >= 0))
        found = memo["pairs"] = (min_iou, per_box, overlapping_pairs(ds.ann_image_row, box_columns(ds).T, min_iou,
                                                                     rows, pairs_per_box=per_box))
    first, second, iou = found[2]
    keep = iou >= min_iou
    return Pairs(first[keep], second[keep], iou[keep], found[2].capped)


def segmentations(ds) -> Segmentations:
    """The decoded segmentations of ``ds`` (computed once, shared by all rules)."""
    return _cached(ds, "segmentations", lambda: _decode(ds))


def rles(ds) -> RleSummary:
    """The RLE segmentations of ``ds``, checked, with pycocotools' area and box for valid ones."""
    return _cached(ds, "rles", lambda: _check_rles(ds, segmentations(ds)))


def segmentation_shapes(ds) -> tuple[np.ndarray, np.ndarray]:
    """Per annotation: segmentation area and extent [x, y, w, h]; nan where there is none usable.

    Polygon areas are summed (COCO's own area is the area of the rasterised union, which is
    the same unless polygons of one object overlap); an RLE's are pycocotools' area and box.
    """
    def compute():
        seg = segmentations(ds)
        summary = rles(ds)
        if not len(summary.rows):
            return seg.area, seg.extent
        area, extent = seg.area.copy(), seg.extent.copy()
        area[summary.rows] = summary.area
        extent[summary.rows] = summary.bbox
        return area, extent
    return _cached(ds, "shapes", compute)


def invalid_polygons(ds) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(annotation row, index of the polygon in it, number of coordinates, area) of every polygon
    with an odd number of coordinates, fewer than 3 points or zero area, in file order."""
    return segmentations(ds).invalid_polygons
