"""labellint apply: review decisions applied back to the dataset, safely and only once."""

from __future__ import annotations

import json
import re

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
     "decisions[0]: action 'rename' is not one of relabel, delete, set_bbox, set_id, keep"),
    ('{"format": "labellint-decisions", "version": 1, "decisions": [{"action": "set_id", "annotation_id": 1, '
     '"new_id": 0}]}', "set_id needs a positive integer new_id"),
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


# -- fresh ids (LL010, LL014): accepted in the gallery, applied here -------------------------------

def id_problems() -> dict:
    """Id 0 (LL014), id 7 twice (LL010, its second entry also a copy of nothing), a relabel wanted
    on the first id-7 entry: three decisions, two of them about entries that share an id."""
    doc = dataset()
    anns = doc["annotations"]
    anns[0]["id"] = 0
    anns[2]["id"] = 7
    anns[4]["id"] = 7
    del anns[3]  # no unknown image: only the id findings
    return doc


def gallery_decisions(folder, relpath="ann.json"):
    """The decisions the page downloads when every card's Accept is clicked (as gallery.js builds
    them: the card's annotation id and state, the accept action and its value)."""
    done = run_cli("check", relpath, "-f", "html", "-o", "review.html", "--exit-zero", "--no-cache",
                   "--select", "LL010,LL014", cwd=folder)
    assert done.returncode == 0, done.stderr
    text = (folder / "review.html").read_text(encoding="utf-8")
    blob = json.loads(re.search(r'<script type="application/json" id="labellint-data">(.*?)</script>', text, re.S)[1])
    out = []
    for f in blob["findings"]:
        assert f["accept"] is not None, f  # a fresh id is something the page can decide
        d = {"path": relpath, "fingerprint": f["fp"], "code": f["code"], "annotation_id": f["aid"],
             "state": f["state"], "action": f["accept"]["action"]}
        d.update({k: f["accept"][k] for k in ("new_id", "category_id", "bbox") if k in f["accept"]})
        out.append(d)
    return {"format": "labellint-decisions", "version": 1, "created": "2026-11-26T10:00:00Z",
            "tool": {"name": "labellint", "version": "0.1.0"}, "report": blob["report"], "decisions": out}


def test_accepted_id_fixes_apply_like_check_fix_and_only_once(tmp_path, data):
    data.write_text(json.dumps(id_problems(), indent=2), encoding="utf-8")
    fixed = tmp_path / "fixed.json"
    fixed.write_bytes(data.read_bytes())
    doc = gallery_decisions(tmp_path)
    assert sorted((d["code"], d["action"], d["annotation_id"]) for d in doc["decisions"]) == [
        ("LL010", "set_id", 7), ("LL014", "set_id", 0)]
    new = {d["code"]: d["new_id"] for d in doc["decisions"]}
    assert sorted(new.values()) == [8, 9]  # one sequence for both rules: no new duplicate
    doc["decisions"].append(decisions_for(data, (2, "relabel", {"category_id": 2}))["decisions"][0])
    dec = write(tmp_path, doc)
    proc = run_cli("apply", dec, data, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"renumbered annotation 0: id 0 -> {new['LL014']}" in proc.stdout
    assert (f"renumbered annotation 7 (one of 2 annotations with that id, /annotations/3): id 7 -> {new['LL010']}"
            in proc.stdout)
    once = json.loads(data.read_bytes())
    assert [a["id"] for a in once["annotations"]] == [new["LL014"], 2, 7, new["LL010"]]
    assert once["annotations"][1]["category_id"] == 2
    # the same ids as `check --fix` gives
    assert run_cli("check", fixed.name, "--fix", "--select", "LL010,LL014", "--no-cache", cwd=tmp_path).returncode == 0
    assert [a["id"] for a in json.loads(fixed.read_bytes())["annotations"]] == [a["id"] for a in once["annotations"]]
    again = run_cli("apply", dec, data, cwd=tmp_path)
    assert again.returncode == 0 and "nothing to change" in again.stdout and "3 already applied" in again.stdout
    assert json.loads(data.read_bytes()) == once
    assert run_cli("check", "ann.json", "--select", "LL010,LL014", "--no-cache", cwd=tmp_path).returncode == 0


def test_a_new_id_taken_since_the_report_is_a_conflict(tmp_path, data):
    data.write_text(json.dumps(id_problems(), indent=2), encoding="utf-8")
    dec = write(tmp_path, gallery_decisions(tmp_path))
    doc = json.loads(data.read_bytes())
    doc["annotations"].append({"id": 8, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "area": 4,
                               "iscrowd": 0})  # someone added a box with the id the review chose
    data.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    edited = data.read_bytes()
    for extra in ((), ("--force",)):
        proc = run_cli("apply", dec, data, *extra, cwd=tmp_path)
        assert proc.returncode == 2 and "the new id 8 is taken by /annotations/4" in proc.stderr
        assert data.read_bytes() == edited
