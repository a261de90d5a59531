"""The CI reporters: GitLab Code Quality, JUnit XML and Markdown.

Each on a real run of the CLI over small COCO files with defects (GitLab's schema and Jenkins'
JUnit XSD, vendored in tests/data), and on hand-made results for what a run rarely gives: raw
hostile text in a message, shared fingerprints, a megabyte of text, thousands of findings.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from markdown_it import MarkdownIt

from conftest import coco
from labellint.cli import cli
from labellint.findings import Finding, Severity, rank
from labellint.report import gitlab, junit, markdown
from labellint.report import markdown_safe as md
from labellint.report import registry as reporters
from labellint.run import FileOutcome, Result

DATA = Path(__file__).parent / "data"
# what strangers put in class and file names; every reporter must keep it inert
HOSTILE = ("</failure>]]><![CDATA[x]]>\x00\x01\x07\x08\x0b\x0c\x1f\x7f\x1b[31mred\x1b[0m \u202e\u2028\u2029 "
           "@octocat #123 <img src=x onerror=alert(1)> <script>alert(1)</script> | a | `tick` ``two`` "
           "[link](https://evil.example) ![img](https://evil.example/x.png) www.evil.example &amp;\n\n# heading\n| x |"
           "\ufffe\uffff")
RAW_CONTROLS = ("\x00", "\x01", "\x1b", "\x7f", "\u202e", "\u2028", "\u2029")
# a file name a pull request can add (no "/" or NUL): markup, a mention, an issue, ANSI, bidi, newline
HOSTILE_FILE = "x<img src=x>]]>\x1b[31m @octocat #12 |`t`\u202e\n[a](https:evil)&amp;.json"
GITHUB = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "octo/data",
          "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567"}


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout


@pytest.fixture
def dataset(tmp_path, monkeypatch):
    """ann.json (an unknown category, a box outside its image, two classes on one box: one of
    them hostile), clean.json (no findings) and bad.json (not JSON), in the current folder."""
    monkeypatch.chdir(tmp_path)
    doc = coco()
    doc["categories"][1]["name"] = HOSTILE
    doc["annotations"][1]["bbox"] = [60, 5, 20, 10]  # LL105, error
    doc["annotations"][0]["category_id"] = 42  # LL012, error
    doc["annotations"] += [{"id": 3, "image_id": 1, "category_id": 1, "bbox": [30, 30, 5, 5], "area": 25},
                           {"id": 4, "image_id": 1, "category_id": 2, "bbox": [30, 30, 5, 5], "area": 25}]  # LL202
    (tmp_path / "ann.json").write_text(json.dumps(doc, indent=2))
    (tmp_path / "clean.json").write_text(json.dumps(coco(), indent=2))
    (tmp_path / "bad.json").write_text('{"images": [\n  {"id": 1,,}\n]}')
    return tmp_path


def _hostile_finding(**kw) -> Finding:
    """A finding whose message and suggestion carry raw hostile text (as a plugin may write them),
    the message a lone surrogate too (not UTF-8: a file name read with surrogateescape)."""
    fields = dict(code="LL202", name="conflicting-labels", severity=Severity.WARNING,
                  message="class " + HOSTILE + "\udc80", suggestion="rename " + HOSTILE, path="data/a.json",
                  pointer="/annotations/0", line=7, column=3, fingerprint="f" * 32)
    return Finding(**{**fields, **kw})


# -- GitLab Code Quality ---------------------------------------------------------------------------

def _gitlab_issues(text: str) -> list:
    jsonschema = pytest.importorskip("jsonschema")
    issues = json.loads(text)
    assert isinstance(issues, list)  # the report is an array of issues
    validator = jsonschema.Draft7Validator(json.loads((DATA / "gitlab/codeclimate.json").read_text()))
    for issue in issues:
        assert not list(validator.iter_errors(issue)), issue
        # what GitLab's documentation asks beyond its schema
        assert issue["severity"] in ("info", "minor", "major", "critical", "blocker")
        assert issue["check_name"] and issue["location"]["path"] and issue["location"]["lines"]["begin"] >= 1
    fingerprints = [i["fingerprint"] for i in issues]
    assert len(set(fingerprints)) == len(fingerprints)  # GitLab shows issues sharing one as one
    return issues


def test_gitlab_report_validates_and_maps_severities(dataset):
    code, out = run("check", "ann.json", "clean.json", "bad.json", "-f", "gitlab")
    assert code == 2  # bad.json could not be read
    issues = _gitlab_issues(out)
    by_check = {i["check_name"]: i for i in issues}
    assert sorted(by_check) == ["LL012", "LL105", "LL202", "run-error"]
    assert (by_check["LL105"]["severity"], by_check["LL202"]["severity"]) == ("major", "minor")
    blocker = by_check["run-error"]
    assert blocker["severity"] == "blocker" and blocker["location"] == {"path": "bad.json", "lines": {"begin": 2}}
    # the findings keep labellint's fingerprints (line-independent) and their lines
    _, doc = run("check", "ann.json", "-f", "json")
    for f in json.loads(doc)["findings"]:
        issue = by_check[f["code"]]
        assert issue["fingerprint"] == f["fingerprint"] and issue["location"]["lines"]["begin"] == f["line"]
    assert not any(c in out for c in RAW_CONTROLS)


def test_gitlab_fingerprints_are_unique_where_findings_share_one():
    same = [_hostile_finding(line=n, message=f"m{n}") for n in (1, 2, 3)]
    same.append(_hostile_finding(line=2, message="m2"))  # the same location and message again
    blank = [_hostile_finding(fingerprint="", message="a"), _hostile_finding(fingerprint="", message="b")]
    text = gitlab.render(Result(findings=same + blank))
    issues = _gitlab_issues(text)
    assert len(issues) == 6 and issues[0]["fingerprint"] == "f" * 32
    assert all(re.fullmatch(r"[0-9a-f]{32}", i["fingerprint"]) for i in issues)
    assert gitlab.render(Result(findings=same + blank)) == text  # stable from run to run
    assert issues[0]["location"] == {"path": "data/a.json", "lines": {"begin": 1}}
    nowhere = _hostile_finding(line=None, column=None)
    assert _gitlab_issues(gitlab.render(Result(findings=[nowhere])))[0]["location"]["lines"]["begin"] == 1


def test_gitlab_description_is_text_without_controls():
    issue = _gitlab_issues(gitlab.render(Result(findings=[_hostile_finding()])))[0]
    assert issue["description"].startswith("class </failure>]]>") and "(suggestion: rename " in issue["description"]
    assert "\\x1b[31m" in issue["description"] and "\\n\\n# heading" in issue["description"]
    assert not any(c in issue["description"] for c in RAW_CONTROLS + ("\n",))
    assert "content" not in issue  # the Markdown field GitLab may render is never written


# -- JUnit XML -------------------------------------------------------------------------------------

def _junit(text: str):
    """The report checked against Jenkins' junit-10.xsd, and parsed by junitparser."""
    etree = pytest.importorskip("lxml.etree")
    junitparser = pytest.importorskip("junitparser")
    schema = etree.XMLSchema(etree.parse(str(DATA / "junit/junit-10.xsd")))
    doc = etree.fromstring(text.encode("utf-8"))  # strict: any character XML cannot hold fails here
    schema.assertValid(doc)
    return junitparser.JUnitXml.fromstring(text.encode("utf-8"))


def _outcomes(case) -> list[str]:
    return [type(r).__name__ for r in case.result]


def test_junit_report_has_a_suite_per_file(dataset):
    code, out = run("check", "ann.json", "clean.json", "bad.json", "-f", "junit")
    assert code == 2
    suites = {s.name: s for s in _junit(out)}
    assert list(suites) == ["ann.json", "clean.json", "bad.json"]
    ann, clean, bad = suites.values()
    assert (ann.tests, ann.failures, ann.errors) == (3, 3, 0)
    names = sorted(c.name for c in ann)
    assert [n.split(" at ")[0] for n in names] == ["LL012 unknown-category", "LL105 bbox-outside-image",
                                                   "LL202 conflicting-labels"]
    assert all(re.search(r" at \d+:\d+$", n) for n in names)
    for case in ann:
        (failure,) = case.result
        assert type(failure).__name__ == "Failure" and failure.type == case.name.split()[0]
        assert case.classname == "ann.json" and failure.message and "fingerprint: " in failure.text
    # a file without findings shows up green
    assert (clean.tests, clean.failures, clean.errors) == (1, 0, 0)
    assert [(c.name, _outcomes(c)) for c in clean] == [("no findings", [])]
    # the file that could not be read is an error, with where it broke
    (case,) = bad
    (error,) = case.result
    assert type(error).__name__ == "Error" and error.type == "run-error" and error.message.startswith("bad.json:2:")
    assert bad.errors == 1


def test_junit_keeps_hostile_text_as_text():
    f = _hostile_finding()
    skipped = FileOutcome("\x1b[2Jlink\u2028.json", "skipped", "a FIFO " + HOSTILE)
    text = junit.render(Result(findings=[f], files=[FileOutcome("data/a.json", "linted"), skipped]))
    xml = _junit(text)
    (suite, other) = xml
    (case,) = suite
    (failure,) = case.result
    assert failure.message.startswith("class </failure>]]><![CDATA[x]]>")  # characters, not structure
    assert "<img src=x onerror=alert(1)>" in failure.text and "\\x1b[31m" in failure.text
    assert not any(c in text for c in RAW_CONTROLS)
    assert text.count("<failure ") == 1 and "<img" not in text and "<script" not in text
    assert other.name == "\\x1b[2Jlink\\u2028.json" and _outcomes(next(iter(other))) == ["Skipped"]


def test_junit_error_before_the_run_is_one_document(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ann.json").write_text(json.dumps(coco()))
    code, out = run("check", "ann.json", "--select", "LL999", "-f", "junit")
    assert code == 2
    (suite,) = _junit(out)  # an error about no file: the suite of the run
    assert suite.name == "labellint" and suite.errors == 1
    (error,) = next(iter(suite)).result
    assert "LL999" in error.message
    code, out = run("check", "absent.json", "-f", "junit")
    (suite,) = _junit(out)  # a file that is not there: its own suite
    assert code == 2 and suite.name == "absent.json" and suite.errors == 1


def test_every_file_a_broken_config_stops_is_an_error(dataset):
    (dataset / "labellint.toml").write_text("bogus = 1\n")  # one message for both files
    code, out = run("check", "ann.json", "clean.json", "-f", "junit")
    suites = list(_junit(out))
    assert code == 2 and [(s.name, s.errors, s.tests) for s in suites] == [("ann.json", 1, 1), ("clean.json", 1, 1)]
    _, out = run("check", "ann.json", "clean.json", "-f", "gitlab")
    issues = _gitlab_issues(out)
    assert [(i["severity"], i["location"]["path"]) for i in issues] == [("blocker", "ann.json"),
                                                                        ("blocker", "clean.json")]


def test_a_hostile_file_name_stays_text_in_every_format(dataset):
    (dataset / HOSTILE_FILE).write_text((dataset / "ann.json").read_text())
    _, out = run("check", HOSTILE_FILE, "-f", "junit")
    (suite,) = _junit(out)
    assert suite.name == "x<img src=x>]]>\\x1b[31m @octocat #12 |`t`\\u202e\\n[a](https:evil)&amp;.json"
    _, out = run("check", HOSTILE_FILE, "-f", "gitlab")
    assert {i["location"]["path"] for i in _gitlab_issues(out)} == {HOSTILE_FILE}  # GitLab links to the file
    _, out = run("check", HOSTILE_FILE, "-f", "markdown")
    hrefs = re.findall(r'href="([^"]*)"', _assert_inert(out))
    assert hrefs and all(re.fullmatch(r"x%3Cimg[\w%.]+\.json#L\d+", h) for h in hrefs)  # one percent-encoded path


# -- Markdown --------------------------------------------------------------------------------------

def _html(text: str) -> str:
    """CommonMark with GitHub's tables and raw HTML on: markup that got through would show."""
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(text)


def _assert_inert(text: str, links: str = r"[^\"]*\.json#L\d+") -> str:
    """No raw controls; rendered, no HTML, images, or links but ours; outside code spans no
    mention, issue reference or URL that GitHub would autolink. Returns the HTML."""
    assert not any(c in text for c in RAW_CONTROLS)
    html = _html(text)
    assert "<img" not in html and "<script" not in html and "<h1" not in html
    for href in re.findall(r'<a href="([^"]*)"', html):
        assert re.fullmatch(links, href), href
    prose = re.sub(r"<code>.*?</code>", "", html, flags=re.S)
    assert not re.search(r"@\w|#\d|https?://|www\.", re.sub(r'href="[^"]*"', "", prose)), prose
    return html


def _rows(html: str, cells: int) -> None:
    for row in re.findall(r"<tr>(.*?)</tr>", html, flags=re.S):
        assert row.count("<td") + row.count("<th") == cells, row


def _gfm_cells(row: str) -> int:
    """The cells GitHub sees in a table row: cmark-gfm splits at every pipe that no backslash
    directly precedes, inside code spans too (markdown-it-py does not: it keeps code spans whole)."""
    return len(re.split(r"(?<!\\)\|", row.strip())) - 2


def test_markdown_report_summarises_and_links_to_lines(dataset, monkeypatch):
    for key in GITHUB:
        monkeypatch.delenv(key, raising=False)
    code, out = run("check", "ann.json", "clean.json", "-f", "markdown")
    assert code == 1 and out.startswith("## labellint: 2 errors, 1 warning\n")
    html = _assert_inert(out)
    assert "| 2 | 0 | 0 | 3 | 2 | 1 | 0 | 0 |" in out  # files linted, ..., findings, error, warning, info
    assert re.search(r"\| `LL105` \| bbox\\-outside\\-image \| error \| 1 \|", out)
    tables = html.split("<table>")[1:]
    assert len(tables) == 2
    _rows(tables[0], 8)
    _rows(tables[1], 4)
    lines = re.findall(r'<a href="ann\.json#L(\d+)"><code>ann\.json#L(\d+)</code></a>', html)
    assert len(lines) == 3 and all(a == b for a, b in lines)
    # in GitHub Actions the links are absolute, to the commit
    for key, value in GITHUB.items():
        monkeypatch.setenv(key, value)
    _, out = run("check", "ann.json", "-f", "markdown", "--limit", "1")
    base = "https://github.com/octo/data/blob/0123456789abcdef0123456789abcdef01234567/"
    html = _assert_inert(out, re.escape(base) + r"ann\.json#L\d+")
    assert html.count(f'<a href="{base}ann.json#L') == 1
    assert out.rstrip().endswith("_2 more findings not shown (`--limit 1`; `--limit 0` lists as many as fit); "
                                 "`--output-format json` lists them all._")


def test_markdown_ignores_github_variables_that_do_not_look_like_github():
    env = {**GITHUB, "GITHUB_SERVER_URL": "javascript:alert(1)//"}
    assert markdown.blob_base(env) is None
    assert markdown.blob_base({**GITHUB, "GITHUB_REPOSITORY": "o/r)](https://evil"}) is None
    assert markdown.blob_base(GITHUB) == "https://github.com/octo/data/blob/0123456789abcdef0123456789abcdef01234567/"
    out = markdown.render(Result(findings=[_hostile_finding()]), env=env)
    assert '<a href="data/a.json#L7">' in _assert_inert(out)


def test_markdown_keeps_hostile_text_inert_and_shown():
    f = _hostile_finding()
    errors = ["bad.json:1:1: " + HOSTILE]
    result = Result(findings=[f, _hostile_finding(name="<b>" + HOSTILE, code="ZZ|9")], errors=errors,
                    files=[FileOutcome("bad.json", "error", errors[0]), FileOutcome(HOSTILE, "skipped", HOSTILE)],
                    notes=["note " + HOSTILE])
    out = markdown.render(result, env={})
    html = _assert_inert(out)
    _rows(html.split("<table>")[1], 8)
    _rows(html.split("<table>")[2], 4)  # a pipe in a rule's name or code does not add a cell
    assert [_gfm_cells(r) for r in out.splitlines() if r.startswith("|")] == [8, 8, 8, 4, 4, 4, 4]
    codes = re.findall(r"<code>(.*?)</code>", html, flags=re.S)
    shown = "class &lt;/failure&gt;]]&gt;&lt;![CDATA[x]]&gt;\\x00\\x01"
    assert any(c.startswith(shown) for c in codes)  # the text is there, verbatim but for the escapes
    assert any("`tick` ``two``" in c for c in codes)


@pytest.mark.parametrize("s", ["plain", "`", "a`b", "``x``", "`lead", "trail`", " pad ", "a|b", "\\", "<img>",
                               "[x](y)", "*em* _u_", "\x1b[31m", "line\nbreak", "&amp;", "   "])
def test_code_spans_show_any_text_verbatim(s):
    from labellint.report.safe import clean

    html = _html(f"x {md.code(s)} y")
    (content,) = re.findall(r"<code>(.*?)</code>", html, flags=re.S)
    expected = clean(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert content == expected or (not s.strip() and content.strip() == "")
    row = f"| {md.cell(s)} | z |"
    _rows(_html(f"| a | b |\n|---|---|\n{row}\n"), 2)
    assert _gfm_cells(row) == 2
    if s.strip():
        assert _html(md.text(s)).count("<") == 2  # one paragraph: <p> and </p>, nothing else


def test_links_only_to_http_or_relative_urls():
    assert md.link("a.json#L3", "a.json#L3") == "[`a.json#L3`](a.json#L3)"
    assert md.link("x", "https://h/p q(1).json#L2") == "[`x`](https://h/p%20q%281%29.json#L2)"
    for url in ("javascript:alert(1)", "data:text/html,x", "//evil.example/x", "JaVaScRiPt:x"):
        assert md.link("x", url) == "`x`"


def test_markdown_is_capped_for_hostile_input():
    huge = "@octocat <img src=x> " + "B" * 1_000_000
    findings = rank([_hostile_finding(message=huge, suggestion=huge, path=f"d/{i}.json",
                                      fingerprint=f"{i:032x}") for i in range(3000)])
    out = markdown.render(Result(findings=findings, files=[FileOutcome("d/0.json", "linted")]), limit=0, env={})
    assert len(out.encode("utf-8")) <= md.MAX_BYTES
    shown = out.count("\n- **warning**")
    m = re.search(r"_(\d+) more findings not shown \(the report is capped at 60,000 bytes", out)
    assert m and 0 < shown < 3000 and int(m.group(1)) + shown == 3000
    assert out.endswith("lists them all._\n") and "B" * 301 not in out
    _assert_inert(out)
    # a report that fits is whole, with no note
    assert "not shown" not in markdown.render(Result(findings=findings[:3]), limit=0, env={})


def test_capped_drops_blocks_from_the_end_for_its_note():
    blocks = ["a" * 10, "b" * 10, "c" * 10]
    assert md.capped(blocks, lambda n: f"[{n}]" if n else "", limit=30) == "a" * 10 + "b" * 10 + "c" * 10
    assert md.capped(blocks, lambda n: f"[{n}]" if n else "", limit=29) == "a" * 10 + "b" * 10 + "[1]"
    assert md.capped(blocks, lambda n: f"[{n}]", limit=5) == "[3]"
    assert md.capped(["é" * 10], lambda n: "!" * n, limit=15) == "!"  # bytes, not characters


# -- the registry ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["gitlab", "junit", "markdown"])
def test_the_ci_formats_are_offered_on_stdout_or_a_file(dataset, fmt):
    reporter = reporters.get(fmt)
    assert reporter.owns_stdout and not reporter.keep_datasets
    assert reporters.names().index(fmt) > reporters.names().index("html")
    code, out = run("check", "ann.json", "-f", fmt, "-o", "report.out")
    assert code == 1 and "Findings (ranked" in out  # the terminal gets the text report
    _, alone = run("check", "ann.json", "-f", fmt)
    written = (dataset / "report.out").read_text()
    assert written == alone and "LL105" in written
