"""The command line end to end: exit codes, errors, baseline and PR mode, rule docs."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import REPO, coco
from labellint import registry
from labellint.cli import cli, rules_markdown


def run(args, cwd=None):
    old = os.getcwd()
    if cwd:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.output


def outside(doc):
    doc["annotations"][1]["bbox"] = [60, 5, 20, 10]
    return doc


def test_exit_codes(write_coco):
    clean = write_coco(coco(), "clean.json")
    assert run(["check", str(clean)])[0] == 0
    bad = write_coco(outside(coco()), "bad.json")
    assert run(["check", str(bad)])[0] == 1
    assert run(["check", str(bad), "--exit-zero"])[0] == 0
    assert run(["check", str(bad), "--ignore", "LL105"])[0] == 0
    assert run(["check", str(bad), "--select", "LL0"])[0] == 0
    assert run(["check", str(bad), "--select", "LL999"])[0] == 2
    assert run(["check", str(bad), "--fail-on", "nonsense"])[0] == 2


def test_fail_on_warning_from_severity_override(write_coco, tmp_path):
    bad = write_coco(outside(coco()), "bad.json")
    (tmp_path / "labellint.toml").write_text('[severity]\nLL105 = "warning"\n')
    from labellint import config
    config.find.cache_clear()
    assert run(["check", str(bad)])[0] == 0
    assert run(["check", str(bad), "--fail-on", "warning"])[0] == 1
    (tmp_path / "labellint.toml").write_text('fail-on = "warning"\n[severity]\nLL105 = "warning"\n')
    config.find.cache_clear()
    assert run(["check", str(bad)])[0] == 1


@pytest.mark.parametrize("text, line, col", [
    ('{\n  "images": [\n    {"id": 1,}\n  ]\n}\n', 3, 14),
    ('{"images": [{"id": 1 "x": 2}]}', 1, 22),
    ('{"images": [', 1, 13),
])
def test_broken_json_is_one_located_line_exit_2(write_coco, text, line, col):
    path = write_coco(text, "broken.json")
    proc = subprocess.run([sys.executable, "-m", "labellint", "check", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    err_lines = [l for l in (proc.stdout + proc.stderr).splitlines() if "broken.json" in l]
    assert err_lines and f"broken.json:{line}:{col}: invalid JSON" in err_lines[0]


def test_not_coco_json_is_skipped(write_coco):
    pkg = write_coco({"name": "x", "version": "1.0.0"}, "package.json")
    arr = write_coco([1, 2, 3], "list.json")
    code, out = run(["check", str(pkg), str(arr)])
    assert code == 0 and out.count("not a COCO file") == 2


def test_missing_file_and_unknown_rule_doc():
    code, out = run(["check", "/no/such/file.json"])
    assert code == 2 and "no such file" in out
    code, out = run(["rule", "LL15"])
    assert code == 2 and "unknown rule 'LL15'" in out


def test_statistics_and_limit(write_coco):
    doc = coco(annotations=[{"id": i, "image_id": 1, "category_id": 1, "bbox": [60, 5, 20, 10]} for i in range(1, 8)])
    path = write_coco(doc)
    code, out = run(["check", str(path), "--statistics", "--select", "LL105"])
    assert code == 1 and "LL105" in out and "Findings" not in out
    code, out = run(["check", str(path), "--limit", "3", "--select", "LL105"])
    assert "top 3 of 7" in out and "4 more" in out


def test_output_file_written_atomically(write_coco, tmp_path):
    path = write_coco(outside(coco()))
    out = tmp_path / "report.json"
    out.write_text("old")
    code, text = run(["check", str(path), "-f", "json", "-o", str(out)])
    assert json.loads(out.read_text())["summary"]["findings"] == 1
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_taco_unofficial_with_infinity_values(shared):
    path = shared / "data/taco/annotations_unofficial.json"
    code, out = run(["check", str(path), "-f", "json", "--select", "LL002"])
    doc = json.loads(out)
    assert code == 1
    found = [f for f in doc["findings"] if f["code"] == "LL002"]
    assert found and all("Infinity" in f["message"] or "NaN" in f["message"] for f in found)
    # the reported boxes really hold non-finite values in the file
    raw = json.loads(path.read_text())  # Python's json reads Infinity
    for f in found:
        idx = int(f["pointer"].split("/")[2])
        ann = raw["annotations"][idx]
        assert ann["id"] == f["annotation_id"]
        assert any(v != v or v in (float("inf"), float("-inf")) for v in ann["bbox"] + [ann.get("area", 0)]
                   ) or "segmentation" in f["pointer"]


# -- baseline --------------------------------------------------------------------------------
def test_baseline_hides_known_and_reports_stale(write_coco, tmp_path):
    doc = outside(coco())
    path = write_coco(doc, indent=2)
    base = tmp_path / "baseline.json"
    code, out = run(["baseline", "create", str(path), "-o", str(base)])
    assert code == 0 and "wrote 1 finding" in out
    assert run(["check", str(path), "--baseline", str(base)])[0] == 0
    # a new problem is still reported
    doc["annotations"].append({"id": 3, "image_id": 1, "category_id": 77, "bbox": [1, 1, 5, 5], "area": 25})
    path.write_text(json.dumps(doc, indent=2))
    code, out = run(["check", str(path), "--baseline", str(base), "-f", "json"])
    assert code == 1 and [f["code"] for f in json.loads(out)["findings"]] == ["LL012"]
    # fixing the baselined one makes its entry stale
    doc["annotations"][1]["bbox"] = [1, 1, 2, 2]
    path.write_text(json.dumps(doc, indent=2))
    code, out = run(["check", str(path), "--baseline", str(base), "-f", "json"])
    report = json.loads(out)
    assert len(report["stale_baseline"]) == 1 and "stale" in " ".join(report["notes"])


# -- PR mode -----------------------------------------------------------------------------------
def git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    if subprocess.run(["git", "--version"], capture_output=True).returncode != 0:
        pytest.skip("git is not installed")
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "config", "user.email", "t@example.com")
    git(tmp_path, "config", "user.name", "t")
    return tmp_path


def test_diff_base_reports_only_new_findings(repo):
    doc = outside(coco())
    ann = repo / "data" / "ann.json"
    ann.parent.mkdir()
    ann.write_text(json.dumps(doc, indent=2))
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "base")
    # the PR: insert annotations at the top (every line moves) and add one new problem
    doc["annotations"].insert(0, {"id": 50, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "area": 25})
    doc["annotations"].append({"id": 51, "image_id": 1, "category_id": 1, "bbox": [0, 40, 5, 20], "area": 100})
    ann.write_text(json.dumps(doc, indent=2))
    code, out = run(["check", "data/ann.json", "--diff-base", "main", "-f", "json"], cwd=repo)
    report = json.loads(out)
    assert code == 1
    assert [(f["code"], f["annotation_id"]) for f in report["findings"]] == [("LL105", 51)]
    assert report["summary"]["hidden"] == 1
    assert report["findings"][0]["path"] == "data/ann.json"
    # a file that is new in the PR: all its findings are new
    (repo / "data" / "new.json").write_text(json.dumps(outside(coco())))
    code, out = run(["check", "data/new.json", "--diff-base", "main", "-f", "json"], cwd=repo)
    assert len(json.loads(out)["findings"]) == 1
    code, out = run(["check", "data/ann.json", "--diff-base", "no-such-ref"], cwd=repo)
    assert code == 2 and "unknown git ref" in out


# -- rule docs ---------------------------------------------------------------------------------
def test_rules_and_rule_commands_print_the_modules_own_words():
    code, out = run(["rules", "--format", "json"])
    listed = json.loads(out)
    assert [r["code"] for r in listed] == [r.code for r in registry.all_rules()]
    for r in listed:
        assert r["severity"] in ("error", "warning", "info") and r["fix"] in ("none", "safe", "unsafe")
    rule = registry.by_code()["LL105"]
    code, out = run(["rule", "ll105"])
    assert code == 0 and "tolerance_px" in out and rule.summary in out and "Why it matters" in out


def test_readme_rule_table_matches_the_rule_modules():
    readme = (REPO / "README.md").read_text()
    m = re.search(r"<!-- rules:start -->\n(.*?)<!-- rules:end -->", readme, re.S)
    assert m, "README.md lacks the generated rule table markers"
    assert m.group(1) == rules_markdown(registry.all_rules()), \
        "README rule table is stale: run `python scripts/update_readme.py`"


def test_every_rule_documents_itself():
    for rule in registry.all_rules():
        for title in registry.DOC_SECTIONS:
            assert rule.section(title), f"{rule.code} lacks '## {title}'"
        ex = rule.examples()
        assert ex["bad"] and ex["good"], f"{rule.code} lacks bad/good examples"
