"""Markdown for a pull-request comment or a GitHub job summary (``>> $GITHUB_STEP_SUMMARY``).

A heading with the verdict, a table of counts (files, findings by severity), a table by rule,
the run errors and skipped files, then the top findings in the order the run ranked them
(``--limit N``, 0 for all), each with a link to its line: ``path#Lline`` relative to the page,
or, in GitHub Actions (``GITHUB_SERVER_URL``, ``GITHUB_REPOSITORY`` and ``GITHUB_SHA`` set), the
absolute ``SERVER/OWNER/REPO/blob/SHA/path#Lline``, which works from a comment.

Decisions:

- GitHub refuses a comment over 65,536 characters: the report is capped at 60,000 UTF-8 bytes
  (:data:`labellint.report.markdown_safe.MAX_BYTES`) by dropping findings from the end, and its
  last line says how many were left out. Each dataset string is cut to 300 characters first, so a
  megabyte-long class name costs one finding's line, not the report.
- Every string from the dataset or the run (messages, suggestions, paths, run errors, notes) is
  a code span (:mod:`labellint.report.markdown_safe`): it cannot make a link, an image, HTML, a
  table cell, a mention or an issue reference. Rule names and the skipped-rules line are escaped
  text; only the links to lines are Markdown links, to URLs built here.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from urllib.parse import quote

from labellint import __version__
from labellint.report import markdown_safe as md
from labellint.report.text import skipped_rules_line

LEVELS = ("error", "warning", "info")


def report(result, options) -> str:
    return render(result, options.limit, options.exit_code, os.environ)


def render(result, limit: int = 50, exit_code: int = 0, env=None) -> str:
    base = blob_base(os.environ if env is None else env)
    findings = result.findings
    shown = findings if limit <= 0 else findings[:limit]
    head = [_heading(result, exit_code), _counts(result), _rules(findings), _problems(result)]
    blocks = [b for b in head if b]
    if shown:
        blocks.append("\n### Findings (ranked by severity, then confidence)\n\n")
    lines = [_finding(f, base) for f in shown]

    def note(cut: int) -> str:
        cut_findings = min(cut, len(lines))
        missing = len(findings) - len(shown) + cut_findings
        if not missing and not cut:
            return ""
        why = (f"the report is capped at {md.MAX_BYTES:,} bytes for GitHub comments" if cut
               else f"`--limit {limit}`; `--limit 0` lists as many as fit")
        also = f", nor {cut - cut_findings} blocks of the summary" if cut > cut_findings else ""
        return f"\n_{missing} more finding{'s' * (missing != 1)} not shown{also} ({why}); " \
               f"`--output-format json` lists them all._\n"

    return md.capped(blocks + lines, note)


def blob_base(env) -> str | None:
    """``SERVER/OWNER/REPO/blob/SHA/`` in GitHub Actions, where the variables look as GitHub sets
    them; otherwise None (links are relative)."""
    server = (env.get("GITHUB_SERVER_URL") or "").rstrip("/")
    repo, sha = env.get("GITHUB_REPOSITORY") or "", env.get("GITHUB_SHA") or ""
    if (re.fullmatch(r"https?://[\w.-]+(:\d+)?(/[\w.-]+)*", server) and re.fullmatch(r"[\w.-]+/[\w.-]+", repo)
            and re.fullmatch(r"[0-9a-f]{7,64}", sha)):
        return f"{server}/{repo}/blob/{sha}/"
    return None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1 and word != 'info')}"


def _heading(result, exit_code: int) -> str:
    sev = result.by_severity()
    linted = sum(1 for f in result.files if f.status == "linted")
    parts = [_plural(len(result.errors), "run error")] if result.errors else []
    parts += [_plural(sev[level], level) for level in LEVELS if sev.get(level)]
    return (f"## labellint: {', '.join(parts) or 'no findings'}\n\n"
            f"{_plural(linted, 'file')} linted · exit {exit_code} · labellint {__version__}\n")


def _table(header: tuple, rows: list, numeric: tuple = ()) -> str:
    """A GitHub table; cells must already be safe (numbers, :func:`md.cell`, :func:`md.text`)."""
    align = ["---:" if name in numeric else "---" for name in header]
    return "\n" + "".join(f"| {' | '.join(map(str, row))} |\n" for row in (header, align, *rows))


def _counts(result) -> str:
    sev = result.by_severity()
    status = Counter(f.status for f in result.files)
    header = ("files linted", "files skipped", "files not linted", "findings", *LEVELS, "hidden by baseline")
    cells = [status["linted"], status["skipped"], status["error"], len(result.findings),
             *(sev.get(level, 0) for level in LEVELS), result.hidden]
    return _table(header, [cells], numeric=header)


def _rules(findings) -> str:
    if not findings:
        return ""
    counts = Counter((f.code, f.name, str(f.severity)) for f in findings)
    rank = {level: i for i, level in enumerate(LEVELS)}
    rows = [(md.cell(code), md.text(name), sev, n)
            for (code, name, sev), n in sorted(counts.items(), key=lambda kv: (rank[kv[0][2]], kv[0][0]))]
    return "\n### By rule\n" + _table(("rule", "name", "severity", "findings"), rows, numeric=("findings",))


def _problems(result) -> str:
    """Run errors, skipped files, skipped rules and notes, one bullet each (empty when none)."""
    items = [f"- **run error**: {md.code(e)}" for e in result.errors]
    items += [f"- skipped {md.code(f.path)}: {md.code(f.note)}" for f in result.files if f.status == "skipped"]
    skipped = skipped_rules_line(result)
    items += [f"- {md.text(skipped)}"] if skipped else []
    items += [f"- note: {md.code(n)}" for n in result.notes]
    return "\n" + "\n".join(items) + "\n" if items else ""


def _finding(f, base: str | None) -> str:
    label = f"{f.path}#L{f.line}" if f.line is not None else f.path
    if f.path.startswith(("/", "../")) or "://" in f.path:
        where = md.code(label)  # outside the repository: no page to link to
    else:
        url = (base or "") + quote(f.path, safe="/") + (f"#L{f.line}" if f.line is not None else "")
        where = md.link(label, url)
    line = f"- **{f.severity}** {md.code(f.code)} {md.text(f.name)} {where}: {md.code(f.message)}"
    if f.suggestion:
        line += f" (suggestion: {md.code(f.suggestion)})"
    return line + "\n"
