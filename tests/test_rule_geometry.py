"""Geometry rules (LL1xx) and the vectorised helpers in labellint.geometry they stand on."""

from __future__ import annotations

import json
import random
import re

import msgspec
import numpy as np
import pytest
from conftest import coco
from pycocotools import mask as mask_utils
from test_rules_catalogue import lint_doc

from labellint import geometry
from labellint.coco import load_bytes


def with_segmentations(*segmentations, width=64, height=48, **fields):
    anns = []
    for i, seg in enumerate(segmentations):
        ann = {"id": i + 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10], "iscrowd": 0, **fields}
        if seg is not None:
            ann["segmentation"] = seg
        anns.append(ann)
    return coco(images=[{"id": 1, "file_name": "a.jpg", "width": width, "height": height}], annotations=anns)


# -- decimal parsing and segmentation decoding -----------------------------------------------------


def test_parse_decimals_matches_float_and_declines_what_it_cannot_read():
    rng = random.Random(7)
    tokens = ["0", "-0", "0.5", "-12.25", "99999999", "123456789", "12345678.5", "1.0000000000000002",
              "0.12345678901234567", "-1.5"]
    tokens += [repr(round(rng.uniform(-5000, 5000), rng.randint(0, 4))) for _ in range(3000)]
    tokens += [f"{rng.uniform(0, 4000):.{rng.randint(1, 16)}f}" for _ in range(3000)]
    buf = ",".join(tokens).encode() + b" " * 32
    lengths = np.array([len(t) for t in tokens])
    starts = np.cumsum(lengths + 1) - lengths - 1
    values, ok = geometry.parse_decimals(buf, starts, lengths)
    readable = [re.fullmatch(r"-?\d{1,8}(\.\d{1,16})?", t) is not None and "." not in t.lstrip("-")[8:9]
                for t in tokens]
    assert ok.tolist() == readable
    expected = np.array([float(t) for t in tokens])
    np.testing.assert_allclose(values[ok], expected[ok], rtol=1e-15, atol=0)


ODD_SEGMENTATIONS = [
    [[0, 0, 10, 0, 10, 10, 0, 10]], [], None, [[1, 2, 3]], [[1.5e1, 2, 3, 4, 5, 6]], [1, 2, 3, 4, 5, 6],
    [[[1, 2, 3, 4, 5, 6]]], "polygon", 5, {"size": [48, 64], "counts": [3072]}, [[0, 0, 4, 0, 4, 4], [9, 9, 20, 9, 20, 20]],
    [[]], [[-1.25, -2.5, 100, 0, 50, 50]], [["1", 2, 3, 4, 5, 6]], [[123456789, 0, 1, 1, 0, 1]],
    [[0.1234567890123456789, 1, 2, 3, 4, 5]], [[True, 1, 2, 3, 4, 5]], [[1, 2], [3, 4, 5, 6, 7, 8]],
    [[1e-3, 0, 5, 0, 5, 5]], [[0, 0, 10, 0, 10, 10], 3],
]


def test_fast_and_slow_segmentation_paths_agree(monkeypatch):
    monkeypatch.setattr(geometry, "_BATCH", 3)  # odd rows land in different batches and at batch edges
    data = json.dumps(with_segmentations(*ODD_SEGMENTATIONS, area=1)).encode()
    fast = load_bytes(data, "fast.json")
    slow = load_bytes(data, "slow.json")
    slow.annotations.segmentation = [msgspec.json.decode(s) if s is not None and len(s) else None
                                     for s in slow.annotations.segmentation]  # as the tolerant loader gives them
    a, b = geometry.segmentations(fast), geometry.segmentations(slow)
    for name in ("kind", "poly_ann", "poly_len", "rle_rows"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_allclose(a.poly_area, b.poly_area, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(a.poly_extent, b.poly_extent, rtol=1e-12, equal_nan=True)
    assert a.malformed == b.malformed
    assert a.kind.tolist() == [1, 0, 0, 1, 1, 3, 3, 3, 3, 2, 1, 1, 1, 3, 1, 1, 3, 1, 1, 3]


def test_polygon_summaries_area_extent_and_odd_lengths():
    coords = np.array([0, 0, 10, 0, 10, 10, 0, 10,  # square: area 100
                       0, 0, 4, 0, 4, 3, 9,  # triangle 6 plus a dangling coordinate
                       1, 1, 5, 5, 9, 9],  # collinear: area 0
                      dtype=float)
    area, extent = geometry.polygon_summaries(coords, np.array([8, 0, 7, 6]))
    np.testing.assert_allclose(area, [100, np.nan, 6, 0])
    np.testing.assert_allclose(extent[[0, 2, 3]], [[0, 0, 10, 10], [0, 0, 4, 3], [1, 1, 9, 9]])


def test_segmentations_are_decoded_once_per_dataset():
    ds = load_bytes(json.dumps(with_segmentations([[0, 0, 9, 0, 9, 9]])).encode(), "a.json")
    assert geometry.segmentations(ds) is geometry.segmentations(ds)


# -- LL106, LL107 ----------------------------------------------------------------------------------


def test_invalid_polygons_say_what_is_wrong():
    found = lint_doc(with_segmentations([[10, 10, 30, 10, 30]], [[10, 10, 30, 10]], [[10, 10, 20, 20, 30, 30]],
                                        [10, 10, 30, 10, 30, 20], "rle?", [], [[10, 10, 30, 10, 30, 20]]), "LL106")
    messages = {f.annotation_id: f.message for f in found}
    assert sorted(messages) == [1, 2, 3, 4, 5]
    assert "odd number of coordinates (5)" in messages[1]
    assert "2 points, fewer than 3" in messages[2] and "box" in messages[2]
    assert "zero area" in messages[3]
    assert "flat list" in messages[4]
    assert "got a string" in messages[5]


def test_polygon_outside_image_reports_each_side_beyond_the_tolerance():
    found = lint_doc(with_segmentations([[-5, 10, 70, 10, 70, 20]], [[0, 0, 64.5, 0, 64.5, 48]]), "LL107")
    (finding,) = found
    assert finding.annotation_id == 1 and "left by 5px" in finding.message and "right by 6px" in finding.message
    assert lint_doc(with_segmentations([[-5, 10, 70, 10, 70, 20]]), "LL107", tolerance_px=10.0) == []


# -- RLE -------------------------------------------------------------------------------------------


def test_compressed_rle_totals_match_pycocotools():
    rng = np.random.default_rng(3)
    rles = [mask_utils.encode(np.asfortranarray((rng.random((h, w)) < p).astype(np.uint8)))
            for h, w, p in zip(rng.integers(1, 50, 200), rng.integers(1, 50, 200), rng.random(200))]
    totals, ok = geometry.compressed_rle_totals([r["counts"] for r in rles])
    assert ok.all()
    assert totals.tolist() == [r["size"][0] * r["size"][1] for r in rles]
    broken = rles[0]["counts"][:-1] + b"\x7f"  # a byte outside the alphabet
    unfinished = rles[1]["counts"] + b"p"  # "more follows" on the last character
    totals, ok = geometry.compressed_rle_totals([broken, unfinished, rles[2]["counts"]])
    assert ok.tolist() == [False, False, True]
    assert totals[2] == rles[2]["size"][0] * rles[2]["size"][1]  # a broken neighbour does not leak into it


def test_compressed_rle_totals_in_batches_and_with_copies_agree(monkeypatch):
    """Strings are decoded a budget of characters at a time (memory bounded whatever the file) and
    copies once: the answers are those of one pass over every string."""
    rng = np.random.default_rng(5)
    rles = [mask_utils.encode(np.asfortranarray((rng.random((h, w)) < 0.5).astype(np.uint8)))["counts"]
            for h, w in zip(rng.integers(1, 40, 60), rng.integers(1, 40, 60))]
    strings = rles + [b"\x7f" + rles[0]] + rles[:7] + [rles[3]] * 5  # copies, and a broken one in between
    whole = geometry._compressed_rle_totals(strings)  # one pass, no batching, no copies folded
    assert not whole[1][60]
    monkeypatch.setattr(geometry, "_RLE_CHARS_AT_ONCE", 50)  # a few strings a batch, a long one alone
    totals, ok = geometry.compressed_rle_totals(strings)
    assert totals.tolist() == whole[0].tolist() and ok.tolist() == whole[1].tolist()


def test_invalid_rle_checks_size_counts_and_format():
    mask = np.zeros((48, 64), np.uint8, order="F")
    mask[10:20, 10:30] = 1
    good = mask_utils.encode(mask)
    good = {"size": good["size"], "counts": good["counts"].decode()}
    wrong_size = mask_utils.encode(np.asfortranarray(mask[:40]))
    wrong_size = {"size": wrong_size["size"], "counts": wrong_size["counts"].decode()}
    found = lint_doc(with_segmentations(good, {"size": [48, 64], "counts": [3000, 71]}, wrong_size,
                                        {"size": [48, 64], "counts": "#bad"}, {"counts": [1]},
                                        {"size": [48, 64], "counts": [3000, -1, 73]},
                                        {"size": [48, 64], "counts": [3072]}, iscrowd=1), "LL108")
    messages = {f.annotation_id: f.message for f in found}
    assert sorted(messages) == [2, 3, 4, 5, 6]
    assert "sum to 3071 pixels" in messages[2] and "3072" in messages[2]
    assert "differs from its image" in messages[3]
    assert "not valid compressed RLE" in messages[4]
    assert "needs 'size'" in messages[5]
    assert "negative" in messages[6]


def test_rle_shapes_come_from_pycocotools():
    mask = np.zeros((48, 64), np.uint8, order="F")
    mask[10:20, 10:30] = 1
    rle = mask_utils.encode(mask)
    rle = {"size": rle["size"], "counts": rle["counts"].decode()}
    doc = with_segmentations(rle, iscrowd=1)
    doc["annotations"][0].update(bbox=[40, 30, 20, 10], area=200)
    (mismatch,) = lint_doc(doc, "LL109")
    assert "[10, 10, 20, 10]" in mismatch.message
    assert lint_doc(doc, "LL110") == []  # the RLE's 200 pixels
    doc["annotations"][0]["area"] = 400
    assert [f.annotation_id for f in lint_doc(doc, "LL110")] == [1]


# -- LL103, LL104, LL109, LL110, LL111, LL112 ------------------------------------------------------


def test_tiny_boxes_rank_the_smallest_first():
    doc = coco()
    doc["annotations"] += [{"id": 3, "image_id": 1, "category_id": 1, "bbox": [0, 0, 0.5, 0.5]},
                           {"id": 4, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1.5, 2]}]
    assert [f.annotation_id for f in lint_doc(doc, "LL103")] == [3, 4]


def test_bbox_segmentation_mismatch_tolerates_small_pixel_differences():
    square = [[10, 10, 30, 10, 30, 30, 10, 30]]
    doc = with_segmentations(square, square)
    doc["annotations"][0]["bbox"] = [11.5, 9, 20, 21.5]  # within 2px on every edge
    doc["annotations"][1]["bbox"] = [10, 10, 10, 10]
    assert [f.annotation_id for f in lint_doc(doc, "LL109")] == [2]


def test_area_mismatch_uses_the_segmentation_then_the_box():
    doc = with_segmentations([[10, 10, 30, 10, 30, 20, 10, 20]], [[10, 10, 30, 10, 30, 20, 10, 20]], None, None, None)
    areas = [200, 150, 200, 100, None]  # right, 25% off, right (box 20 x 10), half, missing
    for ann, area in zip(doc["annotations"], areas):
        if area is not None:
            ann["area"] = area
    found = {f.annotation_id: f.message for f in lint_doc(doc, "LL110")}
    assert sorted(found) == [2, 4]
    assert "segmentation's area 200" in found[2]
    assert "the box's width x height 200" in found[4]
    (missing,) = lint_doc(doc, "LL113")
    assert missing.annotation_id == 5 and "KeyError" in missing.message


def test_area_of_a_small_polygon_may_differ_by_its_rasterisation():
    doc = with_segmentations([[10, 10, 14, 10, 14, 14, 10, 14]], area=22)  # 16 by shoelace; 25 rasterised
    assert lint_doc(doc, "LL110") == []


def test_iscrowd_values_and_crowd_polygons():
    doc = with_segmentations([[10, 10, 30, 10, 30, 20]], [[10, 10, 30, 10, 30, 20]], [[10, 10, 30, 10, 30, 20]])
    for ann, crowd in zip(doc["annotations"], (2, 1, 0)):
        ann["iscrowd"] = crowd
    assert [f.annotation_id for f in lint_doc(doc, "LL111")] == [1]
    assert [f.annotation_id for f in lint_doc(doc, "LL112")] == [2]


@pytest.mark.parametrize("code", ["LL106", "LL107", "LL108", "LL109", "LL110", "LL112"])
def test_segmentation_rules_accept_files_without_segmentations(code):
    assert lint_doc(coco(), code) == []


# -- each limit pinned through the rule itself (a dropped term or a shifted threshold fails) -------


def _boxes(*boxes, width=64, height=48):
    anns = [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": list(b), "iscrowd": 0} for i, b in enumerate(boxes)]
    return coco(images=[{"id": 1, "file_name": "a.jpg", "width": width, "height": height}], annotations=anns)


@pytest.mark.parametrize("side, over, within", [
    ("left", [-3, 10, 20, 10], [-0.5, 10, 20, 10]),
    ("top", [10, -3, 20, 10], [10, -0.5, 20, 10]),
    ("right", [50, 10, 17, 10], [50, 10, 14.5, 10]),
    ("bottom", [10, 40, 20, 11], [10, 40, 20, 8.5]),
])
def test_bbox_outside_image_sees_each_side_alone(side, over, within):
    (f,) = lint_doc(_boxes(over, within), "LL105")
    assert f.annotation_id == 1 and f"{side} by 3px" in f.message


def test_tiny_bbox_reports_a_thin_box_and_a_small_area_each_on_its_own():
    # side under 1px (area 10 is fine); area under 4px² (sides 1.5 are fine); both fine
    found = lint_doc(_boxes([1, 1, 0.5, 20], [5, 5, 1.5, 1.5], [9, 9, 2, 2]), "LL103")
    assert sorted(f.annotation_id for f in found) == [1, 2]


@pytest.mark.parametrize("shape", ["wide", "tall"])
def test_extreme_aspect_ratio_limit_applies_both_ways(shape):
    over, under = ([1, 1, 42, 2], [1, 1, 38, 2]) if shape == "wide" else ([1, 1, 2, 42], [1, 1, 2, 38])
    found = lint_doc(_boxes(over, under), "LL104")
    assert [f.annotation_id for f in found] == [1] and f"21 times {'wider' if shape == 'wide' else 'taller'}" in found[0].message
