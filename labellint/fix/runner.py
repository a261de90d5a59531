"""``check --fix``: apply the fixes rules propose, re-lint, repeat until nothing fixable is left.

Each pass lints the file, takes the fixable findings in rank order, skips any whose edits touch an
entry that an earlier fix of the same pass already touches (the next pass, on the re-read
file, picks them up), splices all chosen edits in at once (jsonedit) and re-reads the result.
A finding whose fix was applied once is never fixed again, so a fix that does not cure its
finding cannot loop. Nothing is written here: the caller writes the final bytes atomically, or
shows them as a diff.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field

from labellint import engine
from labellint.coco import load_bytes
from labellint.findings import Finding
from labellint.fix import jsonedit

MAX_PASSES = 10


@dataclass
class FileFix:
    relpath: str
    original: bytes
    fixed: bytes
    applied: list[Finding] = field(default_factory=list)  # the findings whose fixes went in
    passes: int = 0

    @property
    def changed(self) -> bool:
        return self.fixed != self.original

    def by_rule(self) -> Counter:
        return Counter(f.code for f in self.applied)


def allowed(f: Finding, unsafe: bool) -> bool:
    return f.fix is not None and (f.fix.safety == "safe" or unsafe)


def fix_dataset(ds, settings, context: dict, unsafe: bool, exclude: set[str] = frozenset()):
    """(final Dataset, its findings, skipped rule codes, FileFix). ``exclude``: fingerprints not to
    fix (hidden by a baseline or present at the diff base)."""
    original = bytes(ds.data)
    record = FileFix(ds.path, original, original)
    done: set[str] = set(exclude)
    findings, skipped = engine.lint(ds, settings, context)
    for _ in range(MAX_PASSES):
        chosen, touched, edits = [], set(), []
        for f in findings:
            if not allowed(f, unsafe) or f.fingerprint in done:
                continue
            try:
                change = f.fix.resolved()
            except Exception:  # a fix that cannot be computed is simply not offered
                done.add(f.fingerprint)
                continue
            entities = f.fix.entities()
            if not change or entities & touched:
                if not change:
                    done.add(f.fingerprint)
                continue
            touched |= entities
            chosen.append(f)
            edits.extend(change)
        if not chosen:
            break
        new = jsonedit.apply_edits(ds, edits)
        done.update(f.fingerprint for f in chosen)
        record.passes += 1
        if new == bytes(ds.data):
            continue
        record.applied.extend(chosen)
        ds = load_bytes(new, ds.path)
        findings, skipped = engine.lint(ds, settings, context)
    record.fixed = bytes(ds.data)
    return ds, findings, skipped, record


def unified_diff(fix: FileFix, context_lines: int = 3) -> str:
    """A unified diff of the change. A minified file is one line, so its diff is shown entry by
    entry instead: each changed entry as a -/+ pair under its JSON pointer."""
    before = fix.original.decode("utf-8", "surrogateescape")
    after = fix.fixed.decode("utf-8", "surrogateescape")
    a, b = f"a/{fix.relpath}", f"b/{fix.relpath}"
    if before.count("\n") > 2:
        lines = difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                     a, b, n=context_lines)
        return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
    return _entry_diff(fix, a, b)


def _entry_diff(fix: FileFix, a: str, b: str) -> str:
    old, new = load_bytes(fix.original, fix.relpath), load_bytes(fix.fixed, fix.relpath)
    out = [f"--- {a}\n", f"+++ {b}\n"]
    for section in ("images", "annotations", "categories"):
        before, after = _entries(old, section), _entries(new, section)
        for where, removed, added in _changes(before, after):
            out.append(f"@@ /{section}/{where} @@\n")
            out.extend(f"-{t.decode('utf-8', 'surrogateescape')}\n" for t in removed)
            out.extend(f"+{t.decode('utf-8', 'surrogateescape')}\n" for t in added)
    return "".join(out) if len(out) > 2 else ""


def _changes(before, after):
    """(index, removed entries, added entries) in one walk: fixes edit entries in place or delete
    them, never insert or reorder, so no general diff (quadratic on 861k entries) is needed. At a
    mismatch, the entry is deleted when a later one (within the number of deletions left) is the
    one that follows in ``after``; otherwise it was edited."""
    i = j = 0
    while i < len(before) or j < len(after):
        if i < len(before) and j < len(after) and before[i] == after[j]:
            i += 1
            j += 1
            continue
        surplus = (len(before) - i) - (len(after) - j)
        if j >= len(after):
            yield i, before[i:], []
            return
        deleted = next((d for d in range(1, surplus + 1) if before[i + d] == after[j]), 0)
        if deleted:
            yield i, before[i:i + deleted], []
            i += deleted
        else:
            yield i, before[i:i + 1], after[j:j + 1]
            i += 1
            j += 1


class _Entries:
    """Each entry's bytes, cut between consecutive starts on demand (separators stripped): a
    861k-entry file is compared without holding a copy of every entry."""

    def __init__(self, ds, section: str):
        starts = ds.offsets().get(section)
        self.data = ds.data
        self.bounds = [] if starts is None else starts.tolist()

    def __len__(self) -> int:
        return len(self.bounds)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        start = self.bounds[i]
        if i + 1 < len(self.bounds):
            return bytes(self.data[start:self.bounds[i + 1]]).rstrip(b" \t\r\n").removesuffix(b",").rstrip(b" \t\r\n")
        return bytes(self.data[start:jsonedit.value_end(self.data, start)])


_entries = _Entries
