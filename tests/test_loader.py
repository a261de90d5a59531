"""The loader: typed, split and tolerant decodes agree; odd values become issues; broken JSON is
located; positions of every element are right whatever the layout of the file."""

from __future__ import annotations

import json
import math
import mmap
import random
import sys

import msgspec
import numpy as np
import pytest

from conftest import coco
from labellint.coco import MISSING_ID, NotCoco, SegmentationColumn, load, load_bytes
from labellint import geometry
from labellint.coco import parallel, positions
from labellint.errors import InputError

L = sys.modules["labellint.coco.load"]  # the module (labellint.coco.load is the function)
SECTIONS = ("images", "annotations", "categories")


# -- helpers --------------------------------------------------------------------------------------
def columns(ds) -> dict:
    """Every column of a dataset, as plain Python values, for comparisons."""
    out = {}
    for section, names in (("images", ("id", "width", "height", "file_name")),
                           ("annotations", ("id", "image_id", "category_id", "bbox", "area", "iscrowd")),
                           ("categories", ("id", "name", "supercategory"))):
        for name in names:
            value = getattr(getattr(ds, section), name)
            if isinstance(value, np.ndarray):
                assert value.dtype in (np.int64, np.float64), (section, name, value.dtype)
                value = np.where(np.isnan(value), -7.5e300, value).tolist() if value.dtype == np.float64 else value.tolist()
            out[f"{section}.{name}"] = list(value)
    return out


def tolerant(doc_bytes: bytes):
    """The tolerant path on its own, whatever the typed path would do."""
    doc, strict = L._parse_generic(doc_bytes, "x.json")
    return L._from_generic(doc, strict)


def segmentation_values(ds) -> list:
    return [(msgspec.json.decode(s) if len(s) else None) if isinstance(s, msgspec.Raw) else s
            for s in ds.annotations.segmentation]


def big_doc(n_images=40, per_image=6, seed=0, extra_image_fields=True) -> dict:
    """A COCO document with enough annotations for the split decode to have something to cut."""
    rng = random.Random(seed)
    images = [{"id": i + 1, "file_name": f"{i + 1:06d}.jpg", "width": 640, "height": 480,
               **({"license": 1, "coco_url": "http://x/y.jpg"} if extra_image_fields else {})}
              for i in range(n_images)]
    anns = []
    for a in range(n_images * per_image):
        x, y = round(rng.uniform(0, 500), 2), round(rng.uniform(0, 400), 2)
        w, h = round(rng.uniform(1, 100), 2), round(rng.uniform(1, 60), 2)
        ann = {"segmentation": [[x, y, x + w, y, x + w, y + h]], "area": round(w * h, 3), "iscrowd": a % 7 == 0,
               "image_id": rng.randint(1, n_images), "bbox": [x, y, w, h], "category_id": rng.randint(1, 5), "id": a + 1}
        ann["iscrowd"] = int(ann["iscrowd"])
        if a % 5 == 0:
            del ann["area"]
        if a % 11 == 0:
            del ann["segmentation"]
        anns.append(ann)
    cats = [{"id": i, "name": f"class {i}", "supercategory": "thing" if i % 2 else None} for i in range(1, 6)]
    return {"info": {"description": "test"}, "licenses": [{"id": 1, "name": "x"}],
            "images": images, "annotations": anns, "categories": cats}


@pytest.fixture
def force_split(monkeypatch):
    """Make every file 'large': the split decode runs on small test files. The guard against
    forking from a big heap is lifted: the test process holds torch and more after a full run,
    and what is tested here is the split's correctness, not its speed."""
    monkeypatch.setattr(parallel, "MAX_PRIVATE_BYTES", 1 << 62)
    if not parallel.available():
        pytest.skip("the split decode needs fork and two cores")
    monkeypatch.setattr(L, "SPLIT_MIN_BYTES", 0)


@pytest.fixture
def no_split(monkeypatch):
    monkeypatch.setenv("LABELLINT_NO_FORK", "1")


def expected_offsets(text: str) -> dict[str, list[int]]:
    """An independent element scanner over the decoded text (characters, not bytes): a
    character-by-character walk that tracks strings and depth. Returns byte offsets."""
    out: dict[str, list[int]] = {}
    depth, i, n = 0, 0, len(text)
    key, last_str, current = None, None, None
    while i < n:
        ch = text[i]
        if ch == '"':
            j = i + 1
            while text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if depth == 1:
                last_str = json.loads(text[i : j + 1])
            i = j + 1
            continue
        if ch == ":" and depth == 1:
            key = last_str
        elif ch in "[{":
            depth += 1
            if depth == 2 and ch == "[" and key in SECTIONS:
                current = out.setdefault(key, [])
                j = i + 1
                while text[j] in " \t\r\n":
                    j += 1
                if text[j] != "]":
                    current.append(j)
        elif ch in "]}":
            if depth == 2:
                current = None
            depth -= 1
        elif ch == "," and depth == 2 and current is not None:
            j = i + 1
            while text[j] in " \t\r\n":
                j += 1
            current.append(j)
        i += 1
    # character offsets to byte offsets
    return {k: [len(text[:c].encode()) for c in v] for k, v in out.items()}


def expected_line_column(text: str, byte_offset: int) -> tuple[int, int]:
    prefix = text.encode()[:byte_offset].decode()
    return prefix.count("\n") + 1, len(prefix) - (prefix.rfind("\n") + 1) + 1


def assert_positions(ds, text: str):
    want = expected_offsets(text)
    got = ds.offsets()
    assert set(got) == set(want)
    for section in want:
        assert got[section].tolist() == want[section], section
    offsets = [o for v in want.values() for o in v]
    where = ds.locate(offsets)
    for o in offsets:
        assert where[o] == expected_line_column(text, o)


# -- typed, tolerant and split agree --------------------------------------------------------------
@pytest.mark.parametrize("indent", [None, 2])
def test_typed_and_tolerant_paths_give_the_same_columns(indent):
    doc = big_doc(n_images=10, per_image=4)
    data = json.dumps(doc, indent=indent).encode()
    ds = load_bytes(data, "x.json")
    assert ds.strict_json and ds.issues == []
    assert isinstance(ds.annotations.segmentation, SegmentationColumn)  # i.e. the typed path ran
    images, annotations, categories, sections, issues = tolerant(data)
    assert issues == []
    assert sections == ds.sections == {"images": "array", "annotations": "array", "categories": "array"}
    from labellint.coco import Dataset
    other = Dataset("x.json", data, images, annotations, categories, sections, issues)
    assert columns(ds) == columns(other)
    assert segmentation_values(ds) == segmentation_values(other) == [a.get("segmentation") for a in doc["annotations"]]
    # defaults: area nan when absent, iscrowd 0 when absent
    assert math.isnan(ds.annotations.area[0]) and ds.annotations.area[1] == doc["annotations"][1]["area"]


def test_columns_hold_the_values_of_the_file():
    doc = coco()
    doc["annotations"][0].pop("iscrowd")
    doc["categories"][1].pop("supercategory")
    ds = load_bytes(json.dumps(doc).encode(), "x.json")
    assert ds.images.id.tolist() == [1, 2] and ds.images.file_name == ["a.jpg", "b.jpg"]
    assert ds.images.width.tolist() == [64, 64] and ds.images.height.tolist() == [48, 48]
    assert ds.annotations.bbox.shape == (2, 4) and ds.annotations.bbox[1].tolist() == [5, 5, 20, 10]
    assert ds.annotations.iscrowd.tolist() == [0, 0] and ds.annotations.area.tolist() == [100, 200]
    assert ds.categories.name == ["cat", "dog"] and ds.categories.supercategory == ["animal", None]
    assert ds.ann_image_row.tolist() == [0, 1] and ds.ann_category_row.tolist() == [0, 1]
    assert [bytes(s) for s in ds.annotations.segmentation] == [b"", b""]  # empty Raw: absent


@pytest.mark.parametrize("indent", [None, 1, "\t"])
def test_split_decode_matches_the_serial_one(force_split, monkeypatch, indent):
    data = json.dumps(big_doc(), indent=indent).encode()
    split = load_bytes(data, "x.json")
    assert "split" in split.layout, "the split decode did not run"
    monkeypatch.setenv("LABELLINT_NO_FORK", "1")
    serial = load_bytes(data, "x.json")
    assert "split" not in serial.layout
    assert columns(split) == columns(serial)
    assert segmentation_values(split) == segmentation_values(serial)
    # and positions, which use the proven cut
    assert {k: v.tolist() for k, v in split.offsets().items()} == {k: v.tolist() for k, v in serial.offsets().items()}
    assert_positions(split, data.decode())


@pytest.mark.parametrize("room", ["none", "too-small", "first-part-only", "enough"])
def test_split_columns_come_back_whatever_room_the_shared_block_has(force_split, monkeypatch, room):
    doc = big_doc()
    data = json.dumps(doc).encode()
    n = len(doc["annotations"])
    cap = {"none": None, "too-small": 3, "first-part-only": n - 1, "enough": n}[room]
    monkeypatch.setattr(L._SharedColumns, "for_plan",
                        classmethod(lambda cls, buf, plan: None if cap is None else cls(cap)))
    split = load_bytes(data, "x.json")
    assert "split" in split.layout
    base = split.annotations.bbox
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    assert (isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap)) == (room == "enough")  # in place
    monkeypatch.setenv("LABELLINT_NO_FORK", "1")
    serial = load_bytes(data, "x.json")
    assert columns(split) == columns(serial)
    assert_positions(split, data.decode())


ODD_BOXES = [[1, 2, 3, 4], [1e2, -0.0, 2.5e-3, 1e300], [0.1234567890123456789, 123456789.5, -12345678, 7],
             [239.97000000000003, 1.0000000000000002, 0.30000000000000004, 5e-324], [-1.5, -0.25, 99999999, 12345678.9]]


@pytest.mark.parametrize("indent", [None, 2])
def test_split_boxes_read_from_the_text_are_msgspec_floats(force_split, monkeypatch, indent):
    doc = big_doc()
    for i, box in enumerate(ODD_BOXES * 4):
        doc["annotations"][7 * i + 1]["bbox"] = box
    text = json.dumps(doc, indent=indent).replace("1e+300", "1E+300").replace("0.0025", "2.5e-3")
    split = load_bytes(text.encode(), "x.json")
    assert "split" in split.layout
    monkeypatch.setenv("LABELLINT_NO_FORK", "1")
    serial = load_bytes(text.encode(), "x.json")
    assert split.annotations.bbox.tobytes() == serial.annotations.bbox.tobytes()  # bit for bit, -0.0 too
    assert columns(split) == columns(serial)


@pytest.mark.parametrize("box", [[1, 2, 3], [1, 2, 3, 4, 5], [1, "2", 3, 4], [1, None, 3, 4], [1, True, 3, 4],
                                 [[1], 2, 3, 4], {"x": 1}, "1,2,3,4", [], [1, 2, 3, 1e999]])
def test_split_with_an_odd_box_gives_what_the_serial_load_gives(force_split, monkeypatch, box):
    doc = big_doc()
    doc["annotations"][3]["bbox"] = box
    doc["annotations"][-3]["bbox"] = box
    data = json.dumps(doc).replace("Infinity", "1e999").encode()
    split = load_bytes(data, "x.json")
    monkeypatch.setenv("LABELLINT_NO_FORK", "1")
    serial = load_bytes(data, "x.json")
    assert columns(split) == columns(serial)
    assert [(i.section, i.index, i.field, i.kind, i.message) for i in split.issues] == \
        [(i.section, i.index, i.field, i.kind, i.message) for i in serial.issues] != []


def test_split_decode_on_a_mapped_file_leaves_the_bytes_as_they_were(force_split, write_coco, monkeypatch):
    monkeypatch.setattr(L, "MMAP_MIN_BYTES", 0)
    path = write_coco(big_doc(), indent=2)
    original = path.read_bytes()
    ds = load(path)
    assert isinstance(ds.data, mmap.mmap) and "split" in ds.layout
    ds.offsets()
    assert ds.data[:] == original == path.read_bytes()  # spliced in place, then restored
    assert_positions(ds, original.decode())


def _children() -> list[int]:
    import os

    pid = os.getpid()
    return [int(c) for c in open(f"/proc/{pid}/task/{pid}/children").read().split()]


def test_split_children_measure_positions_then_go_away(force_split):
    data = json.dumps(big_doc(), indent=2).encode()
    ds = load_bytes(data, "x.json")
    assert len(_children()) == 2  # waiting to hand over the element lengths
    assert_positions(ds, data.decode())
    assert len(_children()) == 2  # and the segmentation summaries
    geometry.segmentations(ds)
    assert _children() == []  # all taken: reaped
    ds = load_bytes(data, "x.json")
    geometry.segmentations(ds)  # the other way round: the lengths are read on the way, kept
    assert _children() == []
    assert_positions(ds, data.decode())
    ds = load_bytes(data, "x.json")
    assert len(_children()) == 2
    del ds  # never asked: killed with the Dataset
    assert _children() == []


def _kill_children(ds):
    for claim in ds.layout["prefetch"]._children:
        parallel.stop(claim.child)
    assert _children() == []


def test_positions_when_the_measuring_children_died(force_split):
    data = json.dumps(big_doc()).encode()
    ds = load_bytes(data, "x.json")
    _kill_children(ds)
    assert_positions(ds, data.decode())


def test_positions_when_they_were_given_up(force_split):
    data = json.dumps(big_doc()).encode()
    ds = load_bytes(data, "x.json")
    ds.layout["prefetch"].cancel()  # measured here instead; the children stay for the summaries
    assert len(_children()) == 2
    assert_positions(ds, data.decode())


# -- segmentation summaries from the split decode's children ---------------------------------------
ODD_SEGMENTATIONS = [
    [[0, 0, 10, 0, 10, 10, 0, 10]], [], None, [[1, 2, 3]], [[1.5e1, 2, 3, 4, 5, 6]], [1, 2, 3, 4, 5, 6],
    [[[1, 2, 3, 4, 5, 6]]], "polygon", 5, {"size": [480, 640], "counts": [307200]},
    [[0, 0, 4, 0, 4, 4], [9, 9, 20, 9, 20, 20]], [[]], [[-1.25, -2.5, 100, 0, 50, 50]], [["1", 2, 3, 4, 5, 6]],
    [[123456789, 0, 1, 1, 0, 1]], [[0.1234567890123456789, 1, 2, 3, 4, 5]], [[True, 1, 2, 3, 4, 5]],
    [[1, 2], [3, 4, 5, 6, 7, 8]], {"size": [480, 640], "counts": "PPZ`0"}, [[0, 0, 10, 0, 10, 10], 3],
    [[1, 1, 5, 5, 9, 9]], [[0.30000000000000004, 1, 2, 3, 4, 5]],
]


def odd_segmentation_doc() -> dict:
    doc = big_doc(per_image=8)
    for i, seg in enumerate(ODD_SEGMENTATIONS * 3):
        doc["annotations"][4 * i + 3]["segmentation"] = seg
    return doc


def assert_same_segmentations(a, b):
    for name in ("kind", "area", "extent", "rle_rows", "poly_ann", "poly_len", "poly_area", "poly_extent"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), name  # bit for bit
    assert a.malformed == b.malformed and a.rle_values == b.rle_values
    assert all(x.tobytes() == y.tobytes() for x, y in zip(a.invalid_polygons, b.invalid_polygons))


@pytest.mark.parametrize("indent", [None, 1])
def test_split_children_summarise_segmentations_as_this_process_would(force_split, monkeypatch, indent):
    data = json.dumps(odd_segmentation_doc(), indent=indent).encode()
    split = load_bytes(data, "x.json")
    assert "split" in split.layout
    monkeypatch.setenv("LABELLINT_NO_FORK", "1")
    serial = load_bytes(data, "x.json")
    a, b = geometry.segmentations(split), geometry.segmentations(serial)
    assert isinstance(split.annotations.segmentation, SegmentationColumn)
    assert split.annotations.segmentation._items is None  # never decoded here
    assert set(a.kind.tolist()) == {0, 1, 2, 3} and a.malformed and len(a.invalid_polygons[0])
    assert_same_segmentations(a, b)


def test_summaries_when_the_children_died(force_split, monkeypatch):
    data = json.dumps(odd_segmentation_doc()).encode()
    ds = load_bytes(data, "x.json")
    _kill_children(ds)
    a = geometry.segmentations(ds)  # summarised here
    assert ds.annotations.segmentation._items is not None
    monkeypatch.setenv("LABELLINT_NO_FORK", "1")
    assert_same_segmentations(a, geometry.segmentations(load_bytes(data, "x.json")))
    assert_positions(ds, data.decode())


def test_summaries_when_the_child_fails(force_split, monkeypatch):
    data = json.dumps(odd_segmentation_doc()).encode()

    def boom(*args, **kwargs):
        raise ValueError("boom")

    real = geometry.summarise
    monkeypatch.setattr(geometry, "summarise", boom)  # the children fork with it
    ds = load_bytes(data, "x.json")
    monkeypatch.setattr(geometry, "summarise", real)
    a = geometry.segmentations(ds)
    assert ds.annotations.segmentation._items is not None  # summarised here instead
    assert_positions(ds, data.decode())
    assert _children() == []
    monkeypatch.setenv("LABELLINT_NO_FORK", "1")
    assert_same_segmentations(a, geometry.segmentations(load_bytes(data, "x.json")))


def test_shared_children_go_with_the_last_claim():
    child = parallel.start(lambda: 1, lambda: 2, lambda: 3)
    if child is None:
        pytest.skip("no fork")
    first, second = parallel.share(child, 1), parallel.share(child, 2)
    assert parallel.result(child) == 1
    parallel.stop(first)  # given up: the child stays for the other claim
    assert not child.reaped
    with pytest.raises(parallel.ChildFailed):
        parallel.later(first)
    assert parallel.later(second) == 3  # the result before it is read (and dropped) on the way
    assert child.reaped
    child = parallel.start(lambda: 1, lambda: 2)
    claim = parallel.share(child, 1)
    parallel.stop(claim)
    assert child.reaped


@pytest.mark.parametrize("where", ["in-a-string", "in-a-nested-array"])
def test_split_at_a_false_boundary_is_caught_and_falls_back(force_split, monkeypatch, where):
    """The byte search for '},{' lands inside a string or a nested array: the first piece does not
    decode, and the file goes the serial way with the same result."""
    doc = big_doc()
    for a in doc["annotations"]:
        if where == "in-a-string":
            a["note"] = "x},{y" * 50
        else:
            a["parts"] = [{"p": i} for i in range(30)]
    data = json.dumps(doc).encode()
    target = L._plan_split(data)
    assert target is not None  # a cut was proposed ...
    text = data.decode()
    seen = []
    real = L._decode_split
    monkeypatch.setattr(L, "_decode_split", lambda buf, gate: seen.append(real(buf, gate)) or seen[-1])
    ds = load_bytes(data, "x.json")
    monkeypatch.setenv("LABELLINT_NO_FORK", "1")
    assert columns(ds) == columns(load_bytes(data, "x.json"))
    if seen[0] is None:  # ... and refused: it was not a boundary
        assert "split" not in ds.layout
    else:  # the search happened to find a real boundary: then it must be one
        assert text[target.split - 1 : target.split + 1] == "},"
        assert_positions(ds, text)


def test_split_is_not_fooled_by_a_nested_annotations_key(force_split):
    doc = big_doc()
    doc = {"meta": {"x": 1, "annotations": [{"id": "nope"}, {"id": "no"}]}, **doc}
    data = json.dumps(doc).encode()
    ds = load_bytes(data, "x.json")
    assert ds.issues == [] and len(ds.annotations) == len(doc["annotations"])
    assert ds.annotations.id.tolist() == [a["id"] for a in doc["annotations"]]


@pytest.mark.parametrize("order", [("annotations", "images", "categories"), ("images", "categories", "annotations"),
                                   ("categories", "annotations", "images")])
def test_split_works_whatever_the_order_of_sections(force_split, monkeypatch, order):
    doc = big_doc()
    data = json.dumps({k: doc[k] for k in order}, indent=1).encode()
    ds = load_bytes(data, "x.json")
    monkeypatch.setenv("LABELLINT_NO_FORK", "1")
    assert columns(ds) == columns(load_bytes(data, "x.json"))
    assert_positions(ds, data.decode())


def test_split_refuses_a_file_that_uses_its_sentinel_key(force_split, monkeypatch):
    doc = big_doc()
    doc["\ue000"] = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}]
    for ensure_ascii in (True, False):  # written as \ue000 and as raw UTF-8
        data = json.dumps(doc, ensure_ascii=ensure_ascii).encode()
        ds = load_bytes(data, "x.json")
        assert "split" not in ds.layout
        assert ds.annotations.id.tolist() == [a["id"] for a in doc["annotations"]]


def test_split_with_a_section_twice_defers_to_the_serial_decode(force_split, monkeypatch):
    doc = big_doc()
    text = json.dumps(doc)
    assert text.endswith("}")
    text = text[:-1] + ', "images": [{"id": 99, "file_name": "z.jpg", "width": 1, "height": 1}]}'
    ds = load_bytes(text.encode(), "x.json")
    assert ds.images.id.tolist() == [99]  # msgspec: the last one counts, as in the serial decode
    monkeypatch.setenv("LABELLINT_NO_FORK", "1")
    assert columns(ds) == columns(load_bytes(text.encode(), "x.json"))


@pytest.mark.parametrize("half", ["first", "second"])
def test_split_type_error_in_either_half_goes_to_the_tolerant_path(force_split, half):
    doc = big_doc()
    n = len(doc["annotations"])
    bad = 3 if half == "first" else n - 3
    doc["annotations"][bad]["image_id"] = "12"
    ds = load_bytes(json.dumps(doc).encode(), "x.json")
    assert [(i.section, i.index, i.field, i.kind) for i in ds.issues] == [("annotations", bad, "image_id", "field-type")]
    assert ds.annotations.image_id[bad] == MISSING_ID
    assert ds.annotations.id.tolist() == list(range(1, n + 1))


def test_split_child_failure_falls_back(force_split, monkeypatch):
    def boom(work, *later_jobs):
        return None  # as if fork failed

    monkeypatch.setattr(parallel, "start", boom)
    doc = big_doc()
    ds = load_bytes(json.dumps(doc).encode(), "x.json")
    assert "split" not in ds.layout and len(ds.annotations) == len(doc["annotations"])


# -- odd values become issues ---------------------------------------------------------------------
def issues_of(doc) -> list[tuple]:
    ds = load_bytes(json.dumps(doc).encode(), "x.json")
    return [(i.section, i.index, i.field, i.kind) for i in ds.issues], ds


def test_string_ids_become_issues_and_missing_ids():
    doc = coco()
    doc["images"][1]["id"] = "2"
    doc["annotations"][0]["category_id"] = "1"
    found, ds = issues_of(doc)
    assert found == [("images", 1, "id", "field-type"), ("annotations", 0, "category_id", "field-type")]
    assert "string ('2')" in ds.issues[0].message
    assert ds.images.id.tolist() == [1, MISSING_ID] and ds.annotations.category_id[0] == MISSING_ID
    assert ds.ann_image_row.tolist() == [0, -1]  # image 2 is unknown now


def test_float_and_huge_and_boolean_ids():
    doc = coco()
    doc["annotations"][0]["id"] = 1.0
    doc["annotations"][1]["id"] = 2**63
    doc["images"][0]["id"] = True
    found, ds = issues_of(doc)
    assert found == [("images", 0, "id", "field-type"), ("annotations", 0, "id", "field-type"),
                     ("annotations", 1, "id", "field-type")]
    assert "float (1.0)" in ds.issues[1].message and "64-bit" in ds.issues[2].message
    assert ds.annotations.id.tolist() == [MISSING_ID, MISSING_ID]


def test_missing_keys():
    doc = coco()
    del doc["images"][0]["width"]
    del doc["annotations"][1]["bbox"]
    del doc["annotations"][1]["area"]  # optional: no issue
    del doc["categories"][0]["name"]
    found, ds = issues_of(doc)
    assert found == [("images", 0, "width", "missing-key"), ("annotations", 1, "bbox", "missing-key"),
                     ("categories", 0, "name", "missing-key")]
    assert math.isnan(ds.images.width[0]) and np.isnan(ds.annotations.bbox[1]).all()
    assert ds.categories.name == [None, "dog"]


def test_non_object_entries():
    doc = coco()
    doc["annotations"].insert(1, [1, 2, 3])
    doc["images"].append(None)
    found, ds = issues_of(doc)
    assert found == [("images", 2, None, "entry-type"), ("annotations", 1, None, "entry-type")]
    assert len(ds.annotations) == 3 and ds.annotations.id.tolist() == [1, MISSING_ID, 2]
    assert ds.images.file_name == ["a.jpg", "b.jpg", None]


@pytest.mark.parametrize("value, type_name", [({}, "object"), (None, "null"), ("x", "string"), (3, "number")])
def test_wrong_section_types(value, type_name):
    doc = coco()
    doc["categories"] = value
    found, ds = issues_of(doc)
    assert found == [(None, None, "categories", "section-type")]
    assert ds.sections["categories"] == type_name and len(ds.categories) == 0
    assert f"got {type_name}" in ds.issues[0].message


def test_missing_sections_are_absent_from_sections():
    doc = coco()
    del doc["categories"]
    found, ds = issues_of(doc)
    assert found == [] and "categories" not in ds.sections and len(ds.categories) == 0


@pytest.mark.parametrize("bbox, kind", [([1, 2, 3], "field-type"), ([1, 2, 3, 4, 5], "field-type"),
                                        ("1,2,3,4", "field-type"), ([1, "2", 3, 4], "field-type"),
                                        ([1, 2, 1e999, 4], "non-finite")])
def test_bad_boxes(bbox, kind):
    doc = coco()
    doc["annotations"][0]["bbox"] = bbox
    text = json.dumps(doc).replace("Infinity", "1e999")  # strict JSON that overflows to inf
    ds = load_bytes(text.encode(), "x.json")
    assert [(i.section, i.index, i.field, i.kind) for i in ds.issues] == [("annotations", 0, "bbox", kind)]
    assert ds.strict_json == (kind != "non-finite")  # 1e999 is JSON, but strict parsers refuse it


def test_overflowing_number_is_non_finite_in_strict_json():
    text = json.dumps(coco()).replace('"area": 100', '"area": -1e400')
    ds = load_bytes(text.encode(), "x.json")
    assert [(i.field, i.kind) for i in ds.issues] == [("area", "non-finite")]
    assert ds.annotations.area[0] == -math.inf and "-Infinity" in ds.issues[0].message
    assert not ds.strict_json


def test_types_the_typed_decode_accepts_are_the_tolerant_ones():
    doc = coco()
    doc["annotations"][0]["area"] = 100  # int where a float is expected: fine
    doc["images"][0]["width"] = 64.5
    doc["categories"][0]["supercategory"] = None
    found, ds = issues_of(doc)
    assert found == [] and isinstance(ds.annotations.segmentation, SegmentationColumn)
    assert ds.images.width[0] == 64.5


ODD_VALUES = ["12", 3.0, 3.5, True, None, 2**63, -(2**63), 2**64 + 1, -5, 0, [1, 2], {"a": 1}, "", 1e300,
              [1, 2, 3], [1, "2", 3, 4], [1, 2, 3, 4, 5], [[1, 2, 3, 4]], [True, 1, 2, 3], [1.5, 2, 3, 4.25], 10**400, [1, 10**400, 2, 3]]


def odd_doc(seed: int) -> dict:
    rng = random.Random(seed)
    doc = big_doc(n_images=8, per_image=3, seed=seed)
    for section in SECTIONS:
        for entry in doc[section]:
            for key in list(entry):
                r = rng.random()
                if r < 0.08:
                    del entry[key]
                elif r < 0.2:
                    entry[key] = rng.choice(ODD_VALUES)
    return doc


@pytest.mark.parametrize("seed", range(12))
def test_loose_decode_gives_what_the_generic_decode_gives(seed):
    """Files with odd values take the loose decode (Structs of any values); it must report the
    same issues, in the same order, and build the same columns as the generic decode."""
    data = json.dumps(odd_doc(seed)).encode()
    ds = load_bytes(data, "x.json")
    assert isinstance(ds.annotations.segmentation, SegmentationColumn), "the loose decode did not run"
    images, annotations, categories, sections, issues = tolerant(data)
    from labellint.coco import Dataset
    other = Dataset("x.json", data, images, annotations, categories, sections, issues)
    assert ds.sections == sections
    assert [(i.section, i.index, i.field, i.kind, i.message) for i in ds.issues] == \
        [(i.section, i.index, i.field, i.kind, i.message) for i in issues]
    assert ds.issues, "the fuzzing made no odd value"
    assert columns(ds) == columns(other)
    assert segmentation_values(ds) == segmentation_values(other)


def test_loose_decode_of_a_large_file_with_one_string_id(force_split):
    doc = big_doc()
    doc["annotations"][-2]["image_id"] = "12"
    data = json.dumps(doc).encode()
    ds = load_bytes(data, "x.json")
    assert isinstance(ds.annotations.segmentation, SegmentationColumn)
    n = len(doc["annotations"])
    assert [(i.index, i.field) for i in ds.issues] == [(n - 2, "image_id")]
    images, annotations, categories, sections, issues = tolerant(data)
    assert ds.annotations.image_id.tolist() == annotations.image_id.tolist()


# -- non-strict JSON ------------------------------------------------------------------------------
def test_infinity_and_nan_are_read_and_reported(write_coco):
    doc = coco()
    doc["annotations"][0]["bbox"] = [1, 2, float("inf"), 4]
    doc["annotations"][1]["area"] = float("nan")
    doc["annotations"][1]["segmentation"] = [[1, 2, float("-inf"), 4, 5, 6]]
    path = write_coco(json.dumps(doc, indent=2))
    ds = load(path)
    assert not ds.strict_json
    assert [(i.index, i.field, i.kind) for i in ds.issues] == [(0, "bbox", "non-finite"), (1, "area", "non-finite"),
                                                               (1, "segmentation", "non-finite")]
    assert "Infinity" in ds.issues[0].message and "NaN" in ds.issues[1].message
    assert ds.annotations.bbox[0, 2] == math.inf and math.isnan(ds.annotations.area[1])
    assert_positions(ds, path.read_text())


# -- broken JSON ----------------------------------------------------------------------------------
@pytest.fixture(params=["bytes", "mapped-file"])
def error_of(request, tmp_path, monkeypatch):
    """error_of(data) -> the InputError, from load_bytes or from a memory-mapped file."""
    def _error_of(data: bytes) -> InputError:
        with pytest.raises(InputError) as info:
            if request.param == "bytes":
                load_bytes(data, "bad.json")
            else:
                monkeypatch.setattr(L, "MMAP_MIN_BYTES", 1)  # an empty file cannot be mapped: read
                path = tmp_path / "bad.json"
                path.write_bytes(data)
                load(path, "bad.json")
        return info.value

    return _error_of


@pytest.mark.parametrize("indent", [None, 2])
def test_broken_json_is_located(error_of, indent):
    text = json.dumps(coco(), indent=indent)
    at = text.index('"iscrowd": 0', text.index('"annotations"')) + len('"iscrowd": 0')
    broken = text[:at] + ",," + text[at:]  # a second comma: the error is at it
    err = error_of(broken.encode())
    assert (err.line, err.column) == expected_line_column(broken, at + 1)
    assert err.message.startswith("invalid JSON") and err.path == "bad.json"
    assert str(err).startswith(f"bad.json:{err.line}:{err.column}: invalid JSON")


@pytest.mark.parametrize("indent", [None, 2])
def test_truncated_file_is_located_at_its_end(error_of, indent):
    text = json.dumps(coco(), indent=indent)
    cut = text[: len(text) * 2 // 3]
    err = error_of(cut.encode())
    assert (err.line, err.column) == expected_line_column(cut, len(cut.encode()))


def test_empty_file(error_of):
    err = error_of(b"")
    assert (err.line, err.column) == (1, 1)


@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize("where", ["file_name", "coco_url"])  # a decoded field, a skipped one
def test_invalid_utf8_is_located(error_of, indent, where):
    doc = coco()
    doc["images"][1]["coco_url"] = "http://x"
    doc["images"][1]["file_name"] = "bé.jpg"
    text = json.dumps(doc, indent=indent, ensure_ascii=False)
    data = text.encode()
    marker = {"file_name": "b", "coco_url": "http://"}[where]
    at = data.index(f'"{where}": "{marker}'.encode()) + len(f'"{where}": "{marker}')
    data = data[:at] + b"\xff" + data[at:]
    err = error_of(data)
    assert "UTF-8" in err.message
    assert (err.line, err.column) == expected_line_column(text, at)


def test_broken_non_strict_json_is_located(error_of):
    text = '{\n  "annotations": [\n    {"id": 1, "bbox": [1, 2, NaN, 4]},\n  ]\n}\n'
    err = error_of(text.encode())
    assert (err.line, err.column) == (4, 3)


def test_bom_is_skipped(write_coco, error_of):
    text = json.dumps(coco(), indent=2)
    path = write_coco("\ufeff" + text)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    ds = load(path)
    assert ds.issues == [] and len(ds.annotations) == 2
    assert_positions(ds, text)  # lines and columns as an editor shows them (the BOM is invisible)
    err = error_of(b"\xef\xbb\xbf" + b'{"images": [1,]}')
    assert (err.line, err.column) == (1, 15)


# -- not COCO -------------------------------------------------------------------------------------
@pytest.mark.parametrize("doc", [{"name": "x", "version": "1.0.0"}, [1, 2, 3], "text", 3, None,
                                 {"categories": [{"id": 1, "name": "cat"}]}, [{"images": []}]])
def test_json_that_is_not_coco_raises_not_coco(doc):
    with pytest.raises(NotCoco):
        load_bytes(json.dumps(doc).encode(), "package.json")


def test_not_coco_with_non_strict_values():
    with pytest.raises(NotCoco):
        load_bytes(b'{"name": "x", "score": NaN}', "x.json")


def test_files_and_directories(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load(tmp_path / "missing.json")
    with pytest.raises(InputError, match="directory"):
        load(tmp_path)


# -- positions ------------------------------------------------------------------------------------
def irregular(doc, rng: random.Random) -> str:
    """JSON text with random whitespace around every token (and CRLF line ends)."""
    ws = lambda: rng.choice(["", " ", "\n", "  \r\n\t", "\n\n    ", "\t"])
    if isinstance(doc, dict):
        return "{" + ws() + ("," + ws()).join(
            f"{json.dumps(k)}{ws()}:{ws()}{irregular(v, rng)}{ws()}" for k, v in doc.items()) + "}"
    if isinstance(doc, list):
        return "[" + ws() + ("," + ws()).join(irregular(v, rng) + ws() for v in doc) + "]"
    return json.dumps(doc, ensure_ascii=False)


def layouts():
    doc = big_doc(n_images=6, per_image=3)
    doc["categories"][0]["name"] = "été 🐈"  # multi-byte characters: columns count characters
    doc["images"][2]["file_name"] = 'a "quoted", {weird} [name].jpg'
    yield "minified", json.dumps(doc, separators=(",", ":"))
    yield "spaces", json.dumps(doc)
    yield "indent-2", json.dumps(doc, indent=2, ensure_ascii=False)
    yield "indent-tab", json.dumps(doc, indent="\t")
    yield "irregular", irregular(doc, random.Random(1))
    yield "irregular-2", irregular(doc, random.Random(2))
    empty = dict(doc, categories=[], images=[doc["images"][0]])
    yield "empty-and-single", json.dumps(empty, indent=2)


@pytest.mark.parametrize("name, text", list(layouts()))
def test_positions_of_every_element(name, text, monkeypatch):
    ds = load_bytes(text.encode(), "x.json")
    assert ds.issues == []
    assert_positions(ds, text)


@pytest.mark.parametrize("name, text", list(layouts()))
def test_positions_of_every_element_after_a_split_decode(force_split, write_coco, name, text, monkeypatch):
    monkeypatch.setattr(L, "MMAP_MIN_BYTES", 0)
    ds = load(write_coco(text))
    assert_positions(ds, text)


@pytest.mark.parametrize("name, text", list(layouts()))
def test_positions_in_non_strict_files(name, text):
    text = text.replace('"area"', '"area": NaN, "area2"', 1)
    ds = load_bytes(text.encode(), "x.json")
    assert not ds.strict_json
    assert_positions(ds, text)


def test_positions_slow_path_matches_fast_path():
    for name, text in layouts():
        data = text.encode()
        fast = positions.element_offsets(data)
        slow = positions._slow_offsets(data)
        assert {k: v.tolist() for k, v in fast.items()} == {k: v.tolist() for k, v in slow.items()}, name


def test_positions_on_a_mapped_file(write_coco, monkeypatch):
    monkeypatch.setattr(L, "MMAP_MIN_BYTES", 0)
    monkeypatch.setenv("LABELLINT_NO_FORK", "1")
    text = dict(layouts())["irregular"]
    ds = load(write_coco(text))
    assert isinstance(ds.data, mmap.mmap)
    assert_positions(ds, text)


def test_offsets_are_computed_only_when_asked():
    ds = load_bytes(json.dumps(coco()).encode(), "x.json")
    assert ds._offsets is None
    ds.offsets()
    assert ds._offsets is not None


# -- segmentation ---------------------------------------------------------------------------------
def test_segmentation_is_decoded_on_first_use(monkeypatch):
    doc = big_doc(n_images=3, per_image=3)
    calls = []
    real = L.decode_segmentations
    monkeypatch.setattr(L, "decode_segmentations", lambda buf: calls.append(1) or real(buf))
    ds = load_bytes(json.dumps(doc).encode(), "x.json")
    seg = ds.annotations.segmentation
    assert len(seg) == len(doc["annotations"]) and calls == []
    assert "not decoded" in repr(seg)
    want = [a.get("segmentation") for a in doc["annotations"]]
    assert all(type(s) is msgspec.Raw for s in seg)  # all Raw: geometry decodes them in bulk
    assert [msgspec.json.decode(s) if len(s) else None for s in seg] == want
    assert seg[-1] == seg[len(seg) - 1] and calls == [1]


def test_row_lookup_sparse_dense_and_duplicates():
    from labellint.coco.dataset import _row_lookup

    ids = np.array([5, 3, MISSING_ID, 9, 3], np.int64)
    wanted = np.array([3, 9, 4, MISSING_ID, 5, 100, -2**62], np.int64)
    assert _row_lookup(ids, wanted).tolist() == [1, 3, -1, -1, 0, -1, -1]  # first 3 wins
    sparse = np.array([10**15, 7, 3 * 10**17], np.int64)
    assert _row_lookup(sparse, np.array([7, 3 * 10**17, 8], np.int64)).tolist() == [1, 2, -1]
    assert _row_lookup(np.array([MISSING_ID], np.int64), np.array([MISSING_ID], np.int64)).tolist() == [-1]
    assert _row_lookup(np.zeros(0, np.int64), np.array([1], np.int64)).tolist() == [-1]


# -- the real thing (large, synthetic), when the shared tools are there ----------------------------
def test_split_decode_of_a_generated_file(shared, tmp_path, monkeypatch):
    """A synthetic file made by the shared generator (a few MB), split and serial."""
    import subprocess

    gen = shared / "tools" / "gen_coco.py"
    if not gen.exists():
        pytest.skip("no generator in the shared folder")
    path = tmp_path / "synth.json"
    subprocess.run([sys.executable, str(gen), str(path), "2000", "7.3"], check=True)
    monkeypatch.setattr(parallel, "MAX_PRIVATE_BYTES", 1 << 62)  # see force_split
    if not parallel.available():
        pytest.skip("needs fork and two cores")
    monkeypatch.setattr(L, "SPLIT_MIN_BYTES", 0)
    split = load(path)
    assert "split" in split.layout
    monkeypatch.setenv("LABELLINT_NO_FORK", "1")
    serial = load(path)
    assert columns(split) == columns(serial)
    assert {k: v.tolist() for k, v in split.offsets().items()} == {k: v.tolist() for k, v in serial.offsets().items()}


def test_no_fork_from_a_process_with_a_large_heap(force_split, monkeypatch):
    monkeypatch.setattr(parallel, "MAX_PRIVATE_BYTES", 0)
    assert not parallel.available()
    doc = big_doc()
    ds = load_bytes(json.dumps(doc).encode(), "x.json")
    assert "split" not in ds.layout and len(ds.annotations) == len(doc["annotations"])
    monkeypatch.undo()
    monkeypatch.setenv("LABELLINT_NO_FORK", "1")
    assert not parallel.available()
