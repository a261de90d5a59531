"""Duplicate and conflicting boxes (LL2xx) and the sort-and-sweep pair search behind them."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import coco
from test_rules_catalogue import lint_doc

from labellint import geometry


def brute_force_pairs(group, boxes, min_iou):
    out = set()
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            if group[i] == group[j]:
                iou = geometry.box_iou(boxes[i:i + 1], boxes[j:j + 1])[0]
                if iou >= min_iou:
                    out.add((i, j))
    return out


@pytest.mark.parametrize("min_iou", [0.3, 0.7, 0.9, 1.0])
def test_overlapping_pairs_equals_a_brute_force_search(min_iou):
    rng = np.random.default_rng(11)
    n = 400
    group = rng.integers(0, 12, n)
    boxes = np.column_stack([rng.integers(0, 60, n), rng.integers(0, 60, n),
                             rng.integers(1, 30, n), rng.integers(1, 30, n)]).astype(float)
    copies = np.arange(7, n, 7)
    boxes[copies] = boxes[copies - 6]  # plenty of exact copies, some across groups
    boxes[5] = [np.nan, 0, 3, 3]
    boxes[6, 2] = 0
    first, second, iou = geometry.overlapping_pairs(group, boxes, min_iou)
    found = {(min(a, b), max(a, b)) for a, b in zip(first.tolist(), second.tolist())}
    assert len(found) == len(first)  # each pair once
    assert found == brute_force_pairs(group, boxes, min_iou)
    assert (iou >= min_iou).all()


def test_overlapping_pairs_only_among_the_given_rows():
    boxes = np.array([[0, 0, 10, 10]] * 3, float)
    first, second, _ = geometry.overlapping_pairs(np.zeros(3, np.int64), boxes, 0.9, rows=np.array([0, 2]))
    assert {int(first[0]), int(second[0])} == {0, 2}


def boxes_on(image_id, *specs, start_id=1):
    return [{"id": start_id + k, "image_id": image_id, "category_id": cat, "bbox": list(box), "iscrowd": crowd}
            for k, (cat, box, crowd) in enumerate(specs)]


def test_duplicates_are_found_per_image_across_many_images():
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 640, "height": 480} for i in (1, 2, 3)]
    anns = boxes_on(1, (1, (10, 10, 50, 50), 0), (1, (200, 10, 40, 40), 0), (1, (10, 10, 50, 50), 0), start_id=1)
    anns += boxes_on(2, (1, (10, 10, 50, 50), 0), (2, (300, 300, 20, 20), 0), start_id=10)  # same box, other image
    anns += boxes_on(3, (2, (5, 5, 100, 100), 0), (2, (5, 5, 100, 101), 0), (2, (5, 5, 101, 100), 0),
                     (2, (5, 5, 100, 100), 1), start_id=20)  # three near-copies and a crowd region
    found = lint_doc(coco(images=images, annotations=anns), "LL201")
    assert sorted(f.annotation_id for f in found) == [3, 21, 22]
    by_id = {f.annotation_id: f.message for f in found}
    assert "annotation id 1 " in by_id[3] and "identical box" in by_id[3]
    assert "annotation id 20 " in by_id[21] and "IoU 0.99" in by_id[21]


def test_conflicting_labels_name_both_classes():
    anns = boxes_on(1, (1, (10, 10, 50, 50), 0), (2, (10, 10, 50, 50.5), 0), (2, (200, 10, 40, 40), 0))
    (finding,) = lint_doc(coco(annotations=anns), "LL202")
    assert finding.annotation_id == 2
    assert "'dog'" in finding.message and "'cat'" in finding.message
    assert lint_doc(coco(annotations=anns), "LL201") == []


def test_duplicate_rules_use_their_thresholds():
    anns = boxes_on(1, (1, (0, 0, 100, 100), 0), (1, (0, 0, 100, 80), 0))  # IoU 0.8
    assert lint_doc(coco(annotations=anns), "LL201") == []
    assert len(lint_doc(coco(annotations=anns), "LL201", min_iou=0.75)) == 1


def test_a_duplicate_names_its_closest_earlier_box():
    # the third box overlaps the first at IoU 0.91 and the second at 0.97: one finding, the closer
    anns = boxes_on(1, (1, (0, 0, 100, 91), 0), (1, (0, 0, 100, 97), 0), (1, (0, 0, 100, 100), 0))
    found = [f for f in lint_doc(coco(annotations=anns), "LL201") if f.annotation_id == 3]
    assert len(found) == 1 and "annotation id 2" in found[0].message and "IoU 0.97" in found[0].message
