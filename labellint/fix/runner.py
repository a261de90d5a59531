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
import os
import stat
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from labellint import engine
from labellint.coco import load_bytes
from labellint.coco.positions import element_offsets
from labellint.findings import Finding
from labellint.fix import jsonedit

MAX_PASSES = 10
BOM = b"\xef\xbb\xbf"
_REFINE_LINES = 2000  # a changed stretch up to this many lines is diffed line by line (difflib)


@dataclass
class FileFix:
    relpath: str
    original: bytes  # the file's bytes, a byte-order mark included
    fixed: bytes
    applied: list[Finding] = field(default_factory=list)  # the findings whose fixes went in
    passes: int = 0

    @property
    def changed(self) -> bool:
        return self.fixed != self.original

    def by_rule(self) -> Counter:
        return Counter(f.code for f in self.applied)


def leading_bom(source) -> bytes:
    """The UTF-8 byte-order mark ``source`` starts with (b"" when none, or when it is not a regular
    file: a pipe is never opened twice). The loader skips the mark; whatever is written back
    keeps it."""
    if source is None:
        return b""
    try:
        fd = os.open(source, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (OSError, ValueError):
        return b""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        return BOM if os.read(fd, len(BOM)) == BOM else b""
    except OSError:
        return b""
    finally:
        os.close(fd)


def allowed(f: Finding, unsafe: bool) -> bool:
    return f.fix is not None and (f.fix.safety == "safe" or unsafe)


def fix_dataset(ds, settings, context, unsafe: bool, exclude: set[str] = frozenset()):
    """(final Dataset, its findings, skipped rule codes, FileFix). ``exclude``: fingerprints not to
    fix (hidden by a baseline or present at the diff base)."""
    ds.check_editable()  # a key twice: an edit could land in the copy readers ignore
    context = engine.as_context(context)
    bom = leading_bom(context.source)
    original = bom + bytes(ds.data)
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
    record.fixed = bom + bytes(ds.data) if record.passes else original
    return ds, findings, skipped, record


def unified_diff(fix: FileFix, context_lines: int = 3) -> str:
    """A unified diff of the change. A minified file is one line, so its diff is shown entry by
    entry instead: each changed entry as a -/+ pair under its JSON pointer.

    Both are linear in the file: fixes edit entries in place, delete them or append after the last
    one, never insert or reorder, so the entries that are the same on both sides are matched in
    one walk and only the bytes between them can differ (a general line diff is super-quadratic on an indented file,
    whose lines repeat: minutes for a few megabytes)."""
    if not fix.changed:
        return ""
    a, b = f"a/{fix.relpath}", f"b/{fix.relpath}"
    if fix.original.count(b"\n") > 2:
        return _line_diff(fix.original, fix.fixed, a, b, context_lines)
    return _entry_diff(fix, a, b)


def _entry_diff(fix: FileFix, a: str, b: str) -> str:
    old, new = _Source(fix.original), _Source(fix.fixed)
    out = [f"--- {a}\n", f"+++ {b}\n"]
    for section in ("images", "annotations", "categories"):
        before, after = old.entries(section), new.entries(section)
        for where, removed, added in _changes(before, after):
            out.append(f"@@ /{section}/{where} @@\n")
            out.extend(f"-{t.decode('utf-8', 'surrogateescape')}\n" for t in removed)
            out.extend(f"+{t.decode('utf-8', 'surrogateescape')}\n" for t in added)
    return "".join(out) if len(out) > 2 else ""


def _walk(before, after):
    """The entry-by-entry alignment: ("same", i, j) for an entry kept as it was, ("change", i,
    removed, added) for a run that differs. Fixes edit entries in place, delete them or append
    after the last one, never insert or reorder, so no general diff (quadratic on 861k entries)
    is needed. At a mismatch, the entry is deleted when a later one (within the number of
    deletions left) is the one that follows in ``after``; otherwise it was edited. (When a pass
    both deletes and appends, a deletion may show as an edit into an appended entry: the same
    bytes, paired differently.)"""
    i = j = 0
    while i < len(before) or j < len(after):
        if i < len(before) and j < len(after) and before[i] == after[j]:
            yield "same", i, j
            i += 1
            j += 1
            continue
        surplus = (len(before) - i) - (len(after) - j)
        if j >= len(after):
            yield "change", i, before[i:], []
            return
        if i >= len(before):  # not made by a fix; shown all the same
            yield "change", i, [], after[j:]
            return
        deleted = next((d for d in range(1, surplus + 1) if before[i + d] == after[j]), 0)
        if deleted:
            yield "change", i, before[i:i + deleted], []
            i += deleted
        else:
            yield "change", i, before[i:i + 1], after[j:j + 1]
            i += 1
            j += 1


def _changes(before, after):
    """(index, removed entries, added entries) of each run that differs (see :func:`_walk`)."""
    for step in _walk(before, after):
        if step[0] == "change":
            yield step[1:]


class _Source:
    """A file's bytes and where its entries are (the byte-order mark, which the offsets do not
    count, stays in ``data``)."""

    def __init__(self, data: bytes):
        self.data = data
        self.shift = len(BOM) if data[:len(BOM)] == BOM else 0
        body = memoryview(data)[self.shift:]
        self.offsets = element_offsets(body)

    def entries(self, section: str) -> "_Entries":
        return _Entries(self.data, self.offsets.get(section), self.shift)


class _Entries:
    """Each entry's bytes, cut between consecutive starts on demand (separators stripped): a
    861k-entry file is compared without holding a copy of every entry."""

    def __init__(self, data, starts, shift: int = 0):
        self.data = data
        self.bounds = [] if starts is None else [s + shift for s in starts.tolist()]

    def __len__(self) -> int:
        return len(self.bounds)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        start, end = self.span(i)
        return bytes(self.data[start:end])

    def span(self, i: int) -> tuple[int, int]:
        """Where entry ``i`` starts and ends (its closing bracket included, separators not)."""
        start = self.bounds[i]
        if i + 1 < len(self.bounds):
            end = self.bounds[i + 1]
            while end > start and self.data[end - 1] in b" \t\r\n":
                end -= 1
            if end > start and self.data[end - 1] == ord(","):
                end -= 1
            while end > start and self.data[end - 1] in b" \t\r\n":
                end -= 1
            return start, end
        return start, jsonedit.value_end(self.data, start)


# -- the line diff of an indented file ---------------------------------------------------------

def _line_diff(before: bytes, after: bytes, a: str, b: str, n: int) -> str:
    old, new = _Lines(before), _Lines(after)
    ops = []  # difflib's opcodes over the whole file: (tag, i1, i2, j1, j2)
    i = j = 0
    for b0, b1, a0, a1 in _line_regions(before, after, _byte_regions(before, after)):
        i1, i2, j1, j2 = old.index(b0), old.index(b1), new.index(a0), new.index(a1)
        if i1 > i:
            ops.append(("equal", i, i1, j, j1))
        ops.extend(_refine(old, new, i1, i2, j1, j2))
        i, j = i2, j2
    if i < old.count:
        ops.append(("equal", i, old.count, j, new.count))
    out = [f"--- {a}\n", f"+++ {b}\n"]
    for group in _grouped(_merge_equal(ops), n):
        first, last = group[0], group[-1]
        out.append(f"@@ -{_range(first[1], last[2])} +{_range(first[3], last[4])} @@\n")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out.extend(" " + old.line(k) for k in range(i1, i2))
                continue
            out.extend("-" + old.line(k) for k in range(i1, i2))
            out.extend("+" + new.line(k) for k in range(j1, j2))
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in out)


class _Lines:
    """Line access by number without splitting the file: where each newline is."""

    def __init__(self, data: bytes):
        self.data = data
        self.ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 10)
        self.count = len(self.ends) + (1 if data and data[-1:] != b"\n" else 0)

    def index(self, pos: int) -> int:
        """The number of the line that starts at ``pos`` (a line boundary)."""
        k = int(np.searchsorted(self.ends, pos))
        return k + 1 if pos == len(self.data) and k < self.count and pos > 0 else k

    def line(self, k: int) -> str:
        start = int(self.ends[k - 1]) + 1 if k else 0
        end = int(self.ends[k]) + 1 if k < len(self.ends) else len(self.data)
        return self.data[start:end].decode("utf-8", "surrogateescape")


def _byte_regions(before: bytes, after: bytes) -> list[tuple[int, int, int, int]]:
    """(b0, b1, a0, a1): the byte ranges that differ, in order; between them both files hold the
    same bytes. Entries kept as they were anchor the comparison; without entries (or should the
    anchors not line up) the one range between the common head and tail."""
    try:
        old, new = _Source(before), _Source(after)
        anchors = []
        for section in sorted(old.offsets, key=lambda s: int(old.offsets[s][0]) if len(old.offsets[s]) else -1):
            eb, ea = old.entries(section), new.entries(section)
            for step in _walk(eb, ea):
                if step[0] == "same":
                    anchors.append((*eb.span(step[1]), *ea.span(step[2])))
    except Exception:  # not a file the offsets can be found in: one range
        anchors = []
    anchors.sort()
    if any(p[3] > q[2] for p, q in zip(anchors, anchors[1:])):
        anchors = []
    out = []
    pb = pa = 0
    for bs, be, as_, ae in [*anchors, (len(before), len(before), len(after), len(after))]:
        if before[pb:bs] != after[pa:as_]:
            out.append(_trim(before, after, pb, bs, pa, as_))
        pb, pa = be, ae
    return out


def _trim(before, after, b0, b1, a0, a1):
    """The range without the head and tail it has in common on both sides."""
    lo, hi = 0, min(b1 - b0, a1 - a0)
    while lo < hi:  # the longest common head, by halving (each test is one C comparison)
        mid = (lo + hi + 1) // 2
        if before[b0:b0 + mid] == after[a0:a0 + mid]:
            lo = mid
        else:
            hi = mid - 1
    b0, a0 = b0 + lo, a0 + lo
    lo, hi = 0, min(b1 - b0, a1 - a0)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if before[b1 - mid:b1] == after[a1 - mid:a1]:
            lo = mid
        else:
            hi = mid - 1
    return b0, b1 - lo, a0, a1 - lo


def _line_regions(before, after, regions):
    """The byte ranges widened to whole lines on both sides, ranges that come to share a line
    merged. Outside the ranges both sides are the same bytes, so a range widens by the same number
    of bytes on each side."""
    out = []
    for b0, b1, a0, a1 in regions:
        back = b0 - (before.rfind(b"\n", 0, b0) + 1)
        if out and b0 - back < out[-1][1]:  # reaches into the previous range's line: one range
            b0, a0 = out[-1][0], out[-1][2]
            out.pop()
        else:
            b0, a0 = b0 - back, a0 - back
        if not (_at_line_start(before, b1) and _at_line_start(after, a1)):
            nl = before.find(b"\n", b1)
            ahead = (nl + 1 if nl >= 0 else len(before)) - b1
            b1, a1 = b1 + ahead, a1 + ahead
        out.append((b0, b1, a0, a1))
    merged = []
    for r in out:  # widening forward may reach the next range
        if merged and r[0] < merged[-1][1]:
            p = merged.pop()
            r = (p[0], max(p[1], r[1]), p[2], max(p[3], r[3]))
        merged.append(r)
    return merged


def _at_line_start(data: bytes, pos: int) -> bool:
    return pos == 0 or pos == len(data) or data[pos - 1:pos] == b"\n"


def _refine(old: _Lines, new: _Lines, i1: int, i2: int, j1: int, j2: int) -> list:
    """The opcodes of one changed stretch: line by line when it is small, else one block."""
    if i2 - i1 <= _REFINE_LINES and j2 - j1 <= _REFINE_LINES:
        a = [old.line(k) for k in range(i1, i2)]
        b = [new.line(k) for k in range(j1, j2)]
        return [(tag, p1 + i1, p2 + i1, q1 + j1, q2 + j1)
                for tag, p1, p2, q1, q2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()]
    tag = "replace" if i2 > i1 and j2 > j1 else "delete" if i2 > i1 else "insert"
    return [(tag, i1, i2, j1, j2)]


def _merge_equal(ops: list) -> list:
    out = []
    for op in ops:
        if op[1] == op[2] and op[3] == op[4]:
            continue
        if out and op[0] == "equal" and out[-1][0] == "equal":
            out[-1] = ("equal", out[-1][1], op[2], out[-1][3], op[4])
        else:
            out.append(op)
    return out


def _grouped(codes: list, n: int):
    """difflib.SequenceMatcher.get_grouped_opcodes on a list of opcodes: hunks with ``n`` lines
    of context."""
    if not codes:
        return
    if codes[0][0] == "equal":
        tag, i1, i2, j1, j2 = codes[0]
        codes[0] = tag, max(i1, i2 - n), i2, max(j1, j2 - n), j2
    if codes[-1][0] == "equal":
        tag, i1, i2, j1, j2 = codes[-1]
        codes[-1] = tag, i1, min(i2, i1 + n), j1, min(j2, j1 + n)
    nn = n + n
    group = []
    for tag, i1, i2, j1, j2 in codes:
        if tag == "equal" and i2 - i1 > nn:
            group.append((tag, i1, min(i2, i1 + n), j1, min(j2, j1 + n)))
            yield group
            group = []
            i1, j1 = max(i1, i2 - n), max(j1, j2 - n)
        group.append((tag, i1, i2, j1, j2))
    if group and not (len(group) == 1 and group[0][0] == "equal"):
        yield group


def _range(start: int, stop: int) -> str:
    """A hunk's line range as unified diffs write it."""
    beginning, length = start + 1, stop - start
    if length == 1:
        return f"{beginning}"
    if not length:
        beginning -= 1
    return f"{beginning},{length}"
