"""`labellint evaluate`: both backends reproduce pycocotools' published numbers; clear one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from labellint.cli import cli
from labellint.gate import evaluate as ev

# cocoapi's PythonAPI/pycocoEvalDemo.ipynb numbers, as /work/shared/data/cocoeval/README.md lists them
EXPECTED = {
    "bbox": [0.5045806987249628, 0.6969727247299577, 0.5729816669904824, 0.5856257209410443, 0.5193996948036719,
             0.5013978986347466, 0.38681277964578054, 0.5936795762842003, 0.595352982877607, 0.6398109626113442,
             0.5664205978994309, 0.5642905982905982],
    "segm": [0.3195452758576433, 0.5622883972521636, 0.29892653412086784, 0.3873740315997838, 0.31018272403369485,
             0.3269339071005138, 0.2682297225711534, 0.41544868114906375, 0.4168394992198818, 0.4694498622754236,
             0.37675922666197265, 0.3814715099715099],
}


@pytest.fixture
def demo(shared):
    folder = shared / "data" / "cocoeval" / "cocoapi_val2014_100"
    return {"gt": folder / "instances_val2014_100.json",
            "bbox": folder / "instances_val2014_fakebbox100_results.json",
            "segm": folder / "instances_val2014_fakesegm100_results.json"}


def run(args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("backend", ev.BACKENDS)
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_both_backends_reproduce_the_pycocotools_demo(demo, backend, iou_type):
    code, out, err = run(["evaluate", demo["gt"], demo[iou_type], "--iou-type", iou_type, "--backend", backend,
                          "--output-format", "json"])
    assert code == 0, err
    report = json.loads(out)
    assert report["stats"] == pytest.approx(EXPECTED[iou_type], abs=1e-12)  # float noise in the last digit only
    assert report["backend"] == backend and report["images"] == 100 and report["detections"] == 734
    assert len(report["per_class"]) == 80 and report["warnings"] == []


def test_per_class_numbers_agree_between_backends_and_with_the_overall_mean(demo):
    a = ev.evaluate(demo["gt"], demo["bbox"], "bbox", "hotcoco")
    b = ev.evaluate(demo["gt"], demo["bbox"], "bbox", "pycocotools")
    assert a.per_class == b.per_class
    person = next(c for c in a.per_class if c["name"] == "person")
    assert person["gt"] == 250 and person["detections"] == 201
    assert person["AP"] == pytest.approx(0.5326060142444453, abs=1e-12)
    # pycocotools' AP is the mean over classes with ground truth of each class's AP
    aps = [c["AP"] for c in a.per_class if c["AP"] > -1]
    assert sum(aps) / len(aps) == pytest.approx(a.stats[0], abs=1e-12)


def test_text_report_names_every_metric_and_class(demo):
    code, out, _ = run(["evaluate", demo["gt"], demo["bbox"]])
    assert code == 0
    for key in ev.STAT_KEYS:
        assert f"\n {key} " in out or out.startswith(key)
    assert "0.505" in out and "person" in out and "AR@100" in out


def test_a_run_folder_is_accepted_for_predictions(demo, tmp_path):
    (tmp_path / "predictions.json").write_bytes(demo["bbox"].read_bytes())
    code, out, _ = run(["evaluate", demo["gt"], tmp_path, "-f", "json"])
    assert code == 0 and json.loads(out)["stats"][0] == pytest.approx(EXPECTED["bbox"][0])


# -- annotation id 0: where the backends differ ----------------------------------------------------
def _id0_files(tmp_path):
    gt = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}],
          "annotations": [{"id": 0, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400,
                           "iscrowd": 0},
                          {"id": 1, "image_id": 1, "category_id": 1, "bbox": [50, 50, 20, 20], "area": 400,
                           "iscrowd": 0}],
          "categories": [{"id": 1, "name": "box"}]}
    dt = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9},
          {"image_id": 1, "category_id": 1, "bbox": [50, 50, 20, 20], "score": 0.8}]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dt))
    return tmp_path / "gt.json", tmp_path / "dt.json"


def test_annotation_id_zero_is_reported_and_explains_the_backends_disagreeing(tmp_path):
    gt, dt = _id0_files(tmp_path)
    hot = ev.evaluate(gt, dt, "bbox", "hotcoco")
    ref = ev.evaluate(gt, dt, "bbox", "pycocotools")
    assert hot.stats[0] == 1.0  # both boxes found perfectly
    assert ref.stats[0] < 0.5  # pycocotools cannot match the box whose id is 0
    for r in (hot, ref):
        assert r.warnings == [ev.ID0_WARNING]
    code, out, err = run(["evaluate", gt, dt])
    assert code == 0 and "id 0" in err and "pycocotools" in err


# -- errors: one line, exit 2 --------------------------------------------------------------------
def _gt(tmp_path):
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480},
                      {"id": 2, "file_name": "b.jpg", "width": 640, "height": 480}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 10, 100, 50], "area": 5000,
                            "iscrowd": 0}],
           "categories": [{"id": 3, "name": "cat"}]}
    p = tmp_path / "gt.json"
    p.write_text(json.dumps(doc))
    return p


@pytest.mark.parametrize("detections, message", [
    ([{"image_id": 9, "category_id": 3, "bbox": [1, 1, 5, 5], "score": 0.5}], "image_id 9, which is not an image"),
    ([{"image_id": 1, "category_id": 4, "bbox": [1, 1, 5, 5], "score": 0.5}], "category_id 4, which is not a category"),
    ([{"image_id": 1, "category_id": 3, "bbox": [1, 1, 5, 5]}], 'has no "score"'),
    ([{"image_id": 1, "category_id": 3, "bbox": [1, 1, 5], "score": 0.5}], "four numbers"),
    ([{"image_id": 1, "category_id": 3, "bbox": {"x": 1, "y": 1, "w": 5, "h": 5}, "score": 0.5}], "not an object"),
    ([{"image_id": 1, "category_id": 3, "bbox": [50, 50, 10, 10], "score": 0.5},
      {"image_id": 1, "category_id": 3, "bbox": [50, 50, 40, -10], "score": 0.5}], "negative width or height"),
    ([{"image_id": i % 2 + 1, "category_id": 3, "bbox": [300 + i, 200, 420 + i, 330], "score": 0.5}
      for i in range(10)], "fit as [x1, y1, x2, y2]"),
    ([{"image_id": 1, "category_id": 3, "bbox": [0.1 * i / 10, 0.2, 0.3, 0.4], "score": 0.5} for i in range(6)],
     "normalised"),
    ([{"image_id": "1", "category_id": 3, "bbox": [1, 1, 5, 5], "score": 0.5}], '"image_id" must be an integer'),
    ({"annotations": []}, "looks like a COCO annotation file"),
])
def test_bad_predictions_are_one_line_errors(tmp_path, detections, message):
    gt = _gt(tmp_path)
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(detections))
    for backend in ev.BACKENDS:
        code, out, err = run(["evaluate", gt, pred, "--backend", backend])
        assert code == 2, (out, err)
        assert message in err and err.startswith("labellint: error: ") and err.count("\n") == 1, err


def test_broken_json_and_missing_files_are_one_line_errors(tmp_path):
    gt = _gt(tmp_path)
    (tmp_path / "broken.json").write_text("[{")
    code, _, err = run(["evaluate", gt, tmp_path / "broken.json"])
    assert code == 2 and "not valid JSON" in err
    code, _, err = run(["evaluate", gt, tmp_path / "missing.json"])
    assert code == 2 and "not found" in err
    code, _, err = run(["evaluate", tmp_path / "nope.json", tmp_path / "missing.json"])
    assert code == 2 and "not found" in err


def test_segm_needs_mask_results(tmp_path):
    gt = _gt(tmp_path)
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps([{"image_id": 1, "category_id": 3, "bbox": [1, 1, 5, 5], "score": 0.5}]))
    code, _, err = run(["evaluate", gt, pred, "--iou-type", "segm"])
    assert code == 2 and "segmentation" in err


def test_empty_predictions_evaluate_to_zero_on_both_backends(tmp_path):
    gt = _gt(tmp_path)
    pred = tmp_path / "pred.json"
    pred.write_text("[]")
    for backend in ev.BACKENDS:
        r = ev.evaluate(gt, pred, "bbox", backend)
        assert r.stats[0] == 0.0 and r.n_detections == 0


def test_core_cli_runs_without_torch_and_train_says_how_to_install_it(tmp_path):
    """torch is imported lazily: `labellint check` and `evaluate` work without it; `train` explains."""
    gt = _gt(tmp_path)
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps([{"image_id": 1, "category_id": 3, "bbox": [10, 10, 100, 50], "score": 0.9}]))
    block = ("import sys; sys.modules['torch'] = None; sys.modules['torchvision'] = None; "
             "from labellint.cli import main; sys.argv = ['labellint'] + sys.argv[1:]; main()")
    env = {**os.environ, "LABELLINT_NO_PROGRESS": "1"}

    def call(*args):
        return subprocess.run([sys.executable, "-c", block, *map(str, args)], capture_output=True, text=True,
                              env=env, cwd=tmp_path)

    assert call("check", gt, "--select", "LL0").returncode == 0
    done = call("evaluate", gt, pred, "-f", "json")
    assert done.returncode == 0 and json.loads(done.stdout)["stats"][0] == pytest.approx(1.0)
    done = call("train", gt, "--images", tmp_path, "--val", gt, "--out", tmp_path / "run")
    assert done.returncode == 2
    assert done.stderr.strip() == "labellint: error: training needs torch and torchvision: " \
                                  "pip install 'labellint-coco[train]'"
