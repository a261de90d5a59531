"""``check --report FORMAT:FILE``: more reports from the one run, each the document its format
writes alone."""

from __future__ import annotations

import json

from click.testing import CliRunner

from conftest import coco
from labellint.cli import cli


def run(args, cwd):
    result = CliRunner().invoke(cli, args, catch_exceptions=False, env={"LABELLINT_NO_PROGRESS": "1"})
    return result.exit_code, result.output


def _bad(doc):
    doc["annotations"][1]["bbox"] = [60, 5, 20, 10]  # LL105
    return doc


def test_each_report_is_what_its_format_writes_alone(write_coco, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = write_coco(_bad(coco()), "bad.json")
    code, _ = run(["check", str(data), "-f", "github", "-o", "g.txt", "--report", "sarif:r.sarif",
                   "--report", "json:r.json", "--report", "text:r.txt"], tmp_path)
    assert code == 1
    for fmt, name in (("sarif", "r.sarif"), ("json", "r.json"), ("text", "r.txt"), ("github", "g.txt")):
        alone = tmp_path / f"alone-{name}"
        assert run(["check", str(data), "-f", fmt, "-o", str(alone)], tmp_path)[0] == 1
        assert (tmp_path / name).read_text(encoding="utf-8") == alone.read_text(encoding="utf-8"), fmt
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["summary"]["by_rule"] == {"LL105": 1}


def test_a_path_may_hold_colons(write_coco, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = write_coco(coco(), "ok.json")
    assert run(["check", str(data), "--report", "json:a:b.json"], tmp_path)[0] == 0
    assert json.loads((tmp_path / "a:b.json").read_text(encoding="utf-8"))["summary"]["findings"] == 0


def test_usage_errors_write_nothing(write_coco, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = write_coco(coco(), "ok.json")
    before = data.read_bytes()
    for args, said in ((["--report", "json"], "is not FORMAT:FILE"), (["--report", "json:"], "is not FORMAT:FILE"),
                       (["--report", "nope:x.json"], "unknown format 'nope'"),
                       (["--report", "json:x.json", "--report", "sarif:x.json"], "named twice"),
                       (["-o", "x.json", "--report", "sarif:x.json"], "both --output-file and a --report file")):
        code, out = run(["check", str(data), *args], tmp_path)
        assert code == 2 and said in out, (args, out)
    code, out = run(["check", str(data), "--report", f"sarif:{data}"], tmp_path)
    assert code == 2 and "would overwrite the input" in out
    assert data.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.json"]


def test_errors_go_into_the_reports_of_a_run_that_started(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out = run(["check", "missing.json", "--report", "json:r.json"], tmp_path)
    assert code == 2 and "missing.json" in out
    errors = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["errors"]
    assert len(errors) == 1 and "missing.json" in errors[0]


def test_a_run_that_cannot_start_writes_no_report(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    code, out = run(["check", "empty", "--report", "json:r.json"], tmp_path)
    assert code == 2 and "no JSON files found" in out, out
    assert not (tmp_path / "r.json").exists()
