"""`labellint gate`: paired bootstrap comparison of two evaluations; real retraining decides the verdict.

The first tests use the pycocotools demo predictions (a baseline and a candidate made from it).
The rest use two real torchvision runs trained once per session (test_gate_fixtures.shared_runs):
the clean shapes dataset, and the same images whose circles and squares carry each other's class.
"""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from labellint.cli import cli
from labellint.gate import compare
from test_gate_fixtures import RECIPE, TINY, invoke, shared_runs, tiny_dataset


def run(args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def demo(shared, tmp_path):
    folder = shared / "data" / "cocoeval" / "cocoapi_val2014_100"
    gt = folder / "instances_val2014_100.json"
    base = folder / "instances_val2014_fakebbox100_results.json"
    dets = json.loads(base.read_text())
    # the candidate lost most of its person detections: person AP (and so mAP) drops
    worse = [d for k, d in enumerate(dets) if not (d["category_id"] == 1 and k % 4 != 0)]
    cand = tmp_path / "worse.json"
    cand.write_text(json.dumps(worse))
    return {"gt": gt, "base": base, "worse": cand}


def test_identical_predictions_pass_with_a_zero_interval(demo):
    code, out, err = run(["gate", "--gt", demo["gt"], "--baseline", demo["base"], "--candidate", demo["base"],
                          "--classes", "person,dog", "--bootstrap", "200", "-f", "json"])
    assert code == 0, err
    report = json.loads(out)
    assert report["verdict"] == "pass" and report["images"] == 100
    for row in report["rows"]:
        assert row["delta"] == 0 and row["ci_lower"] == 0 and row["ci_upper"] == 0 and row["verdict"] == "pass"
    assert [r["scope"] for r in report["rows"]] == ["overall", "person", "dog"]
    assert report["overall"]["AP"]["baseline"] == pytest.approx(0.5045806987249628, abs=1e-12)


def test_a_class_that_lost_its_detections_fails_overall_and_for_that_class(demo):
    code, out, err = run(["gate", "--gt", demo["gt"], "--baseline", demo["base"], "--candidate", demo["worse"],
                          "--classes", "person,cat", "--bootstrap", "300", "-f", "json"])
    assert code == 1, err
    report = json.loads(out)
    rows = {r["scope"]: r for r in report["rows"]}
    person = rows["person"]
    assert person["delta"] < -0.2 and person["ci_upper"] < -0.01 and person["verdict"] == "fail"
    assert person["ci_lower"] <= person["delta"] <= person["ci_upper"]
    assert rows["cat"]["delta"] == 0 and rows["cat"]["verdict"] == "pass"
    # the overall drop is the person drop spread over the classes (mAP is their mean)
    overall = rows["overall"]
    with_gt = [c for c in report["per_class"] if c["baseline"] >= 0]
    assert overall["delta"] == pytest.approx(person["delta"] / len(with_gt), abs=1e-9)
    assert report["per_class"][0]["name"] == "person"


def test_the_allowed_drop_and_no_bootstrap(demo):
    # a generous allowance passes the same drop
    code, out, _ = run(["gate", "--gt", demo["gt"], "--baseline", demo["base"], "--candidate", demo["worse"],
                        "--classes", "person", "--max-drop", "0.5", "--bootstrap", "100", "-f", "json"])
    assert code == 0 and json.loads(out)["verdict"] == "pass"
    # without bootstrap the point estimate decides
    code, out, _ = run(["gate", "--gt", demo["gt"], "--baseline", demo["base"], "--candidate", demo["worse"],
                        "--classes", "person", "--bootstrap", "0", "-f", "json"])
    report = json.loads(out)
    assert code == 1 and report["rows"][1]["ci_upper"] is None and report["rows"][1]["verdict"] == "fail"


def test_markdown_and_text_reports(demo, tmp_path):
    md = tmp_path / "gate.md"
    code, out, _ = run(["gate", "--gt", demo["gt"], "--baseline", demo["base"], "--candidate", demo["worse"],
                        "--classes", "person", "--bootstrap", "100", "-f", "markdown", "-o", md])
    assert code == 1
    text = md.read_text()
    assert text.startswith("### :x: labellint gate: fail")
    assert "| `person` |" in text and "**FAIL**" in text and "<details>" in text
    assert "with confidence:** `person`" in text
    code, out, _ = run(["gate", "--gt", demo["gt"], "--baseline", demo["base"], "--candidate", demo["base"],
                        "--bootstrap", "50"])
    assert code == 0 and "gate: pass" in out and "overall" in out and "AR100" in out


def test_gate_usage_errors(demo):
    code, _, err = run(["gate", "--gt", demo["gt"], "--baseline", demo["base"], "--candidate", demo["base"],
                        "--classes", "persn"])
    assert code == 2 and "no class 'persn'" in err and "did you mean 'person'" in err
    code, _, err = run(["gate", "--gt", demo["gt"], "--baseline", demo["base"]])
    assert code == 2 and "--candidate" in err
    code, _, err = run(["gate", "--baseline", demo["base"], "--candidate", demo["base"]])
    assert code == 2 and "--gt" in err
    code, _, err = run(["gate", "--gt", demo["gt"], "--retrain", demo["gt"], demo["gt"]])
    assert code == 2 and "--images" in err


# -- real runs ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    return shared_runs(tmp_path_factory)


def test_flipped_training_labels_fail_the_gate(runs):
    """circles and squares trained under each other's name: their AP collapses, triangles hold."""
    assert runs["exit_code"] == 1, runs["stderr"]
    report = runs["report"]
    rows = {r["scope"]: r for r in report["rows"]}
    assert report["verdict"] == "fail"
    overall = rows["overall"]
    assert overall["baseline"] - overall["candidate"] > 0.05
    assert overall["ci_upper"] < -report["max_drop"] and overall["verdict"] == "fail"
    for name in ("circle", "square"):
        assert rows[name]["verdict"] == "fail" and rows[name]["candidate"] < rows[name]["baseline"] / 2
    assert rows["triangle"]["verdict"] != "fail"
    # both runs were trained (no cache yet) with the same recipe and seed
    assert runs["stderr"].count("training on") == 2
    base_cfg = json.loads((runs["baseline"] / "config.json").read_text())
    cand_cfg = json.loads((runs["candidate"] / "config.json").read_text())
    assert base_cfg["recipe_hash"] == cand_cfg["recipe_hash"] and base_cfg["seed"] == cand_cfg["seed"] == 0
    assert base_cfg["train"]["sha256"] != cand_cfg["train"]["sha256"]


def test_gate_passes_when_the_candidate_equals_the_baseline(runs):
    data = runs["data"]
    code, out, err = run(["gate", "--gt", data["val"], "--baseline", runs["baseline"], "--candidate",
                          runs["baseline"], "--classes", "all", "-f", "json"])
    assert code == 0, err
    report = json.loads(out)
    assert all(r["delta"] == 0 and r["verdict"] == "pass" for r in report["rows"])
    assert report["overall"]["AP"]["baseline"] > 0.1


def test_retrain_reuses_the_cached_runs_by_content(runs):
    """Same bytes under another name: both runs come from the cache, nothing is trained, the gate passes."""
    data = runs["data"]
    result = invoke(["gate", "--retrain", data["train_copy"], data["train"], "--val", data["val"], "--images",
                     data["images"], "--cache-dir", runs["cache"], "-f", "json", *RECIPE])
    assert result.exit_code == 0, result.stderr
    assert "training on" not in result.stderr and result.stderr.count("cached run") == 2
    report = json.loads(result.stdout)
    assert report["baseline"] == report["candidate"] == str(runs["baseline"])
    assert report["rows"][0]["delta"] == 0


def test_retrain_trains_only_the_candidate_when_the_baseline_is_cached(tmp_path_factory, tmp_path):
    pytest.importorskip("torch", reason="training needs torch (pip install 'labellint-coco[train]')")
    data = tiny_dataset(tmp_path_factory)
    cache = tmp_path / "cache"
    args = ["--val", data["val"], "--images", data["images"], "--cache-dir", cache, "--bootstrap", "50", *TINY]
    first = invoke(["gate", "--retrain", data["train"], data["train_copy"], *args])
    assert first.stderr.count("training on") == 1 and first.stderr.count("cached run") == 1  # same content
    second = invoke(["gate", "--retrain", data["train"], data["flipped"], *args])
    assert "baseline: cached run" in second.stderr and "candidate: training on" in second.stderr
    assert len([p for p in (cache / "runs").iterdir() if not p.name.startswith(".")]) == 2
    # a changed recipe is another cache key
    third = invoke(["gate", "--retrain", data["train"], data["flipped"], *args, "--seed", "1"])
    assert third.stderr.count("training on") == 2, third.stderr


def test_gate_warns_when_runs_predicted_on_another_val_file(runs, tmp_path):
    data = runs["data"]
    other = tmp_path / "val.json"
    doc = json.loads(data["val"].read_text())
    doc["info"] = {"note": "same images, other bytes"}
    other.write_text(json.dumps(doc))
    copy = tmp_path / "run"
    shutil.copytree(runs["baseline"], copy)
    result = compare.gate(other, runs["baseline"], copy, n_bootstrap=0)
    assert any("another val file" in w for w in result.warnings)
