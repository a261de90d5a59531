"""SARIF 2.1.0 for GitHub code scanning.

GitHub keeps at most 25,000 results per run, shows the first 5,000, and rejects uploads over
10 MB gzipped: we keep the top-ranked 5,000 and shrink further if the gzipped size demands it,
saying so in the run. ``partialFingerprints.primaryLocationLineHash`` carries our fingerprint,
which never depends on a line, so alerts survive edits elsewhere in the file.
"""

from __future__ import annotations

import gzip
import json
from urllib.parse import quote

from labellint import __version__
from labellint.report.ruledoc import sections

MAX_RESULTS = 5000
MAX_GZIP_BYTES = 10 * 1024 * 1024
LEVEL = {"error": "error", "warning": "warning", "info": "note"}
INFO_URI = "https://github.com/labellint/labellint"


def _rule_descriptor(rule) -> dict:
    doc = sections(rule)
    help_md = "\n\n".join(f"## {t}\n{doc[t]}" for t in ("What it does", "Why it matters", "Options", "Fix")
                          if doc.get(t))
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": doc.get("What it does") or rule.summary},
        "help": {"text": help_md, "markdown": help_md},
        "defaultConfiguration": {"level": LEVEL[str(rule.severity)]},
        "properties": {"tags": ["coco", "labels"], "fix": rule.fix, "options": rule.options},
    }


def _artifact(path: str) -> dict:
    if path.startswith("/"):  # outside any repository and the working folder
        return {"uri": "file://" + quote(path, safe="/")}
    return {"uri": quote(path, safe="/"), "uriBaseId": "%SRCROOT%"}


def _result(f, rule_index: dict[str, int]) -> dict:
    region = {"startLine": f.line or 1, "startColumn": f.column or 1}
    res = {
        "ruleId": f.code,
        "level": LEVEL[str(f.severity)],
        "message": {"text": f.message + (f" (suggestion: {f.suggestion})" if f.suggestion else "")},
        "locations": [{
            "physicalLocation": {"artifactLocation": _artifact(f.path), "region": region},
            "logicalLocations": [{"fullyQualifiedName": f.pointer or "/", "kind": "element"}],
        }],
        "partialFingerprints": {"primaryLocationLineHash": f.fingerprint},
        "properties": {"image_id": f.image_id, "annotation_id": f.annotation_id, "category_id": f.category_id,
                       "score": round(float(f.score), 6), "suggestion": f.suggestion, "pointer": f.pointer},
    }
    if f.code in rule_index:
        res["ruleIndex"] = rule_index[f.code]
    return res


def report(result, options) -> str:
    return render(result)


def render(result) -> str:
    """The SARIF log of ``result``: its rules (``Result.rules``, every rule of a finding among
    them in a run) as the driver's, each result pointing at its rule by index."""
    rules = list(result.rules)
    rule_index = {r.code: i for i, r in enumerate(rules)}
    total = len(result.findings)
    keep = min(total, MAX_RESULTS)
    while True:
        doc = _document(result, rules, rule_index, keep, total)
        text = json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
        if keep == 0 or len(gzip.compress(text.encode("utf-8"), 6)) <= MAX_GZIP_BYTES:
            return text
        keep //= 2


def _document(result, rules, rule_index, keep, total) -> dict:
    notifications = [{"level": "error", "message": {"text": e}} for e in result.errors]
    notifications += [{"level": "note", "message": {"text": n}} for n in result.notes]
    if keep < total:
        notifications.append({"level": "warning", "message": {
            "text": f"{total} findings; the {keep} highest-ranked are included (GitHub code scanning limits: "
                    f"{MAX_RESULTS} results shown per run, 10 MB gzipped). Use --output-format json for all."}})
    notifications += [{"level": "note", "message": {"text": f"rule {c} skipped: {r}"}}
                      for c, r in sorted(result.skipped_rules.items())]
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "labellint", "semanticVersion": __version__, "version": __version__,
                                "informationUri": INFO_URI, "rules": [_rule_descriptor(r) for r in rules]}},
            "automationDetails": {"id": "labellint/"},
            "columnKind": "unicodeCodePoints",
            "results": [_result(f, rule_index) for f in result.findings[:keep]],
            "invocations": [{"executionSuccessful": not result.errors,
                             "toolExecutionNotifications": notifications}],
            "properties": {"totalFindings": total, "includedFindings": keep, "capped": keep < total},
        }],
    }
