"""JSON output: a stable, documented schema (see README "JSON output")."""

from __future__ import annotations

import msgspec

from labellint import __version__

SCHEMA_VERSION = 1


def report(result, options) -> str:
    return render(result, options.exit_code)


def render(result, exit_code: int) -> str:
    sev = result.by_severity()
    by_rule: dict[str, int] = {}
    for f in result.findings:
        by_rule[f.code] = by_rule.get(f.code, 0) + 1
    doc = {
        "version": SCHEMA_VERSION,
        "tool": {"name": "labellint", "version": __version__},
        "summary": {
            "files": len(result.files),
            "findings": len(result.findings),
            "by_severity": {k: sev.get(k, 0) for k in ("error", "warning", "info")},
            "by_rule": dict(sorted(by_rule.items())),
            "hidden": result.hidden,
            "fail_on": str(result.fail_on),
            "exit_code": exit_code,
        },
        "files": [{"path": f.path, "status": f.status, "note": f.note, **f.counts} for f in result.files],
        "skipped_rules": [{"code": c, "reason": r} for c, r in sorted(result.skipped_rules.items())],
        "errors": list(result.errors),
        "notes": list(result.notes),
        "stale_baseline": list(result.stale),
        "findings": [f.to_dict() for f in result.findings],
    }
    # msgspec is ~10x faster than json.dumps on tens of thousands of findings
    return msgspec.json.format(msgspec.json.encode(doc), indent=2).decode("utf-8") + "\n"
