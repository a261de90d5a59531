"""The demo dataset's DEFECTS.md: annotations named by id, and claims that match what labellint finds."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, SHARED
from labellint import demo

BACKBONE = SHARED / "models" / "mobilenetv2-12-int8-embed.onnx"
ROW = re.compile(r"^\| (\d+) \| (.+?) \| (LL\d{3}) \| (.+?) \|$", re.M)


def labellint(*args, cwd: Path, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labellint", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "demo"
    demo.write(out)
    return out


def table(out: Path) -> list[tuple[int, str, str, str]]:
    return [(int(a), what, rule, found) for a, what, rule, found in ROW.findall((out / "DEFECTS.md").read_text())]


def positions(out: Path) -> dict[int, int]:
    """Annotation id in clean.json -> its position (the same in annotations.json)."""
    clean = json.loads((out / "clean.json").read_text())
    return {a["id"]: k for k, a in enumerate(clean["annotations"])}


def finding_rows(report: dict) -> set[tuple[str, int]]:
    rows = set()
    for f in report["findings"]:
        m = re.match(r"^/annotations/(\d+)", f["pointer"] or "")
        if m:
            rows.add((f["code"], int(m.group(1))))
    return rows


def test_defects_are_named_by_their_ids_in_clean_json(made):
    text = (made / "DEFECTS.md").read_text()
    assert "position" not in text
    rows = table(made)
    assert len(rows) == 9 and [r[2] for r in rows].count("LL501") == 5
    at = positions(made)
    clean = json.loads((made / "clean.json").read_text())["annotations"]
    broken = json.loads((made / "annotations.json").read_text())["annotations"]
    changed = {k for k, (a, b) in enumerate(zip(clean, broken)) if a != b}
    assert {at[ann_id] for ann_id, *_ in rows} == changed  # each id names the annotation that was changed
    assert (8, "id changed to 7, which annotation 7 already has", "LL010", "yes") in rows
    assert broken[at[8]]["id"] == 7 and clean[at[8]]["id"] == 8


def test_what_defects_md_says_is_found_is_what_a_lint_finds(made):
    """The claims written at generation time: the file's defects, checked by a real lint with the
    default settings (no config, no --images); the class swaps are not claimed either way."""
    done = labellint("check", "annotations.json", "-f", "json", "--no-cache", "--exit-zero", cwd=made)
    assert done.returncode == 0, done.stderr
    found = finding_rows(json.loads(done.stdout))
    at = positions(made)
    for ann_id, what, rule, claim in table(made):
        if rule == "LL501":
            assert claim == "not measured (needs `--images` and a backbone)"
        else:
            assert claim == ("yes" if (rule, at[ann_id]) in found else "**no**"), (ann_id, what)
    text = (made / "DEFECTS.md").read_text()
    assert "4 of the 4 defects the file alone shows are found" in text
    assert "this file does not say whether they are found" in text


def test_record_writes_what_the_lint_found(made, tmp_path):
    at = positions(made)
    swaps = [ann_id for ann_id, _, rule, _ in table(made) if rule == "LL501"]
    findings = [{"code": "LL105", "pointer": f"/annotations/{at[4]}"},
                {"code": "LL010", "pointer": f"/annotations/{at[8]}"},
                {"code": "LL501", "pointer": f"/annotations/{at[swaps[0]]}"},
                {"code": "LL501", "pointer": f"/annotations/{at[swaps[2]]}/category_id"},
                {"code": "LL105", "pointer": f"/annotations/{at[swaps[1]]}"}]  # another rule's: not a find
    report = tmp_path / "findings.json"
    report.write_text(json.dumps({"findings": findings, "skipped_rules": []}))
    copy = tmp_path / "demo"
    copy.mkdir()
    (copy / "clean.json").write_bytes((made / "clean.json").read_bytes())
    line = demo.record(copy, report, "/models/net.onnx")
    missed = ", ".join(str(s) for k, s in enumerate(swaps) if k not in (0, 2))
    assert f"LL501 found 2 of the 5 class swaps (missed: annotations {missed})" in line
    assert "Of the other defects, 2 of 4 are found (missed: annotations 11, 13)" in line
    assert "backbone net.onnx" in line
    rows = {ann_id: found for ann_id, _, _, found in table(copy)}
    assert rows[swaps[0]] == rows[swaps[2]] == rows[4] == "yes" and rows[swaps[1]] == rows[13] == "**no**"
    report.write_text(json.dumps({"findings": findings[:2], "skipped_rules": [
        {"code": "LL501", "reason": "needs --backbone MODEL.onnx"}]}))
    line = demo.record(copy, report)
    assert "The 5 class swaps were not measured: LL501 did not run (needs --backbone MODEL.onnx)" in line
    assert {found for _, _, rule, found in table(copy) if rule == "LL501"} == {
        "not measured (needs `--images` and a backbone)"}


@pytest.mark.skipif(not BACKBONE.is_file(), reason=f"needs the shared backbone at {BACKBONE}")
def test_demo_script_measurement_matches_the_findings(made, tmp_path):
    """What scripts/demo.sh runs after its lint: the JSON report with the images and the backbone,
    then `python -m labellint.demo record`; DEFECTS.md then says what that run found, no more."""
    made = Path(shutil.copytree(made, tmp_path / "demo"))  # the module's copy stays as generated
    env = {"LABELLINT_BACKBONE": str(BACKBONE)}
    done = labellint("check", "demo/annotations.json", "--images", "demo/images", "--output-format", "json",
                     "--output-file", "demo/findings.json", "--exit-zero", "--no-cache", cwd=made.parent, env=env)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, "-m", "labellint.demo", "record", "demo", "demo/findings.json"],
                          cwd=made.parent, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO), **env})
    assert done.returncode == 0, done.stderr
    found = finding_rows(json.loads((made / "findings.json").read_text()))
    at = positions(made)
    rows = table(made)
    swaps = [ann_id for ann_id, _, rule, _ in rows if rule == "LL501"]
    hit = [s for s in swaps if ("LL501", at[s]) in found]
    assert f"LL501 found {len(hit)} of the 5 class swaps" in done.stdout
    assert done.stdout.strip() in (made / "DEFECTS.md").read_text()
    for ann_id, _, rule, claim in rows:
        assert claim == ("yes" if (rule, at[ann_id]) in found else "**no**")
    assert "backbone mobilenetv2-12-int8-embed.onnx" in done.stdout
