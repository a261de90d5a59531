"""Run the selected rules over a Dataset and turn their problems into located, ranked findings.

The engine knows the rule contract, never a particular rule.

A rule that raises (a bug, or an input it was not written for) costs only that rule on that file:
the file's other rules still report, the problems the rule yielded before it failed are kept, and
the failure becomes one finding of the failing rule's code at the top of the file (line 1,
severity error whatever the rule's configured severity, no fix): ``rule CODE failed on this
file: ExcType: message (set LABELLINT_DEBUG=1 for the traceback)``. Its code is the rule's own,
so ``--select``, SARIF and per-rule counts place it with no internal pseudo-rule; its
fingerprint is stable (``CODE``, file, ``rule-failed``), but neither a baseline nor
``--diff-base`` hides it (``Finding.rule_failed``): a check that did not run cannot be accepted.
Because it is an error, the run exits 1 like any failing check (and the report, with every
other finding, is printed): the check is incomplete and must not pass, but the file was read,
so this is not exit 2, which stays for input, configuration and usage errors (whose file gets no
report at all). A rule's own :class:`LabellintError` is such an error and still ends the file.
``LABELLINT_DEBUG=1`` lets the exception through with its traceback.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import replace

import numpy as np

from labellint import limits, passes
from labellint.coco import MISSING_ID, Dataset
from labellint.coco.gcpause import gc_paused
from labellint.config import FileSettings
from labellint.context import RunContext
from labellint.errors import LabellintError
from labellint.findings import Finding, Problem, Severity, clip, entry_of, fingerprint, fingerprints, rank, shorten


_SECTIONS = ("annotations", "images", "categories")


def _ids(column: np.ndarray, rows: list) -> list:
    """The id at each row of an id column, gathered at once; None for no row or a missing id."""
    if all(row is None for row in rows):
        return [None] * len(rows)
    found = column.take([-1 if row is None else row for row in rows]).tolist()
    return [None if row is None or value == MISSING_ID else value for row, value in zip(rows, found)]


def _entity_offsets(ds: Dataset, sections: list, indexes: list) -> list:
    """Byte offset of each (section, index) entity in the file; None where there is none."""
    out: list = [None] * len(sections)
    if not any(sections):
        return out
    offsets = ds.offsets()
    for section in _SECTIONS:
        starts = offsets.get(section)
        if starts is None:
            continue
        at = [i for i, s in enumerate(sections) if s == section and 0 <= indexes[i] < len(starts)]
        for i, value in zip(at, starts.take([indexes[i] for i in at]).tolist()):
            out[i] = value
    return out


def to_findings(ds: Dataset, rule, severity, problems: list[Problem]) -> tuple[list[Finding], list]:
    """The rule's problems as findings, and the byte offset of each one's entity (for :func:`locate`).

    Ids and offsets are gathered for all problems at once: a rule may report tens of thousands.
    """
    # a rule may grade its own problems (Problem.severity), unless the user set the rule's severity
    configured = severity != rule.severity
    ann_rows = [p.annotation for p in problems]
    image_rows = [p.image for p in problems]
    category_rows = [p.category for p in problems]
    ann_ids = _ids(ds.annotations.id, ann_rows)
    image_ids = _ids(ds.images.id, image_rows)
    category_ids = _ids(ds.categories.id, category_rows)
    ann_image_ids = _ids(ds.annotations.image_id, ann_rows)
    ann_category_ids = _ids(ds.annotations.category_id, ann_rows)
    sections, indexes, keys = [], [], []
    for i, p in enumerate(problems):
        if ann_rows[i] is not None:
            section, index, ident = "annotations", ann_rows[i], ann_ids[i]
        elif image_rows[i] is not None:
            section, index, ident = "images", image_rows[i], image_ids[i]
        elif category_rows[i] is not None:
            section, index, ident = "categories", category_rows[i], category_ids[i]
        else:
            section = index = None
        if section is None:
            key = p.pointer or ""
        else:
            key = f"{section}:{ident}" if ident is not None else f"{section}@{index}"
        keys.append(f"{key}#{p.key}" if p.key else key)
        sections.append(section)
        indexes.append(index)
    out = []
    longest = limits.get("max_message_chars")  # the backstop for a dataset string a rule quoted whole
    for i, (p, print_) in enumerate(zip(problems, fingerprints(rule.code, ds.path, keys))):
        section = sections[i]
        pointer = p.pointer if p.pointer is not None else (ds.pointer(section, indexes[i]) if section else "")
        entry, row = entry_of(pointer) if p.pointer is not None else (section, indexes[i])
        image_id, category_id = image_ids[i], category_ids[i]
        if ann_rows[i] is not None:
            if image_id is None:
                image_id = ann_image_ids[i]
            if category_id is None:
                category_id = ann_category_ids[i]
        message, suggestion, fix = str(p.message), p.suggestion, p.fix
        if len(message) > longest:
            message = clip(message, longest)
        if suggestion is not None and len(suggestion) > longest:
            suggestion = clip(suggestion, longest)
        if fix is not None and len(fix.title) > longest:
            fix = replace(fix, title=clip(fix.title, longest))
        f = Finding(
            code=rule.code, name=rule.name, severity=severity if configured else (p.severity or severity), message=message,
            path=ds.path, pointer=pointer, line=None, column=None,
            image_id=image_id, annotation_id=ann_ids[i], category_id=category_id,
            score=min(1.0, max(0.0, float(p.score))), suggestion=suggestion, fingerprint=print_, fix=fix,
            section=entry, row=row,
        )
        if p.extra:
            f.extra.update(p.extra)
        out.append(f)
    offsets = _entity_offsets(ds, sections, indexes)
    return out, [p.offset if p.offset is not None else o for p, o in zip(problems, offsets)]


def _dedupe_fingerprints(findings: list[Finding]) -> None:
    """Two findings of one rule on one entity id (say, a duplicated id) get distinct prints."""
    seen: Counter = Counter()
    for f in findings:
        seen[f.fingerprint] += 1
        if seen[f.fingerprint] > 1:
            f.fingerprint = fingerprint(f.code, f.path, f"{f.fingerprint}#{seen[f.fingerprint]}")


def locate(ds: Dataset, findings: list[Finding], offsets: list) -> None:
    """Line and column of each finding, from the byte offsets :func:`to_findings` gave."""
    where = ds.locate(offsets)
    for f, off in zip(findings, offsets):
        f.line, f.column = where.get(off, (1, 1)) if off is not None else (1, 1)


def as_context(context) -> RunContext:
    """A RunContext from one, from a dict of its fields (handy in tests and scripts), or None."""
    if isinstance(context, RunContext):
        return context
    return RunContext(**(context or {}))


def lint(ds: Dataset, settings: FileSettings, context=None) -> tuple[list[Finding], list[str]]:
    """Findings for one dataset (ranked, located) and the codes of rules skipped for lack of input."""
    findings, skipped = lint_file(ds, settings, context)
    return rank(findings), skipped


def lint_file(ds: Dataset, settings: FileSettings, context=None) -> tuple[list[Finding], list[str]]:
    """:func:`lint` without the ranking (a run ranks all its findings once).

    The rules that need a late pass (work the loader may still be finishing in the background,
    :mod:`labellint.passes`) run after the others, so that those others use the wait; the
    findings are put back in the rules' registry order, so the order of work changes nothing."""
    context = as_context(context).for_file(as_context(context).source)  # this file's pass results
    skipped = [rule.code for rule in settings.rules if not all(map(context.has, rule.requires))]
    active = [(rule, dict(settings.options[rule.code])) for rule in settings.rules if rule.code not in skipped]
    failed = _run_passes(ds, active, context)  # code -> why the rule cannot run on this file
    is_late = {rule.code: any(passes.PASSES[name].late for name in rule.passes) for rule, _ in active}
    early = [(rule, opts) for rule, opts in active if not is_late[rule.code]]
    late = [(rule, opts) for rule, opts in active if is_late[rule.code]]
    with gc_paused():
        results = {rule.code: _check(ds, rule, opts, settings, context, failed.get(rule.code)) for rule, opts in early}
    if late:
        failed.update(_run_passes(ds, late, context, late=True))
        with gc_paused():
            results.update({rule.code: _check(ds, rule, opts, settings, context, failed.get(rule.code))
                            for rule, opts in late})
    findings: list[Finding] = []
    offsets: list = []
    crashed: list[Finding] = []
    for rule, _ in active:
        found, where, crash = results[rule.code]
        findings.extend(found)
        offsets.extend(where)
        crashed.extend(crash)
    with gc_paused():
        _dedupe_fingerprints(findings)
        locate(ds, findings, offsets)
    return findings + crashed, skipped


def _check(ds: Dataset, rule, opts: dict, settings: FileSettings, context: RunContext, why: str | None):
    """One rule on one file: (findings, their byte offsets, [its failure finding] or []).

    Called with the garbage collector paused: rules and findings make arrays, tuples and
    dataclasses without reference cycles, and tens of thousands of findings would otherwise
    trigger collections that rescan every live object and find nothing."""
    problems: list[Problem] = []
    why = why or _attempt(lambda: problems.extend(rule.check(ds, opts, context)))
    found, where = [], []
    if why is None or problems:  # what a failing rule reported before it failed is kept
        converted: list = []
        unconverted = _attempt(lambda: converted.append(to_findings(ds, rule, settings.severity[rule.code], problems)))
        why = why or unconverted
        if converted:
            found, where = converted[0]
    return found, where, [rule_failed(ds.path, rule, why)] if why is not None else []


def _run_passes(ds: Dataset, active: list, context: RunContext, late: bool = False) -> dict[str, str]:
    """Open the passes (early or late ones) the active rules need, let the rules that configure
    one say how (early), run each once into ``context.results``; {code: why} for the rules that
    cannot run (a pass or their own prepare hook failed)."""
    needed = [name for name in passes.expand(name for rule, _ in active for name in rule.passes)
              if passes.PASSES[name].late == late]
    broken: dict[str, str] = {}  # pass -> why it failed
    for name in needed:
        why = _attempt(lambda: passes.PASSES[name].open(ds, context))
        if why is not None:
            broken[name] = why
    failed: dict[str, str] = {}
    for rule, opts in active if not late else ():
        why = next((broken[p] for p in rule.passes if p in broken), None)
        if why is None and rule.prepare is not None:
            why = _attempt(lambda: rule.prepare(ds, opts, context))
        if why is not None:
            failed[rule.code] = why
    for name in needed:
        if name in broken:
            continue
        under = next((broken[b] for b in passes.PASSES[name].after if b in broken), None)
        if under is not None:  # what it builds on failed
            broken[name] = under
            continue
        why = _attempt(lambda: context.results.__setitem__(name, passes.PASSES[name].run(ds, context)))
        if why is not None:
            broken[name] = why
    for rule, _ in active:
        why = next((broken[p] for p in rule.passes if p in broken), None)
        if why is not None:
            failed.setdefault(rule.code, why)
    return failed


def _attempt(call) -> str | None:
    """None when ``call()`` returns; else ``ExcType: message`` of what it raised. A LabellintError
    (an input error the rule found) passes, and with LABELLINT_DEBUG set so does everything."""
    try:
        # extreme values are data here (a box of 1e308 squared is inf, 0/0 is nan): rules get
        # IEEE results without numpy's RuntimeWarnings, and compare them as they see fit (a nan
        # passes no threshold); the loader has already reported every non-finite number
        with np.errstate(all="ignore"):
            call()
    except LabellintError:
        raise
    except Exception as exc:
        if os.environ.get("LABELLINT_DEBUG"):
            raise
        return f"{type(exc).__name__}: {exc}"
    return None


def rule_failed(path: str, rule, why: str, across: bool = False) -> Finding:
    """The finding that stands for a rule that raised on a file (see the module docstring)."""
    where = "the files linted together" if across else "this file"
    message = (f"rule {rule.code} ({rule.name}) failed on {where}: {shorten(why)} (set LABELLINT_DEBUG=1 for "
               "the traceback); its findings here are missing")
    return Finding(code=rule.code, name=rule.name, severity=Severity.ERROR, message=message, path=path,
                   pointer="", line=1, column=1, fingerprint=fingerprint(rule.code, path, "rule-failed"),
                   extra={"rule_failed": True})


def wants_many(settings: FileSettings) -> bool:
    """Whether an enabled rule looks across files (the run then keeps the datasets for lint_many)."""
    return any(rule.check_many is not None for rule in settings.rules)


def lint_many(items: list[tuple[Dataset, FileSettings]], context=None) -> list[Finding]:
    """Findings of the cross-file hooks over every dataset linted in the run, each on its own file
    (each dataset's passes ran when it was linted alone)."""
    context = as_context(context)
    by_code: dict[str, tuple] = {}
    for pos, (ds, settings) in enumerate(items):
        for rule in settings.rules:
            if rule.check_many is None or not all(map(context.has, rule.requires)):
                continue
            entry = by_code.setdefault(rule.code, (rule, settings, []))
            entry[2].append(pos)
    findings: list[Finding] = []
    for rule, settings, positions in by_code.values():
        if len(positions) < 2:
            continue
        datasets = [items[p][0] for p in positions]
        opts = dict(settings.options[rule.code])
        pairs: list = []
        why = _attempt(lambda: pairs.extend(rule.check_many(datasets, opts, context)))
        for pos in sorted({p for p, _ in pairs if isinstance(p, int) and 0 <= p < len(positions)}):
            ds, file_settings = items[positions[pos]]
            converted: list = []
            why = _attempt(lambda: converted.append(to_findings(ds, rule, file_settings.severity[rule.code],
                                                                [pr for p, pr in pairs if p == pos]))) or why
            if converted:
                found, where = converted[0]
                _dedupe_fingerprints(found)
                locate(ds, found, where)
                findings.extend(found)
        if why is not None:  # every file of the group: each one's cross-file check is incomplete
            findings.extend(rule_failed(ds.path, rule, why, across=True) for ds in datasets)
    return rank(findings)
