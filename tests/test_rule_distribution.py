"""Distribution rules (LL3xx): rare classes, imbalance, outliers and image annotation counts."""

from __future__ import annotations

import numpy as np
from conftest import coco
from test_rules_catalogue import lint_doc

from labellint.findings import Severity
from labellint.toolkit.stats import outlier_score, robust_z


def one_image(*boxes, categories=None):
    anns = [{"id": i + 1, "image_id": 1, "category_id": cat, "bbox": list(box), "area": box[2] * box[3]}
            for i, (cat, box) in enumerate(boxes)]
    return coco(images=[{"id": 1, "file_name": "a.jpg", "width": 4000, "height": 3000}], annotations=anns,
                categories=categories)


def test_robust_z_per_group_uses_the_spread_on_each_side():
    values = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 100, 10, 10, 10, 10, 50], float)
    groups = np.array([1] * 11 + [2] * 5)
    z, median = robust_z(values, groups, min_size=5)
    assert median[0] == 5 and median[-1] == 10
    assert z[10] > 20 and abs(z[4]) < 1
    assert np.isfinite(z[-1]) and z[-1] > 3  # equal values: spread from the mean absolute deviation
    z_small, _ = robust_z(values, groups, min_size=6)
    assert np.isnan(z_small[11:]).all()  # a group too small for statistics


def test_outlier_score_rises_with_z_and_stays_in_range():
    s = outlier_score(np.array([-5, 5, 10, -40, 1e9]), 5.0)
    assert s[0] == s[1] == 0 and s[2] == 0.5 and 0.85 < s[3] < 1 and s[4] <= 1


def test_size_outliers_are_ranked_most_extreme_first():
    typical = [(1, (i * 30, 0, 20 + i % 3, 20 + i % 2)) for i in range(30)]
    doc = one_image(*typical, (1, (0, 100, 400, 400)), (1, (0, 100, 2000, 2000)), (1, (0, 100, 200, 200)),
                    (1, (0, 100, 2, 2)), categories=[{"id": 1, "name": "cat"}])
    found = lint_doc(doc, "LL303")
    larger = [f for f in found if "larger" in f.message]
    assert [f.annotation_id for f in larger] == [32, 31, 33]  # 100x, 20x, 10x the typical side
    assert larger[0].score > larger[1].score > larger[2].score
    assert "larger than the typical 'cat' box" in larger[0].message
    assert [f.annotation_id for f in found if "smaller" in f.message] == [34]


def test_aspect_ratio_outliers_in_both_directions():
    typical = [(1, (i * 30, 0, 20 + i % 3, 40 + i % 4)) for i in range(30)]
    doc = one_image(*typical, (1, (0, 100, 200, 40)), (1, (0, 200, 4, 60)), categories=[{"id": 1, "name": "person"}])
    found = {f.annotation_id: f.message for f in lint_doc(doc, "LL304")}
    assert sorted(found) == [31, 32]
    assert "unusually wide" in found[31] and "unusually tall" in found[32]


def test_unusual_annotation_counts_high_and_low():
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 640, "height": 480} for i in range(1, 31)]
    anns, next_id = [], 1
    for image_id in range(1, 31):
        n = {1: 1, 2: 300}.get(image_id, 20 + image_id % 5)  # one nearly empty image, one exploded
        for k in range(n):
            anns.append({"id": next_id, "image_id": image_id, "category_id": 1, "bbox": [k % 600, 0, 5, 5]})
            next_id += 1
    found = {f.image_id: f.message for f in lint_doc(coco(images=images, annotations=anns), "LL306")}
    assert sorted(found) == [1, 2]
    assert "far fewer" in found[1] and "many more" in found[2]


def test_rare_class_suggests_the_classes_it_may_belong_to():
    cats = [{"id": 1, "name": "bishop"}, {"id": 2, "name": "white-bishop"}, {"id": 3, "name": "black-bishop"}]
    doc = one_image((1, (0, 0, 9, 9)), *[(2, (10 * i, 20, 9, 9)) for i in range(12)],
                    *[(3, (10 * i, 40, 9, 9)) for i in range(12)], categories=cats)
    (finding,) = lint_doc(doc, "LL301")
    assert finding.category_id == 1 and finding.suggestion == "white-bishop or black-bishop"


def test_imbalance_is_one_finding_per_file_at_the_smallest_class():
    doc = one_image(*[(1, (i, 0, 5, 5)) for i in range(300)], (2, (0, 50, 5, 5)), (2, (10, 50, 5, 5)))
    (finding,) = lint_doc(doc, "LL302")
    assert finding.category_id == 2 and finding.severity == Severity.INFO and "ratio 150" in finding.message


def test_empty_images_are_information_ranked_after_errors():
    doc = coco()
    doc["images"].append({"id": 3, "file_name": "c.jpg", "width": 64, "height": 48})
    doc["annotations"][0]["id"] = 0
    found = lint_doc(doc, "LL305", "LL014")
    assert [(f.code, str(f.severity)) for f in found] == [("LL014", "error"), ("LL305", "info")]
    assert found[1].image_id == 3 and "negative" in found[1].message


def test_rare_class_is_relative_a_file_where_every_class_is_small_has_none():
    few = one_image(*[(1, (10 * i, 20, 9, 9)) for i in range(3)], (2, (0, 0, 9, 9)))
    assert lint_doc(few, "LL301") == []  # no class reaches 10: a sample, not a rarity
    many = one_image(*[(1, (10 * i, 20, 9, 9)) for i in range(10)], (2, (0, 0, 9, 9)))
    assert [f.category_id for f in lint_doc(many, "LL301")] == [2]
