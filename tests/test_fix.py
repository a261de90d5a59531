"""check --fix / --unsafe-fixes / --diff: what changes, and that nothing else does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import kill_before_rename
from labellint.coco import load_bytes
from labellint.config import FileSettings
from labellint.fix import jsonedit, runner
from tests.test_rules_catalogue import STRUCTURAL, example_options


def run_cli(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "labellint", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "NO_COLOR": "1", **(env or {})}, timeout=300)


def dataset() -> dict:
    """A small file with one problem per fixable kind and a lot that must stay as it is."""
    return {
        "info": {"description": "café crème", "version": "1.0"},
        "images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
                   {"id": 2, "file_name": "b.jpg", "width": 64, "height": 48}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [50, 5, 20, 10], "area": 200, "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [1.5, 5.25, 20, 10], "area": 200.0, "iscrowd": 0},
            {"id": 3, "image_id": 2, "category_id": 2, "bbox": [3, 3, 10, 10], "iscrowd": 0},
            {"id": 4, "image_id": 7, "category_id": 1, "bbox": [3, 3, 10, 10], "area": 100, "iscrowd": 0},
            {"id": 5, "image_id": 2, "category_id": 1, "bbox": [20, 20, 5, 5], "area": 25, "iscrowd": 0},
        ],
        "categories": [{"id": 1, "name": "crème"}, {"id": 2, "name": "dog"}, {"id": 3, "name": "unused"}],
    }


STYLES = {
    "minified": lambda d: json.dumps(d, separators=(",", ":"), ensure_ascii=False),
    "spaced": lambda d: json.dumps(d, ensure_ascii=False),
    "indent2": lambda d: json.dumps(d, indent=2, ensure_ascii=False) + "\n",
    "indent4-crlf": lambda d: json.dumps(d, indent=4, ensure_ascii=False).replace("\n", "\r\n") + "\r\n",
    "ascii-escaped": lambda d: json.dumps(d, indent=1),
}


def entries(data: bytes, section: str) -> list[bytes]:
    ds = load_bytes(data, "x.json")
    return [bytes(data[int(s):jsonedit.value_end(data, int(s))]) for s in ds.offsets()[section]]


@pytest.mark.parametrize("style", STYLES)
def test_fix_changes_only_the_fixed_entries(tmp_path, style):
    text = STYLES[style](dataset())
    # a hand-written number format json.dumps would never produce must survive untouched
    text = text.replace("5.25", "5.250")
    path = tmp_path / "ann.json"
    path.write_bytes(text.encode())
    original = path.read_bytes()
    proc = run_cli("check", path, "--fix", "--select", "LL105,LL113", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fixed = path.read_bytes()
    assert "fixed 2 problems in 1 file (LL105 x1, LL113 x1)" in proc.stderr
    before, after = entries(original, "annotations"), entries(fixed, "annotations")
    assert [i for i, (a, b) in enumerate(zip(before, after)) if a != b] == [0, 2]
    # put the old entries back: the whole file is the original, byte for byte
    restored = fixed.replace(after[0], before[0], 1).replace(after[2], before[2], 1)
    assert restored == original
    first, third = json.loads(after[0]), json.loads(after[2])
    assert first["bbox"] == [50, 5, 14, 10] and first["area"] == 140  # clipped; area followed (it was w*h)
    assert isinstance(first["bbox"][2], int)  # integers stay integers
    assert third["area"] == 100 and list(third) == ["id", "image_id", "category_id", "bbox", "iscrowd", "area"]
    assert (b"\n" in after[2]) == (b"\n" in before[2])  # a one-line entry stays one line
    if style == "indent4-crlf":
        assert b"\r\n" in after[0] and b"\n" not in after[0].replace(b"\r\n", b"")
    assert b"5.250" in fixed


def test_fix_on_a_minified_file_stays_one_line(tmp_path):
    path = tmp_path / "ann.json"
    path.write_text(STYLES["minified"](dataset()), encoding="utf-8")
    proc = run_cli("check", path, "--fix", "--unsafe-fixes", cwd=tmp_path)
    fixed = path.read_bytes()
    assert b"\n" not in fixed and b": " not in fixed and b", " not in fixed
    doc = json.loads(fixed)
    assert [a["id"] for a in doc["annotations"]] == [1, 2, 3, 5]  # the box on an unknown image is gone
    assert [c["name"] for c in doc["categories"]] == ["crème", "dog"]  # and the unused category
    assert "LL011 x1" in proc.stderr and "LL016 x1" in proc.stderr


def test_safe_fix_leaves_unsafe_ones(tmp_path):
    path = tmp_path / "ann.json"
    path.write_text(STYLES["indent2"](dataset()), encoding="utf-8")
    proc = run_cli("check", path, "--fix", cwd=tmp_path)
    doc = json.loads(path.read_bytes())
    assert len(doc["annotations"]) == 5 and len(doc["categories"]) == 3
    assert "2 of them fixable with --unsafe-fixes" in proc.stderr
    assert proc.returncode == 1  # the unknown image is still an error


def test_diff_writes_nothing_and_shows_the_change(tmp_path):
    for style in ("indent2", "minified"):
        path = tmp_path / f"{style}.json"
        path.write_text(STYLES[style](dataset()), encoding="utf-8")
        original = path.read_bytes()
        proc = run_cli("check", path, "--diff", "--select", "LL105", cwd=tmp_path)
        assert proc.returncode == 1, proc.stderr
        assert path.read_bytes() == original
        assert proc.stdout.startswith(f"--- a/{style}.json\n+++ b/{style}.json\n")
        removed = [line for line in proc.stdout.splitlines() if line.startswith("-") and not line.startswith("---")]
        added = [line for line in proc.stdout.splitlines() if line.startswith("+") and not line.startswith("+++")]
        assert "20" in "".join(removed) and "4" in "".join(added)
        assert "would fix 1 problem in 1 file (LL105 x1)" in proc.stderr
    clean = tmp_path / "clean.json"
    doc = dataset()
    doc["annotations"] = doc["annotations"][1:2]
    clean.write_text(json.dumps(doc), encoding="utf-8")
    proc = run_cli("check", clean, "--diff", "--select", "LL105", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout == "" and "nothing would change" in proc.stderr


def test_a_process_killed_before_the_rename_leaves_the_original(tmp_path):
    """SIGKILL between the temporary file's fsync and the rename (the real process, killed)."""
    path = tmp_path / "ann.json"
    path.write_text(STYLES["indent2"](dataset()), encoding="utf-8")
    original = path.read_bytes()
    proc = run_cli("check", path, "--fix", cwd=tmp_path, env=kill_before_rename(tmp_path, "ann.json"))
    assert proc.returncode == -signal.SIGKILL
    assert path.read_bytes() == original
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".ann.json.")]
    assert leftovers, "the temporary file should have been written before the kill"
    assert json.loads((tmp_path / leftovers[0]).read_bytes())["annotations"][0]["bbox"] == [50, 5, 14, 10]


def test_fix_keeps_the_file_mode(tmp_path):
    path = tmp_path / "ann.json"
    path.write_text(STYLES["indent2"](dataset()), encoding="utf-8")
    os.chmod(path, 0o640)
    run_cli("check", path, "--fix", cwd=tmp_path)
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o640)


def test_baseline_findings_are_not_fixed(tmp_path):
    path = tmp_path / "ann.json"
    path.write_text(STYLES["indent2"](dataset()), encoding="utf-8")
    baseline = tmp_path / "baseline.json"
    assert run_cli("baseline", "create", path, "--select", "LL105", "-o", baseline, cwd=tmp_path).returncode == 0
    run_cli("check", path, "--fix", "--select", "LL105", "--baseline", baseline, cwd=tmp_path)
    assert json.loads(path.read_bytes())["annotations"][0]["bbox"] == [50, 5, 20, 10]


def test_id_fixes_never_collide(tmp_path):
    doc = dataset()
    doc["annotations"][1]["id"] = 0
    doc["annotations"][2]["id"] = 0
    doc["annotations"][4]["id"] = 1  # duplicates annotation 1's id
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    run_cli("check", path, "--fix", "--select", "LL010,LL014", cwd=tmp_path)
    ids = [a["id"] for a in json.loads(path.read_bytes())["annotations"]]
    assert len(set(ids)) == len(ids) and 0 not in ids


# -- every rule's fix, on its own bad example -----------------------------------------------------

FIXABLE = [r for r in STRUCTURAL if r.fix != "none"]


def _lint(rule, data: bytes):
    from labellint.engine import lint

    settings = FileSettings(rules=[rule], options={rule.code: {**rule.options, **example_options(rule)}},
                            severity={rule.code: rule.severity})
    return settings, lint(load_bytes(data, "example.json"), settings)[0]


@pytest.mark.parametrize("rule", FIXABLE, ids=lambda r: r.code)
def test_a_fixable_rules_fix_cures_its_bad_example(rule):
    for snippet in rule.examples()["bad"]:
        settings, found = _lint(rule, snippet.encode())
        fixable = [f for f in found if f.fix is not None]
        assert fixable, f"{rule.code}: FIX = {rule.fix!r} but its bad example offers no fix"
        assert all(f.fix.safety in ("safe", "unsafe") for f in fixable)
        if rule.fix == "safe":  # a rule's FIX rates the fix of its typical finding, which its example shows
            assert all(f.fix.safety == "safe" for f in fixable)
        ds, remaining, _, record = runner.fix_dataset(load_bytes(snippet.encode(), "example.json"), settings, {},
                                                      unsafe=True)
        assert record.changed and record.applied
        json.loads(record.fixed)
        cured = {f.fingerprint for f in fixable} - {f.fingerprint for f in remaining}
        assert cured, f"{rule.code}: applying its fixes did not cure any of its findings"


@pytest.mark.parametrize("rule", [r for r in STRUCTURAL if r.fix == "none"], ids=lambda r: r.code)
def test_a_rule_without_fix_offers_none(rule):
    for snippet in rule.examples()["bad"]:
        _, found = _lint(rule, snippet.encode())
        assert not [f for f in found if f.fix is not None]


@pytest.mark.parametrize("before, after, expected", [
    ([b"a", b"b", b"c"], [b"a", b"B", b"c"], [(1, [b"b"], [b"B"])]),
    ([b"a", b"b", b"c"], [b"a", b"c"], [(1, [b"b"], [])]),
    ([b"a", b"b", b"c", b"d"], [b"a"], [(1, [b"b", b"c", b"d"], [])]),
    ([b"a", b"b", b"c"], [b"B", b"c"], [(0, [b"a"], [b"B"]), (1, [b"b"], [])]),
    ([b"a", b"b"], [], [(0, [b"a", b"b"], [])]),
])
def test_entry_changes_walk(before, after, expected):
    assert list(runner._changes(before, after)) == expected


def test_diff_of_a_minified_file_with_deletions(tmp_path):
    path = tmp_path / "ann.json"
    path.write_text(STYLES["minified"](dataset()), encoding="utf-8")
    proc = run_cli("check", path, "--diff", "--unsafe-fixes", "--select", "LL011,LL016", cwd=tmp_path)
    assert proc.returncode == 1
    hunks = [line for line in proc.stdout.splitlines() if line.startswith("@@")]
    assert hunks == ["@@ /annotations/3 @@", "@@ /categories/2 @@"]
    assert '"image_id":7' in proc.stdout and '"name":"unused"' in proc.stdout


def test_entry_changes_walk_an_edit_before_a_deletion():
    before = [b"a", b"b", b"c", b"d"]
    after = [b"A", b"b", b"d"]  # a edited, c deleted: one edit and one deletion, not a cascade
    assert list(runner._changes(before, after)) == [(0, [b"a"], [b"A"]), (2, [b"c"], [])]


def test_a_clip_that_keeps_less_than_half_is_unsafe(tmp_path):
    """A box mostly outside its image means a wrong size or scale: clipping it is not a safe fix."""
    doc = dataset()
    doc["annotations"][0]["bbox"] = [60, 5, 20, 10]  # 4 of 20 px wide inside
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    run_cli("check", path, "--fix", "--select", "LL105", cwd=tmp_path)
    assert json.loads(path.read_bytes())["annotations"][0]["bbox"] == [60, 5, 20, 10]
    proc = run_cli("check", path, "--fix", "--unsafe-fixes", "--select", "LL105", cwd=tmp_path)
    assert json.loads(path.read_bytes())["annotations"][0]["bbox"] == [60, 5, 4, 10], proc.stderr


def test_polygon_clip_is_an_intersection(tmp_path):
    doc = dataset()
    doc["annotations"] = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [40, 10, 30, 20], "area": 600,
                           "iscrowd": 0, "segmentation": [[40, 10, 70, 10, 70, 30, 40, 30]]}]
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    run_cli("check", path, "--fix", "--select", "LL107", cwd=tmp_path)
    ann = json.loads(path.read_bytes())["annotations"][0]
    xs, ys = ann["segmentation"][0][0::2], ann["segmentation"][0][1::2]
    assert max(xs) == 64 and min(xs) == 40 and sorted(set(ys)) == [10, 30]
    assert ann["area"] == 24 * 20  # pycocotools' rasterised area of the clipped square
