"""Faster ways to the same numbers: each is checked, bit for bit, against the straightforward way
it replaced (robust statistics of LL303/LL304/LL306), and LL109's edge test through the rule itself."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import coco
from test_rules_catalogue import lint_doc

from labellint.toolkit import stats as _stats


@pytest.mark.parametrize("seed", range(12))
def test_robust_z_by_partition_is_robust_z_by_sorting(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 4000))
    groups = rng.integers(-1, int(rng.choice([1, 3, 80, 600])), n)
    values = [rng.normal(size=n), np.round(rng.normal(size=n), 1), rng.integers(0, 3, n).astype(float),
              np.log(rng.integers(1, 20, n).astype(float))][seed % 4]  # ties; groups mostly of one value
    values[rng.random(n) < 0.05] = np.nan
    values[rng.random(n) < 0.01] = np.inf
    for min_size in (0, 1, 5, 20):
        z, center = _stats.robust_z(values, groups, min_size)
        z_sorted, center_sorted = np.full(n, np.nan), np.full(n, np.nan)
        rows = np.flatnonzero(np.isfinite(values) & (groups >= 0))
        if rows.size:
            _stats._robust_z_sorted(values, rows, groups[rows], min_size, z_sorted, center_sorted)
        assert z.tobytes() == z_sorted.tobytes() and center.tobytes() == center_sorted.tobytes()


def test_robust_z_with_many_groups_sorts():
    rng = np.random.default_rng(1)
    groups = rng.integers(0, 5000, 20000)
    values = rng.normal(size=20000)
    z, center = _stats.robust_z(values, groups, 3)
    assert np.isfinite(z).sum() > 10000 and np.isfinite(center).sum() == np.isfinite(z).sum()


def test_bbox_segmentation_mismatch_edge_test_is_the_largest_corner_difference():
    """LL109 compares corners column by column; a box or extent with a nan (or inf - inf) in any
    corner is never reported, as with the max over all four corners it replaced."""
    boxes = [[10, 10, 20, 10], [30, 20, 20, 10], [10, 10, 20, 10], [10, 10, 20, 10]]
    polygons = [[[10, 10, 30, 10, 30, 20, 10, 20]]] * 4
    anns = [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": b, "segmentation": p}
            for i, (b, p) in enumerate(zip(boxes, polygons))]
    anns[2]["bbox"] = [10, 10, 2000, 10]
    anns[3]["bbox"] = [10, 10, 20.5, 11]
    doc = coco(images=[{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}], annotations=anns)
    assert sorted(f.annotation_id for f in lint_doc(doc, "LL109")) == [2, 3]


@pytest.mark.parametrize("edge", ["left", "top", "right", "bottom"])
def test_bbox_segmentation_mismatch_sees_each_edge_alone(edge):
    """Each of the four box edges, moved alone past the tolerance, makes LL109 report through the
    rule itself; the same edge moved within the tolerance does not."""
    polygon = [[10, 10, 30, 10, 30, 20, 10, 20]]  # extent [10, 10, 20, 10]
    moved = {"left": lambda d: [10 - d, 10, 20 + d, 10], "top": lambda d: [10, 10 - d, 20, 10 + d],
             "right": lambda d: [10, 10, 20 + d, 10], "bottom": lambda d: [10, 10, 20, 10 + d]}[edge]
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": moved(12), "segmentation": polygon},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": moved(1.5), "segmentation": polygon}]
    doc = coco(images=[{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}], annotations=anns)
    assert [f.annotation_id for f in lint_doc(doc, "LL109")] == [1]
