"""GitLab Code Quality report: what ``artifacts:reports:codequality`` reads.

A JSON array of Code Climate issues. GitLab checks each one against its schema
(``app/validators/json_schemas/codeclimate.json``, vendored in ``tests/data/gitlab``) and stops
reading the report at the first that fails, so every issue here carries every field it requires.

Decisions:

- ``severity``: labellint's three levels over GitLab's five, keeping room on both sides:
  error -> ``major``, warning -> ``minor``, info -> ``info``. A run error (exit 2: a file that
  could not be read or parsed, or that a broken config stopped) is a ``blocker`` with check
  ``run-error``, one per file (nothing in it was checked), at the line the error names; an error
  about no file (an unknown rule code) is located at ``.``. ``critical`` is not used.
- ``fingerprint``: GitLab keys issues by it (two with one fingerprint show as one, and an issue
  whose fingerprint is gone counts as fixed), so it is labellint's own, which does not depend on
  lines: an issue stays the same issue across edits elsewhere in the file. Where two findings
  share one (a plugin's, or a finding made by hand), the later ones get a fingerprint derived
  from it and from their location and message, then from a counter: every one in the report is
  unique, 32 hex digits.
- ``check_name`` is the rule code (``LL105``); ``description`` the message and suggestion, with
  control characters shown as escapes (GitLab shows it as text); ``location.lines.begin`` the
  finding's line, 1 for a finding about the whole file; ``location.path`` repository-relative.
- ``content`` (Markdown that GitLab may render) is left out: dataset text never reaches it.
- Every issue is ``type: issue``, ``categories: ["Bug Risk"]``, ``engine_name: labellint``.
"""

from __future__ import annotations

import hashlib
import json

from labellint.report.common import described, run_errors
from labellint.report.safe import clean

SEVERITY = {"error": "major", "warning": "minor", "info": "info"}
RUN_ERROR = "blocker"  # a file that could not be linted at all
RUN_ERROR_CHECK = "run-error"  # the check_name of a run error
CATEGORY = "Bug Risk"


def report(result, options) -> str:
    return render(result)


def render(result) -> str:
    taken: set[str] = set()
    issues = [_issue(RUN_ERROR, RUN_ERROR_CHECK, e.text, e.path or ".", e.line,
                     _unique(_hash("error", e.path or "", e.text), taken)) for e in run_errors(result)]
    for f in result.findings:
        own = f.fingerprint or _hash(f.code, f.path, f.pointer, f.message)
        fp = _unique(own, taken, f.path, str(f.line), str(f.column), f.pointer, f.message)
        issues.append(_issue(SEVERITY[str(f.severity)], f.code, described(f), f.path, f.line, fp))
    return json.dumps(issues, indent=1) + "\n"  # ASCII: even a path that is not UTF-8 survives


def _issue(severity: str, check: str, description: str, path: str, line: int | None, fingerprint: str) -> dict:
    return {
        "type": "issue",
        "check_name": clean(check),
        "description": clean(description),
        "categories": [CATEGORY],
        "severity": severity,
        "fingerprint": fingerprint,
        "location": {"path": path, "lines": {"begin": line or 1}},
        "engine_name": "labellint",
    }


def _hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _unique(fingerprint: str, taken: set[str], *where: str) -> str:
    """``fingerprint``, or where another issue has it, one derived from it and ``where``, then
    from a counter (added to ``taken``)."""
    candidate = fingerprint
    if candidate in taken:
        candidate = _hash(fingerprint, *where)
    n = 0
    while candidate in taken:
        n += 1
        candidate = _hash(fingerprint, *where, str(n))
    taken.add(candidate)
    return candidate
