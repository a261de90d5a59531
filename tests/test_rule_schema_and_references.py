"""File, schema and reference rules (LL0xx) on the tricky cases their examples do not show."""

from __future__ import annotations

import json

from conftest import coco
from test_rules_catalogue import lint_doc as run


def test_schema_rule_covers_sections_entries_and_non_integer_ids():
    assert [f.pointer for f in run({"images": [], "annotations": []}, "LL001")] == [""]  # no categories
    found = run({"images": {}, "annotations": [], "categories": []}, "LL001")
    assert any("'images' must be an array" in f.message for f in found)
    doc = coco()
    doc["annotations"].append(7)
    doc["images"][0]["id"] = "1"
    doc["annotations"][0]["category_id"] = 1.5
    messages = [f.message for f in run(doc, "LL001")]
    assert any("entry must be an object" in m for m in messages)
    assert any("'id' must be an integer, got a string" in m for m in messages)
    assert any("'category_id' must be an integer" in m for m in messages)


def test_boxes_that_are_not_four_finite_numbers_are_reported_by_the_loader_rules():
    doc = coco()
    doc["annotations"][0]["bbox"] = [1, 2, 3]
    assert any("4 numbers" in f.message for f in run(doc, "LL001"))
    text = json.dumps(coco()).replace("[1, 2, 10, 10]", "[1, 2, Infinity, 10]")
    assert [f.annotation_id for f in run(text, "LL002")] == [1]
    assert run(text, "LL102") == []  # an infinite box is LL002's alone


def test_annotation_id_zero_explains_the_evaluation_damage():
    doc = coco()
    doc["annotations"][0]["id"] = 0
    (finding,) = run(doc, "LL014")
    assert finding.annotation_id == 0 and finding.pointer == "/annotations/0"
    assert "pycocotools" in finding.message and "mAP" in finding.message and "silently wrong" in finding.message
    doc["images"][0]["id"] = 0  # an image id of 0 is harmless
    doc["annotations"][0]["image_id"] = 0
    assert len(run(doc, "LL014")) == 1


def test_missing_or_non_numeric_image_size_is_a_schema_problem():
    doc = coco()
    del doc["images"][0]["width"]
    doc["images"][1]["height"] = "48"
    messages = {f.pointer: f.message for f in run(doc, "LL001")}
    assert messages["/images/0/width"] == "missing key 'width'"
    assert "must be a number" in messages["/images/1/height"]
    assert run(doc, "LL015") == []  # reported once, by LL001


def test_image_size_zero_negative_and_fractional():
    doc = coco()
    doc["images"][0]["width"] = 0
    doc["images"][1]["height"] = -5
    doc["images"].append({"id": 3, "file_name": "c.jpg", "width": 64.5, "height": 48})
    found = {f.pointer: f.message for f in run(doc, "LL015")}
    assert found == {"/images/0/width": "image width is 0", "/images/1/height": "image height is -5",
                     "/images/2/width": "image width 64.5 is not a whole number of pixels"}


def test_duplicate_file_name_names_the_first_entry():
    doc = coco()
    doc["images"][1]["file_name"] = "a.jpg"
    (finding,) = run(doc, "LL013")
    assert finding.image_id == 2 and "image id 1" in finding.message


def test_unused_category_ignores_a_repeated_id():
    doc = coco(categories=[{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}, {"id": 2, "name": "dog2"},
                           {"id": 3, "name": "bird"}])
    assert [f.category_id for f in run(doc, "LL016")] == [3]


def test_category_names_exact_and_near_duplicates():
    doc = coco(categories=[{"id": 1, "name": "Traffic light"}, {"id": 2, "name": "traffic-light"},
                           {"id": 3, "name": "TrafficLight"}, {"id": 4, "name": "Traffic light"},
                           {"id": 5, "name": "traffic lights"}])
    assert [f.category_id for f in run(doc, "LL017")] == [4]
    near = run(doc, "LL018")
    assert sorted(f.category_id for f in near) == [2, 3]
    assert all(f.suggestion == "Traffic light" for f in near)
