"""What the fuzzer found once the classes of issue 12 were closed: extreme but legal values
(1e308 boxes, 1e999 in a mask, 5000-digit numbers in a config), hundreds of crowd masks,
thousands of classes, errors before a run with a machine format asked for, and the places a
run's outcome could be hidden or faked (a baseline over a crashed rule, a gate cache in the data).
"""

from __future__ import annotations

import json
import subprocess
import warnings

import numpy as np
import pytest
from conftest import coco
from test_hostile_input import one_error, run, run_bounded

from labellint import config, fsutil, geometry, registry, run as run_mod
from labellint.coco import load_bytes
from labellint.config import ConfigError


# -- configuration files written by strangers --------------------------------------------------------

@pytest.mark.parametrize("text, where, says", [
    (b'[rules]\nselect = ["LL101"]\nname = "caf\xe9"\n', (3, 12), "not UTF-8"),
    (b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", (1, 1), "nested too deep"),
    (b"[rules.LL105]\n\ntolerance_px = " + b"7" * 5000 + b"\n", (3, 16), "number too long"),
])
def test_a_hostile_config_is_a_located_config_error(tmp_path, text, where, says):
    path = tmp_path / "labellint.toml"
    path.write_bytes(text)
    config.find.cache_clear()
    with pytest.raises(ConfigError) as caught:
        config._read(path)
    assert (caught.value.line, caught.value.column) == where and says in caught.value.message
    (tmp_path / "ann.json").write_text(json.dumps(coco()))
    code, out, err = run("check", "ann.json", cwd=tmp_path)
    config.find.cache_clear()
    assert code == 2 and one_error(err).startswith(f"labellint: error: labellint.toml:{where[0]}:{where[1]}: ")


def test_a_pyproject_whose_tool_is_not_a_table_has_no_labellint_section(tmp_path):
    (tmp_path / "pyproject.toml").write_text('tool = "x"\n')
    assert config._read(tmp_path / "pyproject.toml")[0] is None


# -- numbers at the edge of a float ---------------------------------------------------------------

OUT_OF_RANGE = "'segmentation' has a number out of range (read as infinity)"


@pytest.mark.parametrize("seg, code, says", [
    ("-1e999", "LL106", OUT_OF_RANGE),
    ("[[1e999, 0, 4, 0, 4, 4]]", "LL106", OUT_OF_RANGE),
    ('{"size": [2, 2], "counts": [1e999]}', "LL108", "RLE 'counts' must be a list of integers"),
])
def test_a_mask_number_beyond_a_float_is_a_finding(seg, code, says):
    """Strict JSON holds 1e999; msgspec refuses it, Python reads infinity. The typed path keeps
    segmentations as raw text: decoding one is where it first meets the number."""
    doc = json.dumps(coco()).replace('"area": 100,', f'"area": 100, "segmentation": {seg},', 1)
    ds = load_bytes(doc.encode(), "ann.json")
    assert geometry.segmentations(ds).malformed == ({0: OUT_OF_RANGE} if code == "LL106" else {})
    result = _lint(doc, ["LL106", "LL107", "LL108", "LL109"])
    assert [(f.code, f.annotation_id) for f in result.findings] == [(code, 1)]
    assert result.findings[0].message.startswith(says)


def _lint(text: str, select: list[str], tmp=None) -> run_mod.Result:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ann.json"
        path.write_text(text)
        return run_mod.check([path], run_mod.Options(select=select))


def test_boxes_of_1e308_give_no_numpy_warnings(tmp_path):
    """w * h of 1e308 boxes is inf, their ratio of 5e-324 sides overflows: IEEE results, which the
    rules compare, never a RuntimeWarning on the user's terminal."""
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [-1e308, -1e308, 1e308, 1e308], "area": 1, "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1e308, 5e-324], "area": 1, "iscrowd": 0},
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [1, 1, 1e308, 1e308], "area": 1, "iscrowd": 0}]
    (tmp_path / "ann.json").write_text(json.dumps(coco(annotations=anns)))
    proc = run_bounded("check", "ann.json", cwd=tmp_path)
    assert proc.returncode == 1 and "Warning" not in proc.stderr and "failed on this file" not in proc.stdout
    assert "LL104" in proc.stdout  # the 1e308 x 5e-324 box is still an extreme aspect ratio
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = run_mod.check([tmp_path / "ann.json"], run_mod.Options())
    assert not [f for f in result.findings if f.rule_failed]


def test_iou_of_boxes_whose_areas_overflow_is_zero_not_nan():
    from labellint.gate import objectlab

    big = np.array([[0.0, 0.0, 1e308, 1e308]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        iou = objectlab.iou_matrix(np.vstack([big, [[0, 0, 2, 2]]]), np.vstack([big, [[0, 0, 2, 2]]]))
    assert np.isfinite(iou).all() and iou[1, 1] == 1.0 and iou[0, 1] == 0.0


# -- many masks, many classes ----------------------------------------------------------------------

def test_three_hundred_crowd_masks_are_measured_every_one():
    """pycocotools' area() builds a uint8 array of len(masks) on the way: from 256 masks on,
    numpy 2 raises OverflowError, which cost the whole of LL107 on the file."""
    images = [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 3}]
    anns = [{"id": k + 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 4, 3], "area": 2 + k % 5, "iscrowd": 1,
             "segmentation": {"size": [3, 4], "counts": [3, 2 + k % 5, 7 - k % 5]}} for k in range(300)]
    ds = load_bytes(json.dumps(coco(images=images, annotations=anns)).encode(), "ann.json")
    summary = geometry.rles(ds)
    assert summary.problem == [None] * 300
    assert summary.area.tolist() == [2 + k % 5 for k in range(300)]
    result = _lint(json.dumps(coco(images=images, annotations=anns)), ["LL107", "LL108", "LL110"])
    assert not [f for f in result.findings if f.rule_failed]


def test_counts_of_long_strings_are_refused_before_numpy_pads_them():
    counts = ["x" * 100_000] + ["y"] * 20_000  # numpy would make 20,001 strings of 100,000 characters: 8 GB
    assert geometry._uncompressed_total(counts) == ("RLE 'counts' must be a list of integers or a compressed string", 0)
    assert geometry._uncompressed_total([1, 2**70]) == ("RLE 'counts' holds a run length above 4294967295 pixels", 0)
    assert geometry._uncompressed_total([2, 3, 4]) == (None, 9)


def test_thousands_of_unlabelled_classes_do_not_change_a_class_ap(monkeypatch):
    """The evaluator sees only the classes with labels: 3,000 more classes cost nothing and change
    no AP (before, its precision array grew by 12 KB a class: gigabytes for a flood of classes)."""
    from labellint.gate import objectlab, predictions

    images = [{"id": i, "file_name": f"{i}.jpg", "width": 100, "height": 100} for i in (1, 2, 3)]
    anns = [{"id": k + 1, "image_id": 1 + k % 3, "category_id": 1 + k % 2, "bbox": [10 * k, 5, 8, 8], "area": 64,
             "iscrowd": 0} for k in range(6)]
    cats = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    preds = [{"image_id": 1 + k % 3, "category_id": 1 + k % 2, "bbox": [10 * k + (k % 3), 5, 8, 8], "score": 0.5 + k / 20}
             for k in range(6)] + [{"image_id": 2, "category_id": 1, "bbox": [60, 60, 9, 9], "score": 0.9}]

    def ap(categories):
        ds = load_bytes(json.dumps(coco(images=images, annotations=anns, categories=categories)).encode(), "a.json")
        p = predictions.load_bytes(json.dumps(preds).encode(), "p.json")
        prepared = objectlab.prepare(ds, p, 0.1)
        return prepared.class_ap[:2]

    hotcoco = pytest.importorskip("hotcoco", reason="the evaluator the LL6xx rules use when installed")
    real, seen = hotcoco.COCO, []

    class Spy:
        @staticmethod
        def from_arrays(images, categories, *args, **kwargs):
            seen.append(len(categories))
            return real.from_arrays(images, categories, *args, **kwargs)

    monkeypatch.setattr(hotcoco, "COCO", Spy)
    few = ap(cats)
    many = ap(cats + [{"id": 100 + k, "name": f"c{k}"} for k in range(3000)])
    assert np.isfinite(few).all() and 0 < few.min() < 1
    assert many.tolist() == few.tolist()
    assert seen == [2, 2]  # the evaluator saw the two labelled classes, not 3,002


# -- errors before the run, with a machine format --------------------------------------------------

@pytest.mark.parametrize("fmt", ["json", "sarif"])
def test_an_error_before_the_run_is_still_one_document_on_stdout(tmp_path, fmt):
    (tmp_path / "ann.json").write_text(json.dumps(coco()))
    (tmp_path / "pred.json").write_text('[{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": NaN}]')
    code, out, err = run("check", "-f", fmt, "--predictions", "pred.json", "ann.json", cwd=tmp_path)
    assert code == 2 and one_error(err).startswith("labellint: error: pred.json:1:")
    doc = json.loads(out)
    if fmt == "json":
        assert doc["summary"]["exit_code"] == 2 and doc["errors"][0].startswith("pred.json:1:")
        assert doc["findings"] == []
    else:
        invocation = doc["runs"][0]["invocations"][0]
        assert invocation["executionSuccessful"] is False
        assert invocation["toolExecutionNotifications"][0]["message"]["text"].startswith("pred.json:1:")
    # a report file is never written for a run that did not start
    code, out, err = run("check", "-f", fmt, "-o", "report.out", "--predictions", "pred.json", "ann.json", cwd=tmp_path)
    assert code == 2 and not (tmp_path / "report.out").exists()


def test_apply_to_a_file_that_is_not_coco_is_a_one_line_error(tmp_path):
    (tmp_path / "d.json").write_text('{"format": "labellint-decisions", "version": 1, "decisions": []}')
    (tmp_path / "t.json").write_text("true")
    code, out, err = run("apply", "d.json", "t.json", cwd=tmp_path)
    assert code == 2 and "not a COCO annotation file" in one_error(err)
    assert (tmp_path / "t.json").read_text() == "true"


# -- what must not hide or fake a result ------------------------------------------------------------

def test_neither_a_baseline_nor_a_diff_base_hides_a_rule_that_failed(tmp_path, monkeypatch):
    from labellint import baseline as baseline_mod

    by_code = registry.by_code()

    def explode(ds, options):
        raise OverflowError("boom")

    real = by_code["LL107"]
    monkeypatch.setitem(by_code, "LL107", registry.Rule(real.code, real.name, real.severity, real.options, real.fix,
                                                        real.doc, explode))
    monkeypatch.setattr(registry, "by_code", lambda: by_code)
    data = tmp_path / "ann.json"
    data.write_text(json.dumps(coco()))
    result = run_mod.check([data], run_mod.Options(select=["LL107"]))
    crash = [f for f in result.findings if f.rule_failed]
    assert len(crash) == 1
    written = tmp_path / "baseline.json"
    assert baseline_mod.write(written, result.findings) == 0  # never accepted into a baseline
    entries = [{"fingerprint": crash[0].fingerprint, "code": "LL107", "path": crash[0].path}]  # written by hand
    kept, _ = baseline_mod.apply(result.findings, entries, {crash[0].path})
    assert kept == crash
    (tmp_path / "b.json").write_text(json.dumps({"version": 1, "tool": "labellint", "findings": entries}))
    again = run_mod.check([data], run_mod.Options(select=["LL107"], baseline=tmp_path / "b.json"))
    assert [f.fingerprint for f in again.findings] == [crash[0].fingerprint] and again.exit_code() == 1
    # --diff-base: the same crash at the base commit does not make it "old"
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "add", "ann.json"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
                   check=True)
    fsutil.repo_root.cache_clear()  # the folder became a repository within this process
    diffed = run_mod.check([data], run_mod.Options(select=["LL107"], diff_base="HEAD"))
    assert diffed.errors == []
    assert [(f.code, f.rule_failed) for f in diffed.findings] == [("LL107", True)] and diffed.hidden == 0


def test_the_gate_refuses_a_run_cache_inside_the_data(tmp_path, monkeypatch):
    """A pull request could commit `.labellint_cache/runs/<key>/` with any metrics it likes: a
    run cache inside an annotation file's repository or the images is refused before any training."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "images").mkdir()
    for name in ("base.json", "cand.json", "val.json"):
        (repo / name).write_text(json.dumps(coco()))
    code, out, err = run("gate", "--retrain", "base.json", "cand.json", "--val", "val.json", "--images", "images",
                         "--cache-dir", ".labellint_cache", cwd=repo)
    assert code == 2 and "the run cache" in one_error(err) and "inside" in err
    assert not (repo / ".labellint_cache").exists()
    monkeypatch.setenv("LABELLINT_CACHE_DIR", str(repo / "images" / "cache"))  # the default, pointed inside
    code, out, err = run("gate", "--retrain", "base.json", "cand.json", "--val", "val.json", "--images", "images",
                         cwd=repo)
    assert code == 2 and "inside" in one_error(err)
    from labellint.gate import retrain

    outside = tmp_path / "elsewhere"
    assert retrain.trusted_cache(outside, repo / "images", [repo / "base.json"]) == outside
    monkeypatch.setenv("LABELLINT_CACHE_DIR", str(outside))
    assert retrain.trusted_cache(None, repo / "images", [repo / "base.json"]) == outside


def test_training_masks_cut_polygons_to_the_image_and_skip_masks_of_another_size():
    """A polygon point at 1e9 would have pycocotools trace gigabytes (or crash); an RLE of another
    size would decode a mask of any size. Both become the box's mask or the polygon's cut."""
    from pathlib import Path

    from labellint.gate import train

    segs = [[[0, 0, 1e9, 0, 1e9, 1e9, 0, 1e9]],
            {"size": [100000, 100000], "counts": [10**10]},
            [[2, 2, 6, 2, 6, 6, 2, 6]]]
    sample = train.Sample(1, Path("x.jpg"), 8, 8, np.array([[0, 0, 8, 8], [1, 1, 3, 3], [2, 2, 6, 6]], np.float32),
                          np.array([1, 1, 1]), segs)
    masks = train._masks(sample, 8, 8)
    assert masks.shape == (3, 8, 8)
    assert masks[0].sum() == 64  # the polygon cut at the image covers it
    assert masks[1].sum() == 4 and masks[1, 1:3, 1:3].all()  # the box stands for a mask of another size
    assert 16 <= masks[2].sum() <= 25


def test_the_readme_lists_every_limit_with_its_variable_and_default():
    from conftest import REPO

    from labellint import limits

    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Security"):text.index("\n## ", text.index("## Security") + 1)]
    rows = {line.split("|")[1].strip(" `"): line for line in section.splitlines() if line.startswith("| `")}
    assert set(rows) == set(limits.LIMITS)
    for name, limit in limits.LIMITS.items():
        assert f"`{limit.env}`" in rows[name] and f"| {limit.default:,} |" in rows[name]
