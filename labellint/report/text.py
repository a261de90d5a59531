"""The terminal report: a summary table by rule and severity, then the top findings."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table
from rich.text import Text

from labellint import __version__
from labellint.report.safe import clean, text

STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def render(result, console: Console, limit: int = 50, statistics: bool = False) -> None:
    for err in result.errors:
        console.print(Text("error: ", style="bold red") + text(err))
    for f in result.files:
        if f.status == "skipped":
            console.print(Text("skipped: ", style="dim") + text(f"{f.path}: {f.note}"))
    findings = result.findings
    if findings:
        console.print(_summary(findings))
    if not statistics and findings:
        shown = findings if limit <= 0 else findings[:limit]
        console.print(Text(f"\nFindings (ranked by severity, then confidence){'' if len(shown) == len(findings) else f', top {len(shown)} of {len(findings)}'}:", style="bold"))
        for f in shown:
            line = Text()
            line.append(clean(f.location()), style="bold")
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
    for code, reason in sorted(result.skipped_rules.items()):
        console.print(Text(f"rule {code} skipped: {reason}", style="dim"))
    for note in result.notes:
        console.print(Text("note: ", style="dim") + text(note))
    console.print(_footer(result))


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
    parts.append(f"{n_ann} annotations")
    if result.findings:
        parts.append(f"{len(result.findings)} findings ({sev['error']} errors, {sev['warning']} warnings, {sev['info']} info)")
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
        line += f"; {remaining} finding{'s' * (remaining != 1)} remain"
        if unsafe and not any(f.fix.safety != "safe" for r in result.fixes for f in r.applied):
            line += f", {unsafe} of them fixable with --unsafe-fixes"
    console.print(Text(line, style="bold green" if total else "bold"))
