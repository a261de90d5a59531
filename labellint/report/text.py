"""The terminal report: a summary table by rule and severity, then the top findings."""

from __future__ import annotations

import os
from collections import Counter

from rich.console import Console
from rich.table import Table
from rich.text import Text

from labellint import __version__, registry
from labellint.report.safe import clean, text

STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def report(result, options) -> str:
    """The report as plain text (``--output-file``): no colour, lines up to 200 characters."""
    with open(os.devnull, "w") as sink:
        console = Console(record=True, width=200, file=sink, markup=False, highlight=False)
        render(result, console, options.limit, options.statistics)
    return console.export_text()


def render(result, console: Console, limit: int = 50, statistics: bool = False) -> None:
    """The report for people. Paths are relative to the current directory (``Result.shown_path``),
    as ruff and compilers print them, so ``file:line:col`` opens from the terminal; the machine
    formats keep repository-relative paths. ``statistics``: the table and the skipped-rules line only."""
    findings = result.findings
    skipped = skipped_rules_line(result)
    if statistics:
        if findings:
            console.print(_summary(findings))
        if skipped:
            console.print(Text(skipped, style="dim"))
        return
    for err in result.error_lines or result.errors:
        console.print(Text("error: ", style="bold red") + text(err))
    for f in result.files:
        if f.status == "skipped":
            console.print(Text("skipped: ", style="dim") + text(f"{result.shown_path(f.path)}: {f.note}"))
    if findings:
        console.print(_summary(findings))
    if findings:
        shown = findings if limit <= 0 else findings[:limit]
        console.print(Text(f"\nFindings (ranked by severity, then confidence){'' if len(shown) == len(findings) else f', top {len(shown)} of {len(findings)}'}:", style="bold"))
        for f in shown:
            line = Text()
            where = result.shown_path(f.path)
            if f.line is not None:
                where += f":{f.line}:{f.column or 1}"
            line.append(clean(where), style="bold")
            line.append("  ")
            line.append(f"{f.severity!s:<7}", style=STYLE[str(f.severity)])
            line.append(f" {f.code} ", style="bold")
            line.append(clean(f.message))
            if f.suggestion:
                line.append(f" (suggestion: {clean(f.suggestion)})", style="green")
            line.append(f"  [{clean(f.pointer)}]", style="dim")
            console.print(line, soft_wrap=True)
        if len(shown) < len(findings):
            console.print(Text(f"... {len(findings) - len(shown)} more: --limit 0 shows all, "
                               "--output-format json lists them", style="dim"))
    if skipped:
        console.print(Text(skipped, style="dim"))
    for note in result.notes:
        console.print(Text("note: ", style="dim") + text(note))
    console.print(_footer(result))


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


# the option that gives each run input a rule may require (the full wording is in run._REQUIREMENTS)
_OPTION = {"images": "--images", "backbone": "--backbone", "predictions": "--predictions"}


def skipped_rules_line(result) -> str | None:
    """The rules skipped for want of an input, in one line: consecutive codes (in the order of all
    known rules, so a range never spans a rule that ran) grouped into ranges by what they lack,
    e.g. ``12 rules skipped: LL401-LL411 need --images; LL501 needs --images and --backbone; ...``."""
    skipped = result.skipped_rules
    if not skipped:
        return None
    order = {code: i for i, code in enumerate(sorted(set(registry.by_code()) | set(skipped)))}
    groups: dict[str, list[list[str]]] = {}  # reason -> runs of consecutive codes
    for code in sorted(skipped, key=order.__getitem__):
        needs = result.skipped_needs.get(code)
        reason = " and ".join(_OPTION.get(n, n) for n in needs) if needs else skipped[code].removeprefix("needs ")
        runs = groups.setdefault(reason, [])
        if runs and order[runs[-1][-1]] == order[code] - 1:
            runs[-1].append(code)
        else:
            runs.append([code])
    parts = []
    for reason, runs in sorted(groups.items(), key=lambda kv: order[kv[1][0][0]]):
        codes = ", ".join(run[0] if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs)
        many = len(runs) > 1 or len(runs[0]) > 1
        if reason == "skipped":
            parts.append(codes)
        else:
            parts.append(f"{codes} {'need' if many else 'needs'} {reason}")
    return f"{_plural(len(skipped), 'rule')} skipped: " + "; ".join(parts)


def _summary(findings) -> Table:
    counts = Counter((f.code, f.name, str(f.severity)) for f in findings)
    table = Table(title=None, show_edge=False, header_style="bold")
    table.add_column("code")
    table.add_column("rule")
    table.add_column("severity")
    table.add_column("count", justify="right")
    for (code, name, sev), n in sorted(counts.items(), key=lambda kv: (-_rank(kv[0][2]), kv[0][0])):
        table.add_row(code, text(name), Text(sev, style=STYLE[sev]), str(n))
    return table


def _rank(sev: str) -> int:
    return {"error": 3, "warning": 2, "info": 1}[sev]


def _footer(result) -> Text:
    linted = [f for f in result.files if f.status == "linted"]
    sev = result.by_severity()
    parts = [f"labellint {__version__}", f"{len(linted)} file{'s' * (len(linted) != 1)} linted"]
    n_ann = sum(f.counts.get("annotations", 0) for f in linted)
    parts.append(_plural(n_ann, "annotation"))
    if result.findings:
        parts.append(f"{_plural(len(result.findings), 'finding')} ({_plural(sev['error'], 'error')}, "
                     f"{_plural(sev['warning'], 'warning')}, {sev['info']} info)")
    else:
        parts.append("no findings")
    if result.hidden:
        parts.append(f"{result.hidden} hidden by baseline/diff base")
    if not result.fixes:
        safe = sum(1 for f in result.findings if f.fix is not None and f.fix.safety == "safe")
        unsafe = sum(1 for f in result.findings if f.fix is not None and f.fix.safety != "safe")
        if safe or unsafe:
            hint = f"{safe} fixable with --fix" if safe else "none fixable with --fix"
            if unsafe:
                hint += f" ({unsafe} more with --unsafe-fixes)"
            parts.append(hint)
    return Text("\n" + " · ".join(parts), style="bold")


def fix_summary(result, console: Console, written: bool) -> None:
    """What --fix fixed (or --diff would fix), by rule, and what remains."""
    fixed = Counter()
    files = 0
    for record in result.fixes:
        if record.changed:
            files += 1
            fixed.update(record.by_rule())
    total = sum(fixed.values())
    verb = "fixed" if written else "would fix"
    if total:
        rules = ", ".join(f"{code} x{n}" for code, n in sorted(fixed.items()))
        line = f"{verb} {total} problem{'s' * (total != 1)} in {files} file{'s' * (files != 1)} ({rules})"
    else:
        line = "nothing to fix" if written else "nothing would change"
    remaining = len(result.findings)
    if written:
        unsafe = sum(1 for f in result.findings if f.fix is not None and f.fix.safety != "safe")
        line += f"; {remaining} finding{'s' * (remaining != 1)} remain{'s' * (remaining == 1)}"
        if unsafe and not any(f.fix.safety != "safe" for r in result.fixes for f in r.applied):
            line += f", {unsafe} of them fixable with --unsafe-fixes"
    console.print(Text(line, style="bold green" if total else "bold"))
