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


def test_an_id_written_as_a_string_says_what_it_stands_for():
    """image_id "1" where image 1 exists is not an unknown image: the message says the string is
    not the number; the same for a class, a float, and an image whose own id is the string."""
    doc = coco()
    doc["annotations"][0]["image_id"] = "1"
    doc["annotations"][1]["category_id"] = "2"
    doc["annotations"].append({"id": 3, "image_id": "9", "category_id": 1.0, "bbox": [1, 1, 2, 2], "area": 4})
    messages = {f.pointer: f.message for f in run(doc, "LL001")}
    assert messages["/annotations/0/image_id"] == (
        "'image_id' must be an integer, got a string ('1'): image 1 exists, but the string '1' is not the number 1, "
        "so this box belongs to no image (pycocotools matches ids as written); write 1 without quotes")
    assert "category 2 ('dog') exists, but the string '2' is not the number 2, so this box has no class" in \
        messages["/annotations/1/category_id"]
    assert messages["/annotations/2/image_id"].endswith("got a string ('9'); no image has the id 9 either")
    assert messages["/annotations/2/category_id"].endswith(": it stands for category 1 ('cat'), which exists; write 1")
    doc = coco()
    doc["images"][0]["id"] = "1"  # the annotation's image_id 1 is right; the image's id is not
    assert "1 annotation refers to image 1 by the number 1 and matches no image" in run(doc, "LL001")[0].message
    (unknown,) = run(doc, "LL011")
    assert unknown.message == ("image_id 1 is not the id of any image: /images/0 has the string '1' as its id, "
                               "not the number 1 (LL001); write its id as 1")
    assert unknown.fix is None  # deleting the box would be wrong: the image is there
    doc["images"][0]["id"] = 5
    (unknown,) = run(doc, "LL011")
    assert unknown.message == "image_id 1 is not the id of any image" and unknown.fix.safety == "unsafe"


def test_duplicate_and_zero_ids_get_distinct_fresh_ids():
    """LL010 and LL014 draw from one sequence: accepting both never makes a new duplicate."""
    doc = coco()
    doc["annotations"][0]["id"] = 0
    doc["annotations"].append({**doc["annotations"][1], "bbox": [30, 30, 5, 5]})  # id 2 again
    doc["annotations"].append({**doc["annotations"][0], "bbox": [40, 30, 5, 5]})  # id 0 again
    fixes = {(f.code, f.pointer): f.fix.resolved() for f in run(doc, "LL010", "LL014")}
    assert {k: [(e.index, e.field, e.value) for e in edits] for k, edits in fixes.items()} == {
        ("LL014", "/annotations/0"): [(0, "id", 3)],
        ("LL010", "/annotations/2"): [(2, "id", 4)],
        ("LL010", "/annotations/3"): [(3, "id", 5)],
        ("LL014", "/annotations/3"): [(3, "id", 5)],  # both rules report it: the same id from both
    }


def test_unused_category_skips_a_category_whose_id_is_not_an_integer():
    doc = coco(categories=[{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}, {"id": "3", "name": "cow"}])
    found = run(doc, "LL016", "LL001")
    assert [f.code for f in found] == ["LL001"] and "-9223372036854775808" not in found[0].message
