"""Hostile and unusual input for the model-based rules (LL601-LL604) and `labellint evaluate` (issue 12).

* A prediction belongs to the label it overlaps most: the box the model draws on one pawn never
  moves, relabels or accuses the pawn next to it, whatever the scores; a prediction that barely
  touches a label is another object. Real shifted and swapped labels are still found.
* What the rules compare is bounded (LABELLINT_MAX_MODEL_PAIRS) and hostile ids or boxes never
  reach the evaluator that measures the class AP.
* `labellint evaluate` with the default backend takes every ground truth pycocotools takes (a
  Roboflow export's string ``info.year``, missing or odd metadata) and gives pycocotools' numbers;
  what hotcoco cannot read at all goes to pycocotools with a note. Duplicate annotation ids, which
  silently break both libraries' numbers, are a one-line error.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from click.testing import CliRunner

from labellint import registry
from labellint.cli import cli
from labellint.coco import load_bytes
from labellint.config import FileSettings
from labellint.engine import lint
from labellint.gate import evaluate as ev
from labellint.gate import objectlab
from labellint.gate import predictions as predictions_mod


def findings(code, doc, dets, **options):
    r = registry.by_code()[code]
    settings = FileSettings(rules=[r], options={r.code: {**r.options, **options}}, severity={r.code: r.severity})
    preds = predictions_mod.load_bytes(json.dumps(dets).encode(), "predictions.json")
    found, skipped = lint(load_bytes(json.dumps(doc).encode(), "ann.json"), settings, {"predictions": preds})
    assert not skipped
    return found


def doc_of(anns, categories=("pawn",), width=200, height=100, n_images=1):
    images = [{"id": i, "file_name": f"{i}.jpg", "width": width, "height": height} for i in range(1, n_images + 1)]
    annotations = [{"id": k + 1, "image_id": a.get("image_id", 1), "category_id": a["category_id"],
                    "bbox": a["bbox"], "area": a["bbox"][2] * a["bbox"][3], "iscrowd": 0} for k, a in enumerate(anns)]
    return {"images": images, "annotations": annotations,
            "categories": [{"id": k + 1, "name": n} for k, n in enumerate(categories)]}


def det(bbox, score, category_id=1, image_id=1):
    return {"image_id": image_id, "category_id": category_id, "bbox": bbox, "score": score}


def iou(a, b):
    xyxy = objectlab._xyxy(np.array([a, b], float))
    return float(objectlab.iou_matrix(xyxy[:1], xyxy[1:])[0, 0])


# -- LL602: a neighbour's prediction never moves a label --------------------------------------------
PAWN_A = [10, 10, 40, 40]
PAWN_B = [49.2, 10, 40, 40]  # touches A: IoU 0.01


@pytest.mark.parametrize("score_a, score_b", [(0.3, 0.9), (0.45, 0.99), (0.9, 0.3), (0.05, 0.6), (0.9, 0.9)])
def test_two_pawns_labelled_and_predicted_exactly_are_never_badly_located(score_a, score_b):
    assert 0.005 < iou(PAWN_A, PAWN_B) < 0.02
    doc = doc_of([{"category_id": 1, "bbox": PAWN_A}, {"category_id": 1, "bbox": PAWN_B}])
    dets = [det(PAWN_A, score_a), det(PAWN_B, score_b)]
    assert findings("LL602", doc, dets) == []
    # opened wide, still nothing: the only prediction on A that is confident is B's
    assert findings("LL602", doc, dets, threshold_scale=50.0, min_iou=0.0) == []


def test_duplicate_predictions_of_the_neighbour_are_the_neighbours():
    b_close = [40, 10, 40, 40]  # overlaps A by a quarter of its width: IoU 0.14
    doc = doc_of([{"category_id": 1, "bbox": PAWN_A}, {"category_id": 1, "bbox": b_close}])
    # the most confident box on B is a duplicate; the next one, exactly on B, still belongs to B
    dets = [det(PAWN_A, 0.3), det([41, 11, 40, 38], 0.95), det(b_close, 0.9)]
    assert iou(PAWN_A, b_close) > 0.1
    assert findings("LL602", doc, dets) == []
    assert findings("LL602", doc, dets, threshold_scale=50.0) == []


def test_fixing_the_findings_never_stacks_one_label_on_another():
    """The unsafe fix (and the gallery's accept) moves a box onto the model's: never onto a box another label holds."""
    doc = doc_of([{"category_id": 1, "bbox": PAWN_A}, {"category_id": 1, "bbox": PAWN_B},
                  {"category_id": 1, "bbox": [120, 10, 40, 40]}])
    dets = [det(PAWN_A, 0.3), det(PAWN_B, 0.9), det([120, 30, 40, 40], 0.9)]
    found = findings("LL602", doc, dets, threshold_scale=50.0)
    assert [f.annotation_id for f in found] == [3]  # the one real shift
    for f in found:
        (change,) = f.fix.resolved()
        others = [a["bbox"] for a in doc["annotations"] if a["id"] != f.annotation_id]
        assert max(iou(f.extra["suggested_bbox"], b) for b in others) < 0.5


def test_a_shifted_label_is_still_found():
    true_box, shifted = [60, 20, 40, 40], [75, 28, 40, 40]
    assert 0.3 <= iou(true_box, shifted) <= 0.6
    doc = doc_of([{"category_id": 1, "bbox": PAWN_A}, {"category_id": 1, "bbox": shifted}])
    dets = [det(PAWN_A, 0.9), det(true_box, 0.8)]  # the only confident prediction on it, no other label's
    (f,) = findings("LL602", doc, dets, threshold_scale=5.0)
    assert f.annotation_id == 2 and f.extra["suggested_bbox"] == true_box
    assert f.fix is not None and f.fix.safety == "unsafe"


def test_a_shift_is_found_with_the_default_options():
    # three cans, one label pushed down: IoU 0.11 with its prediction
    doc = doc_of([{"category_id": 1, "bbox": [2, 2, 12, 12]}, {"category_id": 1, "bbox": [47, 8, 20, 20]},
                  {"category_id": 1, "bbox": [20, 26, 12, 12]}], width=80, height=48)
    dets = [det([2, 2, 12, 12], 0.9), det([20, 26, 12, 12], 0.9), det([47, 24, 20, 20], 0.8)]
    (f,) = findings("LL602", doc, dets)
    assert f.annotation_id == 2 and "IoU 0.11" in f.message


def test_a_prediction_barely_touching_the_label_is_another_object():
    label, other = [10, 10, 40, 40], [46, 40, 40, 40]  # corner to corner: IoU 0.013
    assert iou(label, other) < 0.02
    doc = doc_of([{"category_id": 1, "bbox": label}, {"category_id": 1, "bbox": [140, 10, 40, 40]}])
    dets = [det(other, 0.99), det([140, 10, 40, 40], 0.9)]
    assert findings("LL602", doc, dets, threshold_scale=50.0) == []
    # min_iou is the knob: at 0 (ObjectLab's own choice) any overlap counts
    assert [f.annotation_id for f in findings("LL602", doc, dets, threshold_scale=50.0, min_iou=0.0)] == [1]


def test_a_label_the_model_draws_itself_is_never_badly_located():
    label, elsewhere = [10, 10, 40, 40], [140, 10, 40, 40]
    doc = doc_of([{"category_id": 1, "bbox": label}, {"category_id": 1, "bbox": elsewhere}])
    # a confident prediction overlapping it by a third, and a low-confidence one exactly on it
    dets = [det([30, 10, 40, 40], 0.95), det(elsewhere, 0.9), det(label, 0.2)]
    assert findings("LL602", doc, dets, threshold_scale=50.0) == []
    assert [f.annotation_id for f in findings("LL602", doc, dets[:2], threshold_scale=50.0)] == [1]


def test_the_raw_objectlab_score_is_kept_for_the_reference():
    """objectlab.badly_located stays cleanlab's (tests/test_model_rules.py compares them); the rule filters."""
    doc = doc_of([{"category_id": 1, "bbox": PAWN_A}, {"category_id": 1, "bbox": PAWN_B}])
    ds = load_bytes(json.dumps(doc).encode(), "x.json")
    preds = predictions_mod.load_bytes(json.dumps([det(PAWN_A, 0.3), det(PAWN_B, 0.9)]).encode(), "p.json")
    prepared = objectlab.prepare(ds, preds, 0.9)
    raw = {ann: pred for ann, pred, _ in objectlab.badly_located(prepared, 0.5)}
    assert raw == {0: 1, 1: 1}  # ObjectLab compares A with B's prediction
    assert {ann for ann, _, _ in objectlab.badly_located(prepared, 0.5, one_to_one=True, min_iou=0.05)} == set()


# -- LL603 and LL601: the same mistake ------------------------------------------------------------
def test_a_neighbours_prediction_never_relabels_a_box():
    can, bottle = [10, 10, 40, 40], [10, 10, 40, 34]  # one in front of the other: IoU 0.85
    doc = doc_of([{"category_id": 1, "bbox": can}, {"category_id": 2, "bbox": bottle}], categories=("can", "bottle"))
    dets = [det(can, 0.97, 1), det(bottle, 0.99, 2)]
    assert findings("LL603", doc, dets) == []
    assert findings("LL603", doc, dets, threshold_scale=50.0) == []


def test_a_real_swap_is_still_found():
    can, other = [10, 10, 40, 40], [100, 10, 30, 30]
    doc = doc_of([{"category_id": 1, "bbox": can}, {"category_id": 1, "bbox": other}], categories=("can", "bottle"))
    dets = [det(can, 0.99, 2), det(other, 0.9, 1)]
    (f,) = findings("LL603", doc, dets)
    assert f.annotation_id == 1 and f.suggestion == "bottle"


def test_a_prediction_a_label_explains_is_never_an_overlooked_object():
    """A prediction on a label (of its class or another) is that label's object; one that only
    touches a neighbour which the model finds in its own place is another object (max_iou 0: only
    predictions that touch no label, ObjectLab's rule)."""
    doc = doc_of([{"category_id": 1, "bbox": PAWN_A}, {"category_id": 2, "bbox": [120, 10, 40, 40]}],
                 categories=("pawn", "rook"))
    dets = [det(PAWN_A, 0.99), det([49.2, 10, 40, 40], 0.99), det([120, 10, 40, 40], 0.99, 1),
            det([150, 60, 30, 30], 0.99)]
    found = findings("LL601", doc, dets, threshold_scale=50.0, max_iou=0.0)
    assert len(found) == 1 and "[150, 60, 30, 30]" in found[0].message
    found = findings("LL601", doc, dets, threshold_scale=50.0)
    assert sorted(f.message.split(" at ")[1].split(" (")[0] for f in found) == [
        "[150, 60, 30, 30]", "[49.2, 10, 40, 40]"], [f.message for f in found]


# -- LL604: any class supports a box; an image the model is silent on is not judged ----------------
def test_a_spurious_box_needs_a_real_overlap_and_ranks_by_the_models_confidence():
    # image 1: the model finds the pawn at 0.95 and nothing at [120, 50, 20, 20]; image 2: the same
    # at 0.4. min_iou = 0 still needs an overlap: a confident prediction elsewhere supports nothing.
    # (min_class_recall 0: with half of the pawns unsupported, the default would judge none)
    doc = doc_of([{"category_id": 1, "bbox": PAWN_A}, {"category_id": 1, "bbox": [120, 50, 20, 20]},
                  {"category_id": 1, "bbox": PAWN_A, "image_id": 2},
                  {"category_id": 1, "bbox": [120, 50, 20, 20], "image_id": 2}], n_images=2)
    dets = [det(PAWN_A, 0.95), det(PAWN_A, 0.4, image_id=2)]
    for options in ({}, {"min_iou": 0.0}):
        found = findings("LL604", doc, dets, min_class_recall=0.0, **options)
        assert [f.annotation_id for f in found] == [2, 4], [f.message for f in found]
        assert [round(f.score, 2) for f in found] == [0.95, 0.4]
    assert [f.annotation_id for f in findings("LL604", doc, dets, min_confidence=0.5, min_class_recall=0.0)] == [2]
    assert findings("LL604", doc, dets) == []  # the model supports 2 of 4 pawns: its silence accuses none


def test_boxes_the_loader_cannot_place_are_not_spurious():
    """Unknown category, zero width, non-finite corner: other rules' findings, never a deletion here."""
    doc = doc_of([{"category_id": 1, "bbox": PAWN_A}, {"category_id": 9, "bbox": [120, 50, 20, 20]},
                  {"category_id": 1, "bbox": [120, 50, 0, 20]}, {"category_id": 1, "bbox": [1e308, 50, 1e308, 20]}])
    assert findings("LL604", doc, [det(PAWN_A, 0.95)]) == []


# -- bounded work, hostile values ----------------------------------------------------------------
def test_the_pairs_compared_are_bounded(tmp_path, monkeypatch):
    doc = doc_of([{"category_id": 1, "bbox": [float(x), 10, 5, 5]} for x in range(0, 150, 10)])
    ann, pred = tmp_path / "ann.json", tmp_path / "pred.json"
    ann.write_text(json.dumps(doc))
    pred.write_text(json.dumps([det([float(x), 10, 5, 5], 0.9) for x in range(0, 150, 10)]))  # 15 x 15 pairs
    args = ["check", str(ann), "--predictions", str(pred), "--select", "LL6"]
    monkeypatch.setenv("LABELLINT_MAX_MODEL_PAIRS", "224")
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 2, done.output
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("labellint: error:") and "225" in line and "LABELLINT_MAX_MODEL_PAIRS" in line
    monkeypatch.setenv("LABELLINT_MAX_MODEL_PAIRS", "225")
    assert CliRunner().invoke(cli, args).exit_code == 0


def test_one_image_of_many_boxes_is_compared_in_bounded_blocks(monkeypatch):
    monkeypatch.setattr(objectlab, "SIM_BLOCK", 64)
    rng = np.random.default_rng(0)
    a = objectlab._xyxy(rng.uniform([0, 0, 1, 1], [100, 100, 30, 30], (300, 4)))
    b = objectlab._xyxy(rng.uniform([0, 0, 1, 1], [100, 100, 30, 30], (40, 4)))
    blocks = objectlab._similarity_blocks(a, b, 0.9)
    whole = objectlab.similarity(a, b, 0.9)
    assert all(np.array_equal(x, y) for x, y in zip(blocks, whole))


def test_hostile_ids_and_boxes_are_no_crash():
    """Negative and huge ids, a box whose corner overflows to inf: the class AP never sees the file's ids."""
    doc = {"images": [{"id": -5, "file_name": "a.jpg", "width": 64, "height": 48},
                      {"id": 2**62, "file_name": "b.jpg", "width": 64, "height": 48}],
           "annotations": [{"id": 1, "image_id": -5, "category_id": -7, "bbox": [2, 2, 12, 12], "area": 144,
                            "iscrowd": 0},
                           {"id": 2, "image_id": 2**62, "category_id": -7, "bbox": [1e308, 2, 1e308, 12],
                            "area": 144, "iscrowd": 0}],
           "categories": [{"id": -7, "name": "can"}]}
    dets = [det([2, 2, 12, 12], 0.9, -7, -5), det([1e308, 2, 1e308, 12], 0.99, -7, 2**62),
            det([30, 2, 12, 12], 0.99, -7, -5)]
    for code in ("LL601", "LL602", "LL603", "LL604"):
        found = findings(code, doc, dets, **({} if code == "LL604" else {"threshold_scale": 50.0}))
        assert not [f for f in found if f.extra.get("rule_failed")], [f.message for f in found]
    assert ["[30, 2, 12, 12]" in f.message for f in findings("LL601", doc, dets)] == [True]


# -- labellint evaluate: what pycocotools takes, the default backend takes -------------------------
def gt_and_dt(seed=0, n_images=12):
    """A small ground truth (boxes, diamond polygons of half the box's area, a few crowd regions) and detections."""
    rng = np.random.default_rng(seed)
    images, anns, dets = [], [], []
    for i in range(1, n_images + 1):
        images.append({"id": i, "file_name": f"{i}.jpg", "width": 640, "height": 480})
        for _ in range(4):
            x, y = (float(v) for v in rng.uniform(0, 400, 2))
            w, h = (float(v) for v in rng.uniform(8, 200, 2))  # small, medium and large
            c = int(rng.integers(1, 4))
            poly = [x + w / 2, y, x + w, y + h / 2, x + w / 2, y + h, x, y + h / 2]
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": c, "bbox": [x, y, w, h],
                         "area": w * h / 2, "iscrowd": int(len(anns) % 9 == 4), "segmentation": [poly]})
            for _ in range(int(rng.integers(0, 3))):
                j = rng.normal(0, 0.08, 4) * [w, h, w, h]
                dets.append(det([x + j[0], y + j[1], w + j[2], h + j[3]], float(rng.uniform(0.05, 1)),
                                c if rng.random() < 0.8 else int(rng.integers(1, 4)), i))
        dets.append(det([float(v) for v in rng.uniform(0, 400, 2)] + [50.0, 50.0], float(rng.uniform(0, 1)),
                        int(rng.integers(1, 4)), i))
    cats = [{"id": c, "name": n, "supercategory": "thing"} for c, n in ((1, "can"), (2, "bottle"), (3, "carton"))]
    return {"info": {"year": 2024, "version": "1.0", "description": "generated"}, "licenses": [],
            "images": images, "annotations": anns, "categories": cats}, dets


def _each(section):
    def change(fn):
        def apply(doc):
            for entry in doc[section]:
                fn(entry)
        return apply
    return change


def _roboflow(doc):
    doc["info"] = {"year": "2020", "version": "3", "description": "Exported from roboflow.com",
                   "contributor": "", "url": "https://public.roboflow.com", "date_created": "2020-07-20T19:39:26+00:00"}
    doc["licenses"] = [{"id": 1, "url": "https://creativecommons.org/licenses/by/4.0/", "name": "CC BY 4.0"}]
    for im in doc["images"]:
        im.update(license=1, date_captured="2020-07-20T19:39:26+00:00")
    for c in doc["categories"]:
        c["supercategory"] = "none"


def _mask_area(doc):
    from pycocotools import mask

    size = {im["id"]: (im["height"], im["width"]) for im in doc["images"]}
    for a in doc["annotations"]:
        a["area"] = float(mask.area(mask.merge(mask.frPyObjects(a["segmentation"], *size[a["image_id"]]))))


def _float_ids(doc):
    for section, keys in (("images", ("id",)), ("categories", ("id",)),
                          ("annotations", ("id", "image_id", "category_id"))):
        for e in doc[section]:
            for k in keys:
                e[k] = float(e[k])


#: name -> (change the ground truth, make pycocotools' input from the changed one, or None when it takes it as is)
CASES = {
    "roboflow export": (_roboflow, None),
    "string info.year": (lambda d: d["info"].update(year="2020"), None),
    "int info.version": (lambda d: d["info"].update(version=1), None),
    "info a string": (lambda d: d.update(info="generated"), None),
    "no info, no licenses": (lambda d: (d.pop("info"), d.pop("licenses")), None),
    "licenses null": (lambda d: d.update(licenses=None), None),
    "licenses an object": (lambda d: d.update(licenses={"1": "CC BY 4.0"}), None),
    "string license ids": (lambda d: d.update(licenses=[{"id": "1", "name": 4}]), None),
    "image metadata of other types": (_each("images")(lambda e: e.update(license="1", date_captured=0,
                                                                         flickr_url=None, coco_url=3)), None),
    "string width and height": (_each("images")(lambda e: e.update(width=str(e["width"]), height=str(e["height"]))),
                                None),
    "file_name not a string": (_each("images")(lambda e: e.update(file_name=7)), None),
    "int supercategory, int name": (_each("categories")(lambda e: e.update(supercategory=3, name=e["id"])), None),
    "category keypoints of other types": (_each("categories")(lambda e: e.update(keypoints="nose", skeleton=None)),
                                          None),
    "extra keys": (lambda d: (d.update(extra={"a": [1]}), d["images"][0].update(foo="bar"),
                              d["annotations"][0].update(attributes={"occluded": False}, num_keypoints="0")), None),
    "whole float ids": (_float_ids, None),
    "fractional annotation ids": (_each("annotations")(lambda e: e.update(id=e["id"] + 0.5)), None),
    "negative annotation ids": (_each("annotations")(lambda e: e.update(id=-e["id"])), None),
    "segmentation missing": (_each("annotations")(lambda e: e.pop("segmentation")), None),
    # pycocotools itself fails on these (KeyError or int(None) while evaluating): hotcoco's reading
    # (not a crowd; the area of the mask) is checked against pycocotools given that reading
    "iscrowd missing": (_each("annotations")(lambda e: e.pop("iscrowd")),
                        _each("annotations")(lambda e: e.setdefault("iscrowd", 0))),
    "iscrowd null": (_each("annotations")(lambda e: e.update(iscrowd=None)),
                     _each("annotations")(lambda e: e.update(iscrowd=0))),
    "area missing": (_each("annotations")(lambda e: e.pop("area")), _mask_area),
}
#: cases hotcoco cannot take even with the evaluated fields only: evaluated by pycocotools, with a note
FALLBACK = {"fractional annotation ids", "negative annotation ids"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("evaluate")
    doc, dets = gt_and_dt()
    (folder / "dt.json").write_text(json.dumps(dets))
    return folder, doc


@pytest.mark.parametrize("case, iou_type", [(c, "bbox") for c in sorted(CASES)] + [("roboflow export", "segm")])
def test_the_default_backend_takes_what_pycocotools_takes(generated, case, iou_type):
    folder, base = generated
    change, for_reference = CASES[case]
    doc = copy.deepcopy(base)
    change(doc)
    gt = folder / f"{case}.json"
    gt.write_text(json.dumps(doc))
    reference_doc = copy.deepcopy(doc)
    if for_reference is not None:
        for_reference(reference_doc)
    reference = folder / f"{case} (reference).json"
    reference.write_text(json.dumps(reference_doc))
    dt = folder / "dt.json"
    if iou_type == "segm":
        dets = json.loads(dt.read_text())
        for d in dets:
            x, y, w, h = d["bbox"]
            d["segmentation"] = [[x + w / 2, y, x + w, y + h / 2, x + w / 2, y + h, x, y + h / 2]]
        dt = folder / "dt_segm.json"
        dt.write_text(json.dumps(dets))
    got = ev.evaluate(gt, dt, iou_type)
    want = ev.evaluate(reference, dt, iou_type, backend="pycocotools")
    assert got.stats == pytest.approx(want.stats, abs=1e-12)
    assert [c["AP"] for c in got.per_class] == pytest.approx([c["AP"] for c in want.per_class], abs=1e-12)
    assert [c["gt"] for c in got.per_class] == [c["gt"] for c in want.per_class]
    assert max(got.stats) > 0.3  # the detections are good: a real comparison, not of two -1 columns
    if case in FALLBACK:
        assert got.backend == "pycocotools"
        assert got.warnings and got.warnings[0].startswith("hotcoco cannot read this ground truth")
    else:
        assert got.backend == "hotcoco" and got.warnings == []  # still the fast backend, nothing to say


def test_a_roboflow_export_on_the_command_line(generated, tmp_path):
    folder, base = generated
    doc = copy.deepcopy(base)
    _roboflow(doc)
    gt = tmp_path / "_annotations.coco.json"
    gt.write_text(json.dumps(doc))
    done = CliRunner().invoke(cli, ["evaluate", str(gt), str(folder / "dt.json"), "-f", "json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["backend"] == "hotcoco" and done.stderr == ""


def test_the_fallback_note_and_names_are_printed_as_text(generated, tmp_path):
    folder, base = generated
    doc = copy.deepcopy(base)
    doc["annotations"][0]["id"] = 0.5  # hotcoco refuses it: pycocotools evaluates, and a note says so
    doc["categories"][0]["name"] = "can\x1b[2J\x1b]8;;http://x\x07[red]link[/red]"
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(doc))
    done = CliRunner().invoke(cli, ["evaluate", str(gt), str(folder / "dt.json")])
    assert done.exit_code == 0, done.output
    assert "\x1b" not in done.output and "\x07" not in done.output
    assert "[red]link[/red]" in done.stdout  # shown as written, never as markup
    assert "hotcoco cannot read this ground truth" in done.stderr and "pycocotools" in done.stderr


@pytest.mark.parametrize("backend", ev.BACKENDS)
@pytest.mark.parametrize("ids", [[1, 2, 2, 4], [1.0, 1, 3, 4], None])
def test_shared_annotation_ids_are_a_one_line_error(generated, tmp_path, backend, ids):
    """Both libraries look boxes up by id while matching: two boxes with one id give wrong numbers silently."""
    folder, base = generated
    doc = copy.deepcopy(base)
    for k, a in enumerate(doc["annotations"][:4]):
        if ids is None:
            a.pop("id")  # hotcoco reads a missing id as 0; pycocotools cannot index it
        else:
            a["id"] = ids[k]
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(doc))
    done = CliRunner().invoke(cli, ["evaluate", str(gt), str(folder / "dt.json"), "--backend", backend])
    assert done.exit_code == 2, done.output
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"labellint: error: {gt}") and ("own id" in line or "'id'" in line), line


def test_string_image_ids_are_a_one_line_error(generated, tmp_path):
    folder, base = generated
    doc = copy.deepcopy(base)
    for e in doc["images"]:
        e["id"] = str(e["id"])
    for a in doc["annotations"]:
        a["image_id"] = str(a["image_id"])
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(doc))
    for backend in ev.BACKENDS:
        done = CliRunner().invoke(cli, ["evaluate", str(gt), str(folder / "dt.json"), "--backend", backend])
        assert done.exit_code == 2 and "not a 64-bit integer" in done.stderr, done.output
