"""Newcomer papercuts (issue 11): what a first run prints, read as a person reads it.

One line for the skipped rules; paths relative to the current directory in the text report
(repository-relative in the machine formats); rule docs that label their examples and pad
nothing; plurals; unknown codes that name their option; input errors as one line on stderr.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner
from rich.console import Console

from conftest import coco
from labellint import registry
from labellint.cli import cli, print_rule_doc

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(autouse=True)
def _no_backbone(monkeypatch):
    monkeypatch.delenv("LABELLINT_BACKBONE", raising=False)


def invoke(args):
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    return res.exit_code, res.stdout, res.stderr


def outside(doc):
    doc["annotations"][1]["bbox"] = [60, 5, 20, 10]
    return doc


# -- 1. skipped rules: one line, codes in ranges by what they lack ---------------------------------


def test_skipped_rules_are_one_line_of_ranges(write_coco):
    path = write_coco(outside(coco()))
    code, out, _ = invoke(["check", str(path)])
    skipped = [line for line in out.splitlines() if re.search(r"\bskipped\b", line)]
    assert len(skipped) == 1, out
    assert not re.search(r"^rule LL\d+ skipped", out, re.M)
    needing = sorted(r.code for r in registry.all_rules() if r.requires)
    assert skipped[0].startswith(f"{len(needing)} rules skipped: ")
    assert "LL501 needs --images and --backbone" in skipped[0]  # both, not only the first it lacks
    assert re.search(r"LL601-LL604 need --predictions\b", skipped[0])


@pytest.mark.parametrize("args, line", [
    # LL403 is not selected: the range stops at it and starts again after it
    (["--select", "LL401,LL402,LL404"], "3 rules skipped: LL401-LL402, LL404 need --images"),
    (["--select", "LL501"], "1 rule skipped: LL501 needs --images and --backbone"),
    (["--select", "LL501", "--images", "."], "1 rule skipped: LL501 needs --backbone"),
    (["--select", "LL601,LL602,LL603,LL501"],
     "4 rules skipped: LL501 needs --images and --backbone; LL601-LL603 need --predictions"),
])
def test_skipped_rules_line_wording(write_coco, tmp_path, args, line):
    path = write_coco(coco())
    code, out, _ = invoke(["check", str(path), *[str(tmp_path) if a == "." else a for a in args]])
    assert line in out.splitlines(), out


def test_statistics_prints_the_table_and_the_skipped_line_only(write_coco):
    path = write_coco(outside(coco()))
    code, out, _ = invoke(["check", str(path), "--statistics", "--select", "LL105,LL601,LL602"])
    lines = [line for line in out.splitlines() if line.strip()]
    assert code == 1
    assert lines[-1] == "2 rules skipped: LL601-LL602 need --predictions", out
    assert any("LL105" in line and "bbox-outside-image" in line for line in lines)
    assert "Findings" not in out and "labellint " not in out and "linted" not in out
    assert len(lines) == 4, out  # header, rule, one row, the skipped line


def test_json_keeps_one_skipped_entry_per_rule(write_coco):
    path = write_coco(coco())
    _, out, _ = invoke(["check", str(path), "--select", "LL401,LL402,LL501", "-f", "json"])
    assert json.loads(out)["skipped_rules"] == [
        {"code": "LL401", "reason": "needs --images DIR"},
        {"code": "LL402", "reason": "needs --images DIR"},
        {"code": "LL501", "reason": "needs --images DIR and --backbone MODEL.onnx (or LABELLINT_BACKBONE)"},
    ]


# -- 2. paths: cwd-relative for people, repository-relative for machines ----------------------------


@pytest.fixture
def repo(tmp_path, write_coco):
    """A repository (a folder with .git) holding demo/ann.json with one LL105 finding."""
    (tmp_path / ".git").mkdir()
    write_coco(outside(coco()), "demo/ann.json", indent=1)
    return tmp_path


def test_text_report_paths_are_relative_to_the_current_directory(repo, monkeypatch):
    monkeypatch.chdir(repo / "demo")
    code, out, _ = invoke(["check", "ann.json", "--select", "LL105"])
    assert code == 1
    assert re.search(r"^ann\.json:\d+:\d+  error   LL105 ", out, re.M), out
    assert "demo/ann.json" not in out


def test_text_report_path_outside_the_current_directory_is_absolute(repo, tmp_path_factory, monkeypatch):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    monkeypatch.chdir(elsewhere)
    target = repo / "demo" / "ann.json"
    code, out, _ = invoke(["check", str(target), "--select", "LL105"])
    assert re.search(rf"^{re.escape(target.resolve().as_posix())}:\d+:\d+  error", out, re.M), out
    monkeypatch.chdir(repo)  # from the root: the same path, relative
    code, out, _ = invoke(["check", "demo/ann.json", "--select", "LL105"])
    assert re.search(r"^demo/ann\.json:\d+:\d+  error", out, re.M), out


def test_machine_formats_and_fingerprints_stay_repository_relative(repo, monkeypatch):
    monkeypatch.chdir(repo)
    _, from_root, _ = invoke(["check", "demo/ann.json", "--select", "LL105", "-f", "json"])
    monkeypatch.chdir(repo / "demo")
    _, doc, _ = invoke(["check", "ann.json", "--select", "LL105", "-f", "json"])
    doc, from_root = json.loads(doc), json.loads(from_root)
    assert doc["files"][0]["path"] == doc["findings"][0]["path"] == "demo/ann.json"
    assert doc["findings"][0]["fingerprint"] == from_root["findings"][0]["fingerprint"]
    _, sarif, _ = invoke(["check", "ann.json", "--select", "LL105", "-f", "sarif"])
    location = json.loads(sarif)["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "demo/ann.json"
    # GitHub resolves file= against the repository root; the text report after it is for people
    _, github, _ = invoke(["check", "ann.json", "--select", "LL105", "-f", "github"])
    assert "::error file=demo/ann.json,line=" in github
    assert re.search(r"^ann\.json:\d+:\d+  error", github, re.M), github


def test_error_lines_use_the_current_directory_too(repo, monkeypatch):
    (repo / "demo" / "broken.json").write_text('{"images": [')
    monkeypatch.chdir(repo / "demo")
    code, out, err = invoke(["check", "broken.json"])
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("labellint: error: broken.json:1:13: invalid JSON"), err


# -- 3. rule docs: labelled examples, nothing padded -------------------------------------------------


def _check_rule_doc(output: str) -> None:
    plain = ANSI.sub("", output).replace("\r", "")
    lines = plain.splitlines()
    assert "✗ reported" in lines and "✓ clean" in lines, plain
    bad = lines.index("✗ reported")
    assert lines[bad + 1].lstrip().startswith("{"), plain  # the code follows its label
    assert [line for line in lines if line != line.rstrip()] == [], "lines padded with trailing spaces"
    assert "\x1b[48;" not in output and ";48;" not in output, "code blocks on a background colour"


def test_rule_doc_through_a_terminal_console():
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=100, color_system="truecolor")
    print_rule_doc(console, registry.by_code()["LL105"].doc)
    assert "\x1b[" in buf.getvalue()  # it was styled, as a terminal gets it
    _check_rule_doc(buf.getvalue())


def test_rule_doc_in_a_pipe():
    done = subprocess.run([sys.executable, "-m", "labellint", "rule", "LL105"], capture_output=True, text=True,
                          encoding="utf-8", env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stdout
    _check_rule_doc(done.stdout)
    rule = registry.by_code()["LL105"]
    assert rule.summary in done.stdout and "tolerance_px" in done.stdout


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_rule_doc_in_a_real_terminal():
    master, slave = os.openpty()
    env = {**os.environ, "COLUMNS": "90", "LINES": "40", "TERM": "xterm-256color", "PYTHONIOENCODING": "utf-8"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "labellint", "rule", "LL105"], stdout=slave, stderr=slave,
                            stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO once the child has closed its end
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=60) == 0
    output = b"".join(chunks).decode("utf-8")
    _check_rule_doc(output)
    assert max(len(line) for line in ANSI.sub("", output).replace("\r", "").splitlines()) <= 90


# -- 4. plurals ------------------------------------------------------------------------------------


def test_summary_counts_are_singular_for_one(write_coco):
    doc = coco(annotations=[{"id": 1, "image_id": 1, "category_id": 1, "bbox": [60, 5, 20, 10], "area": 200,
                             "iscrowd": 0}])
    path = write_coco(doc)
    code, out, _ = invoke(["check", str(path), "--select", "LL105"])
    footer = out.strip().splitlines()[-1]
    assert "1 file linted · 1 annotation · 1 finding (1 error, 0 warnings, 0 info)" in footer, footer
    assert not re.search(r"\b1 (errors|warnings|findings|annotations|files|rules)\b", out), out


# -- 5. unknown codes name their option ------------------------------------------------------------


@pytest.mark.parametrize("option", ["--select", "--ignore", "--extend-select"])
def test_unknown_code_names_its_option_once(write_coco, option):
    a = write_coco(coco(), "a.json")
    b = write_coco(coco(), "b.json")
    code, out, err = invoke(["check", str(a), str(b), option, "LL9"])
    assert code == 2 and out == ""
    assert err == f"labellint: error: unknown rule code 'LL9' in {option} (did you mean 'LL109'?)\n", err


def test_unknown_code_in_config_names_file_line_and_key(tmp_path, write_coco, monkeypatch):
    from labellint import config

    config.find.cache_clear()
    (tmp_path / "labellint.toml").write_text('select = ["LL0"]\nignore = ["LL9"]\n')
    write_coco(coco(), "a.json")
    write_coco(coco(), "b.json")
    monkeypatch.chdir(tmp_path)
    try:
        code, out, err = invoke(["check", "a.json", "b.json"])
    finally:
        config.find.cache_clear()
    assert code == 2 and out == ""
    assert err == "labellint: error: labellint.toml:2:1: unknown rule code 'LL9' in ignore (did you mean 'LL109'?)\n"


# -- 6. input errors: one line on stderr, exit 2, nothing else ---------------------------------------


def test_missing_file_is_one_line_on_stderr(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = invoke(["check", "nothere.json"])
    assert (code, out, err) == (2, "", "labellint: error: nothere.json: no such file\n")


def test_folder_with_unreadable_json_is_one_line_too(tmp_path, write_coco, monkeypatch):
    write_coco(outside(coco()), "data/findings.json")  # findings elsewhere do not bury the error
    (tmp_path / "data" / "broken.json").write_text('{"images": [')
    monkeypatch.chdir(tmp_path)
    code, out, err = invoke(["check", "data"])
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("labellint: error: data/broken.json:1:13: invalid JSON"), err
    code, out, err = invoke(["check", "data", "--diff"])  # --diff too
    assert code == 2 and out == "" and len(err.splitlines()) == 1, err
    code, out, err = invoke(["check", "data", "-f", "json"])  # the machine formats still carry the error
    assert code == 2 and json.loads(out)["errors"] and len(err.splitlines()) == 1
