"""labellint apply: review decisions applied back to the dataset, safely and only once."""

from __future__ import annotations

import json

import pytest

from labellint.coco import load
from labellint.fix import state
from tests.test_fix import STYLES, dataset, entries, run_cli


def decisions_for(path, *items, relpath="ann.json"):
    """A decisions file as the gallery writes it: the state of each annotation as it is now."""
    ds = load(path, relpath)
    rows = {int(i): r for r, i in enumerate(ds.annotations.id.tolist())}
    out = []
    for n, (ann_id, action, extra) in enumerate(items):
        st = state.entry_state(ds, "annotations", rows[ann_id]) if ann_id in rows else None
        out.append({"path": relpath, "fingerprint": f"fp{n}", "code": "LL501", "annotation_id": ann_id,
                    "state": st, "action": action, **extra})
    return {"format": "labellint-decisions", "version": 1, "created": "2026-11-26T10:00:00Z",
            "tool": {"name": "labellint", "version": "0.1.0"}, "report": "r", "decisions": out}


@pytest.fixture(params=["indent2", "minified"])
def data(request, tmp_path):
    path = tmp_path / "ann.json"
    path.write_text(STYLES[request.param](dataset()), encoding="utf-8")
    return path


def write(tmp_path, doc):
    p = tmp_path / "decisions.json"
    p.write_text(json.dumps(doc), encoding="utf-8")
    return p


def test_apply_relabels_deletes_and_moves_then_changes_nothing_twice(tmp_path, data):
    original = data.read_bytes()
    dec = write(tmp_path, decisions_for(data, (2, "relabel", {"category_id": 2}), (4, "delete", {}),
                                        (5, "set_bbox", {"bbox": [21, 22, 6, 4]}), (None, "keep", {})))
    proc = run_cli("apply", dec, data, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "relabelled annotation 2: 'crème' (1) -> 'dog' (2)" in proc.stdout
    assert "deleted annotation 4" in proc.stdout and "moved annotation 5" in proc.stdout
    assert "changed 3 annotations" in proc.stdout and "1 kept as they are" in proc.stdout
    once = data.read_bytes()
    doc = json.loads(once)
    anns = {a["id"]: a for a in doc["annotations"]}
    assert sorted(anns) == [1, 2, 3, 5]
    assert anns[2]["category_id"] == 2 and anns[5]["bbox"] == [21, 22, 6, 4] and anns[5]["area"] == 24
    # untouched entries are byte for byte the same
    before, after = entries(original, "annotations"), entries(once, "annotations")
    assert before[0] == after[0] and before[2] == after[2]
    proc = run_cli("apply", dec, data, cwd=tmp_path)
    assert proc.returncode == 0 and "nothing to change" in proc.stdout and "3 already applied" in proc.stdout
    assert data.read_bytes() == once


def test_apply_refuses_when_the_annotation_changed_since_the_report(tmp_path, data):
    dec = write(tmp_path, decisions_for(data, (2, "relabel", {"category_id": 2}), (4, "delete", {})))
    doc = json.loads(data.read_bytes())
    doc["annotations"][1]["bbox"] = [9, 9, 9, 9]  # someone edited annotation 2 after the review
    data.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    edited = data.read_bytes()
    proc = run_cli("apply", dec, data, cwd=tmp_path)
    assert proc.returncode == 2
    assert "annotation 2 changed since the report was made" in proc.stderr and "nothing was written" in proc.stderr
    assert data.read_bytes() == edited
    proc = run_cli("apply", dec, data, "--force", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    anns = {a["id"]: a for a in json.loads(data.read_bytes())["annotations"]}
    assert anns[2]["category_id"] == 2 and 4 not in anns


def test_apply_to_another_output_leaves_the_input(tmp_path, data):
    original = data.read_bytes()
    dec = write(tmp_path, decisions_for(data, (4, "delete", {})))
    out = tmp_path / "out.json"
    proc = run_cli("apply", dec, data, "-o", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert data.read_bytes() == original
    assert [a["id"] for a in json.loads(out.read_bytes())["annotations"]] == [1, 2, 3, 5]


def test_dry_run_writes_nothing(tmp_path, data):
    original = data.read_bytes()
    dec = write(tmp_path, decisions_for(data, (4, "delete", {})))
    proc = run_cli("apply", dec, data, "--dry-run", cwd=tmp_path)
    assert proc.returncode == 0 and "would change 1 annotation" in proc.stdout
    assert data.read_bytes() == original


def test_unknown_class_is_a_conflict(tmp_path, data):
    dec = write(tmp_path, decisions_for(data, (2, "relabel", {"category_id": 99})))
    proc = run_cli("apply", dec, data, cwd=tmp_path)
    assert proc.returncode == 2 and "category id 99 is not in the file" in proc.stderr


def test_keep_decisions_go_to_a_baseline(tmp_path, data):
    doc = decisions_for(data, (None, "keep", {}))
    doc["decisions"][0]["code"] = "LL016"
    dec = write(tmp_path, doc)
    baseline = tmp_path / "baseline.json"
    proc = run_cli("apply", dec, data, "--baseline", baseline, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [e["fingerprint"] for e in json.loads(baseline.read_text())["findings"]] == ["fp0"]
    run_cli("apply", dec, data, "--baseline", baseline, cwd=tmp_path)
    assert len(json.loads(baseline.read_text())["findings"]) == 1


@pytest.mark.parametrize("content, message", [
    ('{"format": "labellint-decisions", "version": 1, "decisions": [\n  {"action": "relabel",}\n]}',
     "decisions.json:2:24: decisions file is not valid JSON"),
    ('{"version": 1}', "not a labellint decisions file"),
    ('{"format": "labellint-decisions", "version": 2, "decisions": []}', "version 2 is not supported"),
    ('{"format": "labellint-decisions", "version": 1, "decisions": [{"action": "rename", "annotation_id": 1}]}',
     "decisions[0]: action 'rename' is not one of relabel, delete, set_bbox, keep"),
    ('{"format": "labellint-decisions", "version": 1, "decisions": [{"action": "set_bbox", "annotation_id": 1, '
     '"bbox": [1, 2, -3, 4]}]}', "set_bbox needs bbox"),
    ('{"format": "labellint-decisions", "version": 1, "decisions": [{"action": "relabel", "annotation_id": "1", '
     '"category_id": 2}]}', "relabel needs an integer annotation_id"),
])
def test_bad_decisions_files_are_one_line_errors(tmp_path, data, content, message):
    dec = tmp_path / "decisions.json"
    dec.write_text(content, encoding="utf-8")
    original = data.read_bytes()
    proc = run_cli("apply", dec, data, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert data.read_bytes() == original


def test_decisions_naming_several_files_apply_only_to_the_given_one(tmp_path, data):
    doc = decisions_for(data, (4, "delete", {}), (2, "delete", {}))
    doc["decisions"][1]["path"] = "other.json"
    dec = write(tmp_path, doc)
    proc = run_cli("apply", dec, data, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [a["id"] for a in json.loads(data.read_bytes())["annotations"]] == [1, 2, 3, 5]


def test_an_unwritable_output_is_one_line_and_changes_nothing(tmp_path, data):
    original = data.read_bytes()
    dec = write(tmp_path, decisions_for(data, (4, "delete", {})))
    proc = run_cli("apply", dec, data, "-o", tmp_path / "missing" / "out.json", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().endswith("cannot write here: No such file or directory")
    assert len(proc.stderr.strip().splitlines()) == 1 and data.read_bytes() == original
