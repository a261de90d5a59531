"""Reporters: JSON schema, SARIF 2.1.0 validity and caps, GitHub escaping, text escaping."""

import gzip
import json

import pytest
from click.testing import CliRunner

from conftest import coco
from labellint.cli import cli
from labellint.findings import Finding, Severity
from labellint.report import github, sarif
from labellint.run import Result

HOSTILE = "[bold red]evil[/] \x1b[31mred\x1b[0m \u202eabc\n::warning::x\u2028::error::y\u2029z\u200f"
INVISIBLE = ("\x1b", "\u202e", "\u2028", "\u2029", "\u200f")  # none may reach an output raw


def run(args):
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def broken(write_coco):
    doc = coco()
    doc["categories"][1]["name"] = HOSTILE
    doc["annotations"][1]["bbox"] = [60, 5, 20, 10]  # outside
    doc["annotations"][0]["category_id"] = 42  # unknown category
    doc["annotations"].append({"id": 3, "image_id": 1, "category_id": 1, "bbox": [30, 30, 5, 5], "area": 25})
    return write_coco(doc, indent=2)


def test_json_output_schema(broken):
    code, out = run(["check", str(broken), "--output-format", "json"])
    doc = json.loads(out)
    assert code == 1 and doc["version"] == 1 and doc["summary"]["exit_code"] == 1
    assert doc["summary"]["by_severity"]["error"] == 2
    keys = {"code", "name", "severity", "message", "path", "pointer", "line", "column", "image_id",
            "annotation_id", "category_id", "score", "suggestion", "fingerprint", "fix"}
    for f in doc["findings"]:
        assert keys <= set(f)
    codes = [f["code"] for f in doc["findings"]]
    assert sorted(codes) == ["LL012", "LL105"]
    f = next(f for f in doc["findings"] if f["code"] == "LL012")
    assert (f["annotation_id"], f["image_id"], f["category_id"], f["pointer"]) == (1, 1, 42, "/annotations/0")
    assert f["suggestion"] is None and isinstance(f["line"], int)


def _sarif_validator(shared):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((shared / "data/sarif/sarif-schema-2.1.0.json").read_text())
    return jsonschema.Draft4Validator(schema)


def test_sarif_validates_and_carries_fingerprints(broken, shared, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "r.sarif"
    code, text = run(["check", str(broken), "-f", "sarif", "-o", str(out)])
    assert code == 1
    doc = json.loads(out.read_text())
    errors = sorted(_sarif_validator(shared).iter_errors(doc), key=str)
    assert not errors, errors[:3]
    runobj = doc["runs"][0]
    results = runobj["results"]
    assert {r["ruleId"] for r in results} == {"LL012", "LL105"}
    rule_ids = [r["id"] for r in runobj["tool"]["driver"]["rules"]]
    for r in results:
        assert rule_ids[r["ruleIndex"]] == r["ruleId"]
        assert len(r["partialFingerprints"]["primaryLocationLineHash"]) == 32
        loc = r["locations"][0]
        assert not loc["physicalLocation"]["artifactLocation"]["uri"].startswith("/")
        assert loc["logicalLocations"][0]["fullyQualifiedName"].startswith("/annotations/")
        assert "annotation_id" in r["properties"]
    # the text report still went to the terminal
    assert "LL105" in text


def _result_with(n):
    findings = [Finding("LL105", "bbox-outside-image", Severity.ERROR if i % 2 else Severity.WARNING,
                        f"message {i} " + "x" * 50, "data/a.json", f"/annotations/{i}", i + 1, 5,
                        annotation_id=i, score=(i % 100) / 100, fingerprint=f"{i:032x}") for i in range(n)]
    from labellint.findings import rank
    return Result(findings=rank(findings))


def test_sarif_is_capped_under_github_limits_with_a_note(shared):
    result = _result_with(6000)
    doc = json.loads(sarif.render(result))
    assert not list(_sarif_validator(shared).iter_errors(doc))
    runobj = doc["runs"][0]
    assert len(runobj["results"]) == 5000 and runobj["properties"]["capped"]
    notes = [n["message"]["text"] for n in runobj["invocations"][0]["toolExecutionNotifications"]]
    assert any("6000 findings; the 5000 highest-ranked" in n for n in notes)
    # the kept ones are the top-ranked: every error before any warning
    assert all(r["level"] == "error" for r in runobj["results"][:3000])


def test_sarif_shrinks_when_gzip_limit_is_exceeded(monkeypatch):
    monkeypatch.setattr(sarif, "MAX_GZIP_BYTES", 20_000)
    text = sarif.render(_result_with(3000))
    assert len(gzip.compress(text.encode())) <= 20_000
    assert json.loads(text)["runs"][0]["properties"]["capped"]


def test_github_annotations_escape_data():
    f = Finding("LL012", "unknown-category", Severity.ERROR, "bad: " + HOSTILE, "d/a,b.json", "/annotations/0", 3, 4)
    out = github.render(Result(findings=[f]))
    assert out.count("\n") == 1  # one command, the newline in the message cannot start another
    assert out.startswith("::error file=d/a%2Cb.json,line=3,col=4,title=LL012 unknown-category::")
    assert not any(c in out for c in INVISIBLE)


def test_github_format_prints_text_report_too(broken):
    code, out = run(["check", str(broken), "-f", "github"])
    assert "::error file=" in out and "Findings (ranked" in out


def test_text_report_prints_markup_and_escapes_literally(broken):
    doc = json.loads(broken.read_text())
    doc["annotations"][0]["category_id"] = 2  # now the hostile class is used: no LL012
    doc["annotations"].append({"id": 3, "image_id": 1, "category_id": 9, "bbox": [1, 1, 1, 1]})
    doc["images"][0]["file_name"] = HOSTILE
    broken.write_text(json.dumps(doc))
    code, out = run(["check", str(broken)])
    assert not any(c in out for c in INVISIBLE)


def test_text_report_escapes_hostile_messages():
    from io import StringIO

    from rich.console import Console

    from labellint.report import text as text_report

    f = Finding("LL012", "unknown-category", Severity.ERROR, "class " + HOSTILE, "a.json", "/annotations/0", 3, 4)
    buf = StringIO()
    console = Console(file=buf, force_terminal=True, width=300, markup=False)
    text_report.render(Result(findings=[f]), console)
    out = buf.getvalue()
    assert "[bold red]evil[/]" in out  # markup printed literally
    assert "\\x1b[31mred" in out  # the escape shown, not executed
    assert "\\u202e" in out and "\u202e" not in out
