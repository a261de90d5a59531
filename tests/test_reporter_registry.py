"""The reporter registry: --output-format offers what is registered, and `check` renders every
reporter through one path that follows its declared output; rule docs are parsed once; SARIF
describes the rules the result carries; the gallery locates entries by section and row."""

from __future__ import annotations

import io
import json

import pytest
from click.testing import CliRunner
from rich.console import Console

from conftest import coco
from labellint import registry
from labellint.cli import cli
from labellint.coco import load
from labellint.findings import Finding, Severity
from labellint.report import html, ruledoc, sarif
from labellint.report import registry as reporters
from labellint.report.registry import FILE, ReportOptions, Reporter
from labellint.run import FileOutcome, Result

# one finding in the default selection: annotation 2's box reaches past its 64 px wide image
OUTSIDE = coco(annotations=[{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 10], "area": 100},
                            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [60, 5, 20, 10], "area": 200}])


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _counts(result, options: ReportOptions) -> str:
    return f"{len(result.findings)} findings, {len(result.errors)} errors, exit {options.exit_code}\n"


@pytest.fixture
def register():
    """register(Reporter) for the length of one test."""
    added = []

    def add(reporter: Reporter) -> Reporter:
        added.append(reporters.register(reporter).name)
        return reporter

    yield add
    for name in added:
        reporters.unregister(name)


def _format_option():
    return next(p for p in cli.commands["check"].params if p.name == "output_format")


def test_output_format_choices_are_the_registry():
    assert reporters.names()[:5] == ("text", "json", "sarif", "github", "html")
    assert tuple(_format_option().type.choices) == reporters.names()


def test_a_registered_reporter_is_offered_and_rendered_on_stdout(register, write_coco):
    path = write_coco(OUTSIDE)
    register(Reporter("counts", _counts))
    assert "counts" in _format_option().type.choices
    code, out, _ = run("check", path, "-f", "counts")
    assert code == 1 and out == "1 findings, 0 errors, exit 1\n"  # the document alone: no text report
    # a run that did not start is still one document on stdout
    code, out, err = run("check", path.parent / "absent", "-f", "counts")
    assert code == 2 and out == "0 findings, 1 errors, exit 2\n" and "labellint: error:" in err
    code, out, _ = run("check", path, "-f", "counts", "--exit-zero", "-o", path.parent / "c.txt")
    assert code == 0 and (path.parent / "c.txt").read_text() == "1 findings, 0 errors, exit 0\n"
    assert "Findings (ranked" in out  # with -o the terminal gets the text report
    reporters.unregister("counts")
    assert "counts" not in _format_option().type.choices
    assert run("check", path, "-f", "counts")[0] == 2  # a usage error, as for any unknown value


def test_a_reporter_beside_the_text_report_and_one_that_needs_a_file(register, write_coco):
    path = write_coco(OUTSIDE)
    register(Reporter("annotations", _counts, text_too=True))
    code, out, _ = run("check", path, "-f", "annotations")
    assert out.startswith("1 findings, 0 errors, exit 1\n") and "Findings (ranked" in out
    register(Reporter("page", _counts, output=FILE, file_hint="PAGE.txt", written="page"))
    code, _, err = run("check", path, "-f", "page")
    assert code == 2 and "--output-format page needs --output-file PAGE.txt" in err
    code, out, err = run("check", path, "-f", "page", "-o", path.parent / "p.txt")
    assert (path.parent / "p.txt").read_text() == "1 findings, 0 errors, exit 1\n"
    assert "page written to" in err and "(1 finding)" in err and "Findings (ranked" in out


def test_rule_docs_are_parsed_once_per_rule(write_coco, monkeypatch):
    parsed = []
    real = ruledoc.doc_sections
    monkeypatch.setattr(ruledoc, "doc_sections", lambda doc: parsed.append(doc) or real(doc))
    ruledoc._parsed.cache_clear()
    rules = registry.all_rules()
    result = Result(rules=rules)
    first = sarif.render(result)
    assert sarif.render(result) == first
    assert len(parsed) == len({r.doc for r in rules})
    ruledoc._parsed.cache_clear()


def test_sarif_describes_the_rules_the_result_carries():
    rule = registry.Rule("ZZ901", "from-a-plugin", Severity.INFO, {}, "none", "A plugin rule.\n\n## What it does\n"
                         "Checks something.\n", check=lambda ds, options: [], origin="plugin")
    f = Finding("ZZ901", "from-a-plugin", Severity.INFO, "m", "a.json", "", 1, 1, fingerprint="0" * 32)
    run_ = json.loads(sarif.render(Result(findings=[f], rules=[rule])))["runs"][0]
    assert [r["id"] for r in run_["tool"]["driver"]["rules"]] == ["ZZ901"]
    assert run_["tool"]["driver"]["rules"][0]["fullDescription"]["text"] == "Checks something."
    assert run_["results"][0]["ruleIndex"] == 0


def test_the_gallery_locates_entries_by_section_and_row(write_coco):
    path = write_coco(OUTSIDE)
    ds = load(path, "ann.json")

    def card(section, row, pointer=""):
        f = Finding("LL105", "x", Severity.ERROR, "m", "ann.json", pointer, 1, 1, fingerprint="1" * 32,
                    section=section, row=row)
        result = Result(findings=[f], files=[FileOutcome("ann.json", "linted")], datasets={"ann.json": ds})
        text = html.render(result, console=Console(file=io.StringIO()))
        blob = text.split('id="labellint-data">', 1)[1].split("</script>", 1)[0]
        return json.loads(blob)["findings"][0]

    assert card("annotations", 1)["ann"] == 1 and card("annotations", 1)["aid"] == 2  # the pointer is not read
    assert card("annotations", 2, "/annotations/2")["ann"] is None  # past the end of the section
    assert card("annotations", 1, "/annotations/0")["ann"] == 1  # the entry the finding carries wins
    assert card("categories", 0)["cls"] == "cat" and card("images", 1)["img"] is not None
