"""JUnit XML: findings as failed tests, for CI test-report views (GitLab ``artifacts:reports:junit``,
Jenkins, Azure DevOps, GitHub test-report actions).

``<testsuites>`` holds one ``<testsuite>`` per file (its name the repository-relative path, with
``tests``, ``failures``, ``errors`` and ``skipped`` counts), in the order the files were read:

- each finding is a ``<testcase>`` (classname the path, name ``CODE rule-name at LINE:COL``) with
  a ``<failure message="message (suggestion)" type="CODE">`` whose text gives the severity, the
  location, the JSON pointer, the message, the suggestion and the fingerprint. Every finding is a
  failure whatever its severity (the severity is in the text): the exit code, not this report,
  says whether the run fails.
- a file without findings gets one passing testcase, ``no findings``, so it shows up green;
- a file that could not be linted (unreadable, not JSON, a broken config: exit 2) gets an
  ``<error type="run-error">``; one skipped when a folder was searched, a ``<skipped>``;
- an error about no file (an input that does not exist) is a testcase of a suite named
  ``labellint``.

The shape is that of Jenkins' ``junit-10.xsd`` (vendored in ``tests/data/junit``, where the tests
validate against it). Dataset text is text: ElementTree escapes ``<``, ``&`` and quotes, so
``</failure>`` or ``]]>`` in a class name stays characters; control characters (ANSI, bidi,
U+2028) are shown as escapes by :func:`labellint.report.safe.clean`, and what XML 1.0 cannot hold
at all (other C0 controls, surrogates, U+FFFE/U+FFFF) is removed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from labellint.report.common import described, run_errors
from labellint.report.safe import clean

RUN_SUITE = "labellint"  # the suite of errors about no file
RUN_ERROR = "run-error"  # the type of a run error
PASSED = "no findings"
LINTED = "lint the file"  # the testcase of a file that was not linted (an error, or skipped)

# not a Char of XML 1.0 (https://www.w3.org/TR/xml/#charsets)
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(s) -> str:
    """One line of untrusted text, safe as XML character data or an attribute value."""
    return _NOT_XML.sub("", clean(s))


def _lines(*lines) -> str:
    return "\n".join(_x(line) for line in lines if line)


def report(result, options) -> str:
    return render(result)


def render(result) -> str:
    suites: dict[str, list[ET.Element]] = {}
    for outcome in result.files:
        cases = suites.setdefault(outcome.path, [])
        if outcome.status == "skipped":
            _case(cases, outcome.path, LINTED, "skipped", message=_x(outcome.note))
    for err in run_errors(result):
        path = err.path or RUN_SUITE
        _case(suites.setdefault(path, []), path, LINTED, "error", _x(err.text), err.line, message=_x(err.text),
              type=RUN_ERROR)
    for f in result.findings:
        where = f"{f.line}:{f.column or 1}" if f.line is not None else "the file"
        details = _lines(f"{f.severity} {f.code} {f.name}", f"{f.location()} {f.pointer}", f.message,
                         f.suggestion and f"suggestion: {f.suggestion}",
                         f.fingerprint and f"fingerprint: {f.fingerprint}")
        _case(suites.setdefault(f.path, []), f.path, f"{f.code} {f.name} at {where}", "failure", details,
              f.line, message=_x(described(f)), type=_x(f.code))

    root = ET.Element("testsuites", name="labellint")
    totals = dict.fromkeys(("tests", "failures", "errors"), 0)
    for path, cases in suites.items():
        if not cases:
            _case(cases, path, PASSED)
        counts = {"tests": len(cases)}
        for kind, attr in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
            counts[attr] = sum(1 for c in cases if c.find(kind) is not None)
        suite = ET.SubElement(root, "testsuite", name=_x(path), **{k: str(v) for k, v in counts.items()})
        suite.extend(cases)
        for k in totals:
            totals[k] += counts[k]
    root.attrib.update({k: str(v) for k, v in totals.items()})
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _case(cases: list, path: str, name: str, outcome: str | None = None, details: str = "", line: int | None = None,
          **attrs) -> None:
    """Append a testcase of ``path`` named ``name`` (at ``line``); ``outcome`` ("failure", "error",
    "skipped") adds that element with ``attrs`` and ``details`` as its text."""
    case = ET.Element("testcase", classname=_x(path), name=_x(name), file=_x(path))
    if line is not None:
        case.set("line", str(line))
    if outcome is not None:
        ET.SubElement(case, outcome, attrs).text = details or None
    cases.append(case)
