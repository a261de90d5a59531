"""Run the selected rules over a Dataset and turn their problems into located, ranked findings.

The engine knows the rule contract, never a particular rule.
"""

from __future__ import annotations

import os
from collections import Counter

from labellint.coco import MISSING_ID, Dataset
from labellint.config import FileSettings
from labellint.errors import LabellintError
from labellint.findings import Finding, Problem, fingerprint, rank


def _id(column, row):
    if row is None:
        return None
    value = int(column[row])
    return None if value == MISSING_ID else value


def _entity(ds: Dataset, p: Problem):
    """(section, index, fingerprint key) of the problem's primary entity."""
    for section, index, column in (
        ("annotations", p.annotation, ds.annotations.id),
        ("images", p.image, ds.images.id),
        ("categories", p.category, ds.categories.id),
    ):
        if index is not None:
            ident = _id(column, index)
            key = f"{section}:{ident}" if ident is not None else f"{section}@{index}"
            return section, index, key
    return None, None, p.pointer or ""


def to_findings(ds: Dataset, rule, severity, problems: list[Problem]) -> list[Finding]:
    # a rule may grade its own problems (Problem.severity), unless the user set the rule's severity
    configured = severity != rule.severity
    out = []
    for p in problems:
        section, index, key = _entity(ds, p)
        if p.key:
            key = f"{key}#{p.key}"
        pointer = p.pointer if p.pointer is not None else (ds.pointer(section, index) if section else "")
        image_row = p.image
        category_row = p.category
        ann_id = _id(ds.annotations.id, p.annotation)
        image_id = _id(ds.images.id, image_row)
        category_id = _id(ds.categories.id, category_row)
        if p.annotation is not None:
            if image_id is None:
                image_id = _id(ds.annotations.image_id, p.annotation)
            if category_id is None:
                category_id = _id(ds.annotations.category_id, p.annotation)
        f = Finding(
            code=rule.code, name=rule.name, severity=severity if configured else (p.severity or severity), message=p.message,
            path=ds.path, pointer=pointer, line=None, column=None,
            image_id=image_id, annotation_id=ann_id, category_id=category_id,
            score=min(1.0, max(0.0, float(p.score))), suggestion=p.suggestion,
            fingerprint=fingerprint(rule.code, ds.path, key), fix=p.fix,
        )
        if p.extra:
            f.extra.update(p.extra)
        f.extra["_offset"] = ds.entity_offset(section, index)
        out.append(f)
    return out


def _dedupe_fingerprints(findings: list[Finding]) -> None:
    """Two findings of one rule on one entity id (say, a duplicated id) get distinct prints."""
    seen: Counter = Counter()
    for f in findings:
        seen[f.fingerprint] += 1
        if seen[f.fingerprint] > 1:
            f.fingerprint = fingerprint(f.code, f.path, f"{f.fingerprint}#{seen[f.fingerprint]}")


def locate(ds: Dataset, findings: list[Finding]) -> None:
    offsets = [f.extra.get("_offset") for f in findings]
    where = ds.locate(offsets)
    for f in findings:
        off = f.extra.pop("_offset", None)
        f.line, f.column = where.get(off, (1, 1)) if off is not None else (1, 1)


def lint(ds: Dataset, settings: FileSettings, context: dict | None = None) -> tuple[list[Finding], list[str]]:
    """Findings for one dataset (ranked, located) and the codes of rules skipped for lack of input."""
    context = context or {}
    findings: list[Finding] = []
    skipped: list[str] = []
    active = []
    for rule in settings.rules:
        if any(not context.get(need) for need in rule.requires):
            skipped.append(rule.code)
            continue
        opts = dict(settings.options[rule.code])
        opts.update({f"_{k}": v for k, v in context.items()})
        active.append((rule, opts))
    for rule, opts in active:  # rules that share work (one image pass) say what they need first
        if rule.prepare is not None:
            _guarded(rule, ds.path, lambda: rule.prepare(ds, opts))
    for rule, opts in active:
        problems = _guarded(rule, ds.path, lambda: list(rule.check(ds, opts)))
        findings.extend(to_findings(ds, rule, settings.severity[rule.code], problems))
    _dedupe_fingerprints(findings)
    locate(ds, findings)
    return rank(findings), skipped


def _guarded(rule, path, call):
    try:
        return call()
    except LabellintError:
        raise
    except Exception as exc:
        if os.environ.get("LABELLINT_DEBUG"):
            raise
        raise LabellintError(f"rule {rule.code} ({rule.name}) failed: {type(exc).__name__}: {exc}"
                             " (set LABELLINT_DEBUG=1 for the traceback)", path) from None


def wants_many(settings: FileSettings) -> bool:
    """Whether an enabled rule looks across files (the run then keeps the datasets for lint_many)."""
    return any(rule.check_many is not None for rule in settings.rules)


def lint_many(items: list[tuple[Dataset, FileSettings]], context: dict | None = None) -> list[Finding]:
    """Findings of the cross-file hooks over every dataset linted in the run, each on its own file."""
    context = context or {}
    by_code: dict[str, tuple] = {}
    for pos, (ds, settings) in enumerate(items):
        for rule in settings.rules:
            if rule.check_many is None or any(not context.get(need) for need in rule.requires):
                continue
            entry = by_code.setdefault(rule.code, (rule, settings, []))
            entry[2].append(pos)
    findings: list[Finding] = []
    for rule, settings, positions in by_code.values():
        if len(positions) < 2:
            continue
        datasets = [items[p][0] for p in positions]
        opts = dict(settings.options[rule.code])
        opts.update({f"_{k}": v for k, v in context.items()})
        pairs = _guarded(rule, datasets[0].path, lambda: list(rule.check_many(datasets, opts)))
        for pos in sorted({p for p, _ in pairs}):
            ds, file_settings = items[positions[pos]]
            found = to_findings(ds, rule, file_settings.severity[rule.code], [pr for p, pr in pairs if p == pos])
            _dedupe_fingerprints(found)
            locate(ds, found)
            findings.extend(found)
    return rank(findings)
