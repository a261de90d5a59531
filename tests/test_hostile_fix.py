"""Hostile input to --fix, --diff, ``labellint apply`` and the HTML gallery: no crash, hang, runaway
memory, lost data or lie about what was written. The CLI runs as a real process (memory and file
size bounded with resource limits where a test provokes them), the gallery in Debian's headless
Chromium (tests/test_gallery.py's fixtures)."""

from __future__ import annotations

import json
import os
import re
import resource
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pycocotools import mask as mask_utils

from conftest import REPO, kill_before_rename
from labellint.coco import load_bytes
from labellint.errors import LabellintError
from labellint.findings import delete, set_field
from labellint.fix import jsonedit, runner, state, values
from labellint.fsutil import atomic_write
from test_gallery import Gallery, blob_of, browser, photo  # noqa: F401  (browser: the fixture)

ENV = {"LABELLINT_NO_PROGRESS": "1", "NO_COLOR": "1", "PYTHONPATH": str(REPO)}


def cli(*args, cwd: Path, limits: dict | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """labellint as a real process; ``limits``: resource -> soft and hard limit set before it starts."""
    def bounded():
        for what, value in (limits or {}).items():
            resource.setrlimit(what, (value, value))

    return subprocess.run([sys.executable, "-m", "labellint", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **ENV, **(env or {})}, preexec_fn=bounded)


def run(*args, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """labellint in this process (the real command line, through click's runner): for the tests
    that provoke no crash and set no resource limit, so they take milliseconds, not a start-up."""
    from click.testing import CliRunner

    from labellint.cli import cli as command

    before = os.getcwd()
    os.chdir(cwd)
    try:
        done = CliRunner().invoke(command, [str(a) for a in args], env={**ENV, **(env or {})})
    finally:
        os.chdir(before)
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        raise done.exception
    return subprocess.CompletedProcess(args, done.exit_code, done.stdout, done.stderr)


def one_error(proc) -> str:
    """The one line a refused input ends with."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("labellint: error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def coco_doc(annotations, categories=({"id": 1, "name": "a"},), width=100, height=80) -> dict:
    return {"images": [{"id": 1, "file_name": "a.jpg", "width": width, "height": height}],
            "annotations": list(annotations), "categories": list(categories)}


def ann(i=1, bbox=(10, 10, 20, 20), **extra) -> dict:
    return {"id": i, "image_id": 1, "category_id": 1, "bbox": list(bbox), "iscrowd": 0, **extra}


# -- 1. polygons far outside the image: pycocotools never gets a raster or outline it cannot hold ------

def test_far_polygons_are_fixed_without_crashing(tmp_path):
    """A point at 1e9 crashed pycocotools (SIGSEGV) in the area fixes; -1e9 asked it for 23 GB.
    Memory is capped at 2 GB: the fixes must cost what the image does."""
    polys = {far: [10, top, far, top, far, far, 10, far] for far, top in ((1e9, 10), (-1e9, 10), (4e18, 20))}
    path = tmp_path / "far.json"
    path.write_text(json.dumps(coco_doc([ann(k + 1, (10 + 5 * k, 10, 20, 20), area=5, segmentation=[p])
                                         for k, p in enumerate(polys.values())]),
                               indent=1))
    original = path.read_bytes()
    for args in (("--diff", "--unsafe-fixes"), ("--fix", "--unsafe-fixes")):
        proc = cli("check", path.name, *args, cwd=tmp_path, limits={resource.RLIMIT_AS: 2 << 30})
        assert proc.returncode in (0, 1), (args, proc.returncode, proc.stderr[-2000:])
        if args[0] == "--diff":
            assert '"area": 6300' in proc.stdout and path.read_bytes() == original
    after = json.loads(path.read_bytes())["annotations"]
    assert [a["area"] for a in after] == [90 * 70, 10 * 10, 90 * 60]  # pycocotools' areas of the clipped shapes
    assert all(max(a["segmentation"][0]) <= 100 for a in after)


def test_raster_polygons_are_pycocotools_own_within_the_margin_and_bounded_beyond():
    inside = [[-20.5, 5, 130, 5, 130, 70.25, -20.5, 70.25], [10, 10, 30, 10, 20, 30]]
    assert values.raster_polygons(inside, 80, 100) == inside  # within one image size: passed as it is
    expected = mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(inside, 80, 100)))
    assert values.coco_area(inside, 80, 100) == float(expected)
    far = values.raster_polygons([[10, 10, 1e12, 10, 1e12, 1e12, 10, 1e12]], 80, 100)
    assert far and all(-100 <= x <= 200 for x in far[0][0::2]) and all(-80 <= y <= 160 for y in far[0][1::2])
    assert values.coco_area([[10, 10, 1e12, 10, 1e12, 1e12, 10, 1e12]], 80, 100) == 90 * 70
    assert values.raster_polygons([[1e12, 1e12, 2e12, 1e12, 2e12, 2e12]], 80, 100) == []  # nothing inside
    # the image itself beyond the pixel limit, or not a size at all: no mask is made
    assert values.raster_polygons(inside, 100_000, 100_000) is None
    assert values.coco_area(inside, float("nan"), 100) is None and values.coco_area(inside, 1e300, 1) is None


def test_a_long_outline_is_refused_past_its_limit(monkeypatch):
    """A zigzag of many points inside the image: its outline, not its extent, is what costs."""
    zigzag = [v for k in range(2000) for v in (k % 2 * 99, k * 0.04)]
    assert values.outline([zigzag]) > 100_000
    assert values.coco_area([zigzag], 80, 100) is not None
    monkeypatch.setenv("LABELLINT_MAX_POLYGON_OUTLINE", "100000")
    assert values.raster_polygons([zigzag], 80, 100) is None and values.coco_area([zigzag], 80, 100) is None


# -- 2. --diff of an indented file: linear ---------------------------------------------------------

def apply_unified(text: str, diff: str) -> str:
    """A unified diff applied to ``text`` (a strict reader: every context and removed line must match)."""
    lines, out, pos = text.splitlines(keepends=True), [], 0
    dl = diff.splitlines(keepends=True)
    assert dl[0].startswith("--- ") and dl[1].startswith("+++ ")
    k = 2
    while k < len(dl):
        m = re.match(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@\n", dl[k])
        assert m, dl[k]
        start = int(m[1]) - (0 if m[2] == "0" else 1)
        assert start >= pos
        out.extend(lines[pos:start])
        pos = start
        k += 1
        while k < len(dl) and not dl[k].startswith("@@"):
            line, body = dl[k], dl[k][1:]
            if k + 1 < len(dl) and dl[k + 1].startswith("\\ No newline"):
                body, k = body[:-1], k + 1
            if line[0] in " -":
                assert lines[pos] == body, (lines[pos], body)
                pos += 1
            if line[0] in " +":
                out.append(body)
            k += 1
    return "".join(out + lines[pos:])


def indented(n: int, style=lambda d: json.dumps(d, indent=2) + "\n") -> bytes:
    anns = [ann(k + 1, (1, 2, 3, 4), area=12, segmentation=[[1, 2, 4, 2, 4, 6, 1, 6, 2, 3, 3, 3]]) for k in range(n)]
    return style(coco_doc(anns, categories=[{"id": c, "name": f"c{c}"} for c in (1, 2, 3)])).encode("utf-8")


def test_diff_of_an_indented_file_is_linear():
    """difflib took 28 s on 3.3 MB and over 10 minutes on 27 MB (its lines repeat); entry by entry
    it is the time of a few passes over the file."""
    data = indented(3000)  # 1.2 MB
    ds = load_bytes(data, "x.json")
    fixed = jsonedit.apply_edits(ds, [set_field("annotations", k, "area", 11) for k in range(0, 3000, 10)])
    reference = time.perf_counter()
    json.loads(data)
    reference = time.perf_counter() - reference
    start = time.perf_counter()
    diff = runner.unified_diff(runner.FileFix("x.json", data, fixed))
    elapsed = time.perf_counter() - start
    assert elapsed < max(1.0, 40 * reference), (elapsed, reference)  # difflib: 7.5 s here, 1,200 x json.loads
    assert diff.count("\n-      \"area\": 12,") == 300 and diff.count("@@ -") == 300
    assert apply_unified(data.decode(), diff) == fixed.decode()


STYLES = {"indent2": lambda d: json.dumps(d, indent=2) + "\n",
          "crlf-no-final-newline": lambda d: json.dumps(d, indent=4).replace("\n", "\r\n"),
          "bom": lambda d: "\ufeff" + json.dumps(d, indent=1)}


@pytest.mark.parametrize("style", STYLES)
def test_the_linear_diff_applies_back_to_the_fixed_file(style):
    """Edits, deletions of runs, of the last entry, of a whole section, and new fields."""
    data = indented(12, STYLES[style])
    bom = runner.BOM if data.startswith(runner.BOM) else b""
    ds = load_bytes(data, "x.json")
    cases = [[set_field("annotations", 0, "bbox", [9, 9, 1, 1])], [delete("annotations", 11)],
             [delete("annotations", k) for k in (0, 1, 2, 7, 11)], [delete("annotations", k) for k in range(12)],
             [set_field("annotations", 3, "note", "new"), delete("categories", 2), delete("images", 0)],
             [set_field("annotations", k, "area", k) for k in range(12)]]
    for edits in cases:
        fixed = bom + jsonedit.apply_edits(ds, edits)
        diff = runner.unified_diff(runner.FileFix("x.json", data, fixed))
        assert apply_unified(data.decode("utf-8"), diff) == fixed.decode("utf-8"), edits


# -- 3. what --fix writes: the mark, the link, the mode, the truth, no litter ----------------------

def fixable(path: Path, bom: bool = False) -> bytes:
    """A file with one safe fix (LL113: the missing area)."""
    data = (runner.BOM if bom else b"") + json.dumps(coco_doc([ann()]), indent=1).encode()
    path.write_bytes(data)
    return data


def test_fix_and_apply_keep_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.json"
    fixable(path, bom=True)
    proc = run("check", path.name, "--fix", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    fixed = path.read_bytes()
    assert fixed.startswith(runner.BOM) and json.loads(fixed.decode("utf-8-sig"))["annotations"][0]["area"] == 400
    diff = run("check", path.name, "--diff", "--select", "LL105", cwd=tmp_path)
    assert diff.returncode == 0  # nothing to fix
    st = state.entry_state(load_bytes(fixed, "bom.json"), "annotations", 0)
    decisions = tmp_path / "decisions.json"
    decisions.write_text(json.dumps({"format": "labellint-decisions", "version": 1, "decisions": [
        {"annotation_id": 1, "state": st, "action": "set_bbox", "bbox": [1, 2, 3, 4]}]}))
    for extra in (("-o", "out.json"), ()):
        proc = run("apply", decisions.name, path.name, *extra, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    for name in ("out.json", "bom.json"):
        written = (tmp_path / name).read_bytes()
        assert written.startswith(runner.BOM) and not written[3:].startswith(runner.BOM)
        assert json.loads(written.decode("utf-8-sig"))["annotations"][0]["bbox"] == [1, 2, 3, 4]


def test_fix_writes_through_a_symbolic_link(tmp_path):
    """The link stays a link; its target (the dataset where it lives) is fixed."""
    (tmp_path / "store").mkdir()
    target = tmp_path / "store" / "data.json"
    fixable(target)
    link = tmp_path / "link.json"
    link.symlink_to(Path("store") / "data.json")
    proc = run("check", link.name, "--fix", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and os.readlink(link) == str(Path("store") / "data.json")
    assert json.loads(target.read_bytes())["annotations"][0]["area"] == 400
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "store"]
    assert [p.name for p in target.parent.iterdir()] == ["data.json"]


def test_a_read_only_file_is_not_fixed(tmp_path):
    path = tmp_path / "ro.json"
    original = fixable(path)
    os.chmod(path, 0o444)
    try:
        for fix in (("--fix",), ("--fix", "--unsafe-fixes")):
            proc = run("check", path.name, *fix, cwd=tmp_path)
            assert one_error(proc) == ("labellint: error: ro.json: cannot write: the file is read-only (mode 444); "
                                       "nothing was written")
            assert "fixed" not in proc.stderr and path.read_bytes() == original
            assert oct(os.stat(path).st_mode & 0o777) == oct(0o444)
        st = state.entry_state(load_bytes(original, "ro.json"), "annotations", 0)
        (tmp_path / "d.json").write_text(json.dumps({"format": "labellint-decisions", "version": 1, "decisions": [
            {"annotation_id": 1, "state": st, "action": "delete"}]}))
        proc = run("apply", "d.json", path.name, cwd=tmp_path)
        assert "read-only" in one_error(proc) and proc.stdout == "" and path.read_bytes() == original
    finally:
        os.chmod(path, 0o644)


def test_a_failed_write_is_never_reported_as_a_fix(tmp_path):
    """The disk fills (a file size limit, which Python turns into an OSError): exit 2, the file as it
    was, and no "fixed 1 problem" line."""
    path = tmp_path / "d.json"
    original = fixable(path)
    proc = cli("check", path.name, "--fix", cwd=tmp_path, limits={resource.RLIMIT_FSIZE: 64})
    assert "cannot write: File too large (the file is unchanged)" in one_error(proc)
    assert "fixed" not in proc.stderr and path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["d.json"]


def test_no_special_file_is_replaced(tmp_path):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(LabellintError, match="not a regular file"):
        atomic_write(fifo, b"{}")
    assert fifo.is_fifo()
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(LabellintError, match="not a regular file"):
        atomic_write(tmp_path / "dir.json", b"{}")


def test_temporary_files_of_a_killed_run_are_removed_by_the_next(tmp_path):
    """SIGKILL between the temporary file's fsync and its rename (the real process, killed): the
    file is intact, and the next write beside it removes what the dead process left."""
    data = tmp_path / "data"
    data.mkdir()
    path = data / "d.json"
    original = fixable(path)
    proc = cli("check", path.name, "--fix", cwd=data, env=kill_before_rename(tmp_path, "d.json"))
    assert proc.returncode == -signal.SIGKILL and path.read_bytes() == original
    left = [p.name for p in data.iterdir() if p.name != "d.json"]
    assert len(left) == 1 and re.fullmatch(r"\.d\.json\.labellint-tmp-\d+-[0-9a-f]+", left[0]), left
    alive = data / f".d.json.labellint-tmp-{os.getpid()}-abcd"  # a writer still at work: left alone
    alive.write_bytes(b"")
    unrelated = data / ".d.json.labellint-tmp-notes"
    unrelated.write_bytes(b"")
    proc = run("check", path.name, "--fix", cwd=data)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(path.read_bytes())["annotations"][0]["area"] == 400
    assert sorted(p.name for p in data.iterdir()) == sorted(["d.json", alive.name, unrelated.name])


# -- 4. apply: hostile decisions files -------------------------------------------------------------

@pytest.fixture
def dataset(tmp_path) -> tuple[Path, dict]:
    """ann.json with annotations 1-3, and each one's state."""
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(coco_doc([ann(i, area=400) for i in (1, 2, 3)],
                                        categories=[{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]), indent=2))
    ds = load_bytes(path.read_bytes(), "ann.json")
    return path, {i + 1: state.entry_state(ds, "annotations", i) for i in range(3)}


def decisions_file(folder: Path, items, raw: str | None = None) -> Path:
    out = folder / "decisions.json"
    out.write_text(raw if raw is not None else json.dumps({"format": "labellint-decisions", "version": 1,
                                                           "decisions": items}))
    return out


HOSTILE = [
    ([{"annotation_id": 2, "action": "set_bbox", "bbox": [0, 0, 1e308, 1e308]}], "decisions[0].bbox: set_bbox needs"),
    ([{"annotation_id": 2, "action": "set_bbox", "bbox": [1.7e308, 0, 1.7e308, 1]}], "decisions[0].bbox"),
    ([{"annotation_id": 2, "action": "set_bbox", "bbox": [0, 0, 10 ** 400, 1]}], "decisions[0].bbox"),
    ([{"annotation_id": 2**64, "action": "delete"}], "decisions[0].annotation_id: 18446744073709551616 is not an id"),
    ([{"annotation_id": -2**63, "action": "delete"}], "decisions[0].annotation_id"),
    ([{"annotation_id": 2, "action": "relabel", "category_id": 2**70}], "decisions[0].category_id"),
    ([{"annotation_id": 2, "action": "set_id", "new_id": 2**63}], "decisions[0]: set_id needs a positive integer"),
    ([{"annotation_id": 2, "action": "delete", "state": ["x"]}], "decisions[0].state: must be a string of 16 hex"),
    ([{"annotation_id": 2, "action": "delete", "state": "0" * 10_000}], "decisions[0].state"),
    ([{"annotation_id": 2, "action": ["delete"]}], "decisions[0]: action [\"delete\"] is not one of"),
    ([{"annotation_id": 2, "action": "delete", "path": 5}], "decisions[0].path: must be a string"),
    ([{"annotation_id": 2, "action": "delete", "pointer": "/images/0"}], "decisions[0].pointer: is not a field"),
    ([{"annotation_id": 2, "action": "delete", "bbox": [1, 2, 3, 4]}], "decisions[0].bbox: does not go with action"),
    ([{"annotation_id": 2, "action": "delete"}, {"annotation_id": 2.5, "action": "delete"}],
     "decisions[1]: delete needs an integer annotation_id"),
    (None, "decisions file is not valid JSON: nested too deeply"),
    ("huge-int", "decisions file is not valid JSON: Exceeds the limit"),
]


@pytest.mark.parametrize("items, message", HOSTILE, ids=[m for _, m in HOSTILE])
def test_hostile_decisions_are_one_line_and_write_nothing(tmp_path, dataset, items, message):
    path, states = dataset
    original = path.read_bytes()
    raw = None
    if items is None:
        raw = '{"format": "labellint-decisions", "version": 1, "decisions": ' + "[" * 50_000 + "]" * 50_000 + "}"
    elif items == "huge-int":
        raw = '{"format": "labellint-decisions", "version": 1, "decisions": [{"annotation_id": 1' + "0" * 5000 + "}]}"
    else:
        for d in items:
            d.setdefault("state", states[2])
    dec = decisions_file(tmp_path, items, raw)
    for force in ((), ("--force",)):
        line = one_error(run("apply", dec.name, path.name, *force, cwd=tmp_path))
        assert message in line and len(line) < 600, line
        assert path.read_bytes() == original


def test_an_oversized_decisions_file_is_refused_before_it_is_read(tmp_path, dataset):
    path, states = dataset
    dec = decisions_file(tmp_path, [{"annotation_id": 2, "state": states[2], "action": "delete"}] * 100)
    line = one_error(run("apply", dec.name, path.name, cwd=tmp_path, env={"LABELLINT_MAX_DECISIONS_BYTES": "1000"}))
    assert "larger than 1,000 bytes (LABELLINT_MAX_DECISIONS_BYTES)" in line


def test_state_checks_are_all_or_nothing(tmp_path, dataset):
    """One decision about an annotation edited since the review: nothing is written, not even the
    decisions that still match; --force applies them all."""
    path, states = dataset
    original = path.read_bytes()
    dec = decisions_file(tmp_path, [
        {"annotation_id": 1, "state": states[1], "action": "delete"},
        {"annotation_id": 2, "state": "0123456789abcdef", "action": "relabel", "category_id": 2},
        {"annotation_id": 3, "state": states[3], "action": "set_bbox", "bbox": [1, 1, 2, 2]}])
    proc = run("apply", dec.name, path.name, cwd=tmp_path)
    assert "decisions[1]: annotation 2 changed since the report was made" in proc.stderr
    assert "nothing was written" in one_error(proc) and proc.stdout == "" and path.read_bytes() == original
    proc = run("apply", dec.name, path.name, "--force", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    anns = {a["id"]: a for a in json.loads(path.read_bytes())["annotations"]}
    assert sorted(anns) == [2, 3] and anns[2]["category_id"] == 2 and anns[3]["bbox"] == [1, 1, 2, 2]


def test_contradicting_decisions_are_never_applied(tmp_path, dataset):
    """Two reviewers' cards about one annotation: relabel it twice, or delete it and move it. Not for
    --force to pick one."""
    path, states = dataset
    original = path.read_bytes()
    for group in ([{"action": "relabel", "category_id": 2}, {"action": "relabel", "category_id": 1}],
                  [{"action": "delete"}, {"action": "set_bbox", "bbox": [1, 1, 2, 2]}]):
        dec = decisions_file(tmp_path, [{"annotation_id": 2, "state": states[2], **d} for d in group])
        for force in ((), ("--force",)):
            proc = run("apply", dec.name, path.name, *force, cwd=tmp_path)
            assert "decisions[0, 1]: annotation 2: the decisions contradict each other" in proc.stderr
            one_error(proc)
            assert path.read_bytes() == original


def test_a_decision_about_a_deeply_nested_annotation(tmp_path):
    """An annotation nesting 500 deep (the loader allows 512): applying a decision to it copies
    only what it changes."""
    deep = 0
    for _ in range(500):
        deep = [deep]
    path = tmp_path / "deep.json"
    path.write_text(json.dumps(coco_doc([ann(1, area=400, extra=deep)],
                                        categories=[{"id": 1, "name": "a"}, {"id": 2, "name": "b"}])))
    st = state.entry_state(load_bytes(path.read_bytes(), "deep.json"), "annotations", 0)
    dec = decisions_file(tmp_path, [{"annotation_id": 1, "state": st, "action": "relabel", "category_id": 2}])
    proc = run("apply", dec.name, path.name, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(path.read_bytes())["annotations"][0]["category_id"] == 2


# -- 5. the gallery: lazily computed fixes and absurd numbers ---------------------------------------

def gallery_of(folder: Path, *args: str) -> Path:
    proc = run("check", "-f", "html", "-o", "review.html", "--exit-zero", "--no-cache", *args, cwd=folder)
    assert proc.returncode == 0, proc.stderr
    return folder / "review.html"


def strict_blob(page: Path) -> dict:
    """The page's data, read by a parser that refuses NaN and Infinity."""
    def refuse(name):
        raise AssertionError(f"{name} in the page's data")

    raw, _ = blob_of(page.read_text(encoding="utf-8"))
    return json.loads(raw, parse_constant=refuse)


def numbers(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from numbers(v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


def test_gallery_of_the_real_taco_file_with_lazy_fixes(browser, shared, tmp_path):
    """TACO's unofficial file (Infinity values, polygons outside their images): its LL107 fixes are
    computed only when fixing; the page takes them as fixes it cannot record."""
    source = shared / "data" / "taco" / "annotations_unofficial.json"
    (tmp_path / "taco.json").write_bytes(source.read_bytes())
    page = gallery_of(tmp_path, "taco.json")
    doc = strict_blob(page)
    lazy = [f for f in doc["findings"] if f["code"] == "LL107" and f["fix"]]
    assert lazy and all(f["accept"] is None for f in lazy)
    view = Gallery(browser, page)
    view.page.select_option("#filter-rule", "LL107")
    card = view.page.locator(f'#cards .card[data-fp="{lazy[0]["fp"]}"]')
    assert "labellint check --fix" in card.locator(".suggest").inner_text()
    view.close()


def test_gallery_of_every_lazy_fix_and_absurd_boxes(browser, tmp_path):
    """LL107, LL110, LL113 and LL017 compute their fixes when fixing; boxes of +-1.7e308 and ids past
    2**53 must neither crash the page nor reach it as numbers JavaScript cannot hold."""
    (tmp_path / "images").mkdir()
    photo(tmp_path / "images" / "a.jpg", size=(100, 80))
    anns = [ann(1, area=5, segmentation=[[10, 10, 1e9, 10, 1e9, 1e9, 10, 1e9]]),  # LL107, LL110
            ann(2, (5, 5, 10, 10)),  # LL113
            ann(3, (-1.7e308, 10, 1.7e308, 1.7e308), area=5), ann(4, (1.7e308, -1.7e308, 1.7e308, 1.7e308), area=5),
            ann(2**60, (20, 20, 5, 5), area=25, category_id=2)]
    cats = [{"id": 1, "name": "a"}, {"id": 2, "name": "a"}]  # LL017
    (tmp_path / "data.json").write_text(json.dumps(coco_doc(anns, categories=cats)))
    page = gallery_of(tmp_path, "data.json", "--images", "images")
    doc = strict_blob(page)
    codes = {f["code"] for f in doc["findings"] if f["fix"]}
    assert {"LL107", "LL110", "LL113", "LL017"} <= codes
    assert all(abs(v) <= 1e15 for v in numbers(doc)), max(numbers(doc), key=abs)
    assert 2**60 not in {f["aid"] for f in doc["findings"]}  # the page would act on another id
    view = Gallery(browser, page)
    assert view.cards() == len(doc["findings"])
    view.close()


# -- 6. the gallery: dataset strings as keys, paths in commands ------------------------------------

def test_class_filter_with_names_of_object_properties(browser, tmp_path):
    names = ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf"]
    anns = [ann(k + 1, (90, 10, 30, 10), area=300, category_id=c + 1)
            for k, c in enumerate(c for c in range(len(names)) for _ in range(c + 1))]  # class c: c + 1 boxes
    (tmp_path / "data.json").write_text(json.dumps(coco_doc(anns, categories=[
        {"id": c + 1, "name": n} for c, n in enumerate(names)])))
    page = gallery_of(tmp_path, "data.json", "--select", "LL105")
    view = Gallery(browser, page)
    options = view.page.eval_on_selector_all("#filter-class option", "os => os.map(o => [o.value, o.text])")
    assert options[0] == ["", "all classes"]
    assert sorted(options[1:]) == sorted([n, f"{n} ({c + 1})"] for c, n in enumerate(names))
    for c, name in enumerate(names):
        view.page.select_option("#filter-class", name)
        assert view.cards() == c + 1 and f"of {c + 1}" in view.page.inner_text("#page-info")
        assert {view.page.locator("#cards .card").nth(k).locator(".meta").inner_text().split("class ")[1].split("\n")[0]
                for k in range(c + 1)} == {name}
    view.page.select_option("#filter-class", "")
    card = view.card("LL105")
    card.locator("select.relabel").select_option("1")  # to "__proto__"
    assert "'__proto__'" in card.locator(".decision").inner_text()
    decided = view.download(tmp_path)["decisions"]
    assert decided[0]["action"] == "relabel" and decided[0]["category_id"] == 1
    view.page.reload()
    view.page.wait_for_selector("body[data-ready='1']")
    assert view.card("LL105").get_attribute("data-decision") == "relabel"  # kept across a reload
    view.close()


def test_the_apply_command_is_quoted_for_the_shell(browser, tmp_path):
    """Paths with spaces, ';', quotes, '$(...)' and a leading '-': one command per file (apply takes
    one), each read back by a real shell as exactly the path."""
    names = ["my data; touch PWNED.json", "it's $(touch PWNED).json", "-rf.json", "plain_1.json"]
    for name in names:
        (tmp_path / name).write_text(json.dumps(coco_doc([ann(1, (90, 10, 30, 10), area=300)])))
    page = gallery_of(tmp_path, "--select", "LL105", "--", *names)
    view = Gallery(browser, page)
    commands = view.page.inner_text("#apply-command").splitlines()
    view.close()
    assert len(commands) == len(names)
    by_path = {}
    for line in commands:
        words = shlex.split(line)
        assert words[:3] == ["labellint", "apply", "decisions.json"] and len(words) == 4, line
        echoed = subprocess.run(["bash", "-c", "printf '%s\\n' " + line.split(" ", 3)[3]], cwd=tmp_path,
                                capture_output=True, text=True, check=True).stdout
        assert echoed == words[3] + "\n"
        by_path[words[3]] = line
    assert sorted(by_path) == sorted(["./-rf.json" if n.startswith("-") else n for n in names])
    assert by_path["plain_1.json"] == "labellint apply decisions.json plain_1.json"
    assert not list(tmp_path.glob("PWNED*"))
