"""Where each image, annotation and category starts in the file, and its line and column.

Nothing here runs unless a finding is reported: the Dataset asks for offsets on first use.

Byte offset of every element of the top-level arrays, three ways:

* split (large files whose annotations the loader decoded in two processes): the loader has
  already *proven* where the annotations array starts and one element boundary inside it (see
  split.plan_split). Its two children, once they have sent their columns, measure the element
  lengths of their part in the background (:class:`Prefetch`), while the rules run here; the
  head of the file (images) is measured here. No pass over the whole file on the critical path.
* fast (strict JSON): msgspec decodes the sections as zero-copy ``Raw`` views, which gives each
  section's offset; element lengths come from decoding a section as ``list[Raw]``.
* slow (non-strict JSON such as ``Infinity``): a regex tokenizer that tracks nesting depth.

From lengths to starts: elements are separated by the same bytes in almost every real file
(``,`` minified, ``,\\n    `` indented), so the starts are a cumulative sum, verified byte for
byte with numpy. Irregular separators fall back to a loop over the gaps.

Line and column are computed only for the offsets a report needs, in one linear pass.
The buffer may be ``bytes`` or a read-only ``mmap`` (large files are mapped, not read).
"""

from __future__ import annotations

import re

import msgspec
import numpy as np

from labellint.coco import parallel

SECTIONS = ("images", "annotations", "categories")
_WS = b" \t\r\n"
_GAP = re.compile(rb"[ \t\r\n]*,[ \t\r\n]*")
#: must match split.REST_PREFIX (not imported: split imports this module)
_REST_PREFIX = b'{"\\ue000":['


class _SectionViews(msgspec.Struct):
    # an empty Raw means "absent" (msgspec does not support Raw inside a union)
    images: msgspec.Raw = msgspec.Raw()
    annotations: msgspec.Raw = msgspec.Raw()
    categories: msgspec.Raw = msgspec.Raw()


class _RestViews(_SectionViews):
    rest: list[msgspec.Raw] = msgspec.field(default_factory=list, name="\ue000")


_sections_decoder = msgspec.json.Decoder(_SectionViews)
_rest_decoder = msgspec.json.Decoder(_RestViews)
_raw_list_decoder = msgspec.json.Decoder(list[msgspec.Raw])


def _address(buf) -> int:
    return np.frombuffer(buf, np.uint8).ctypes.data if len(buf) else 0


def _lengths(elements: list) -> np.ndarray:
    return np.fromiter(map(len, elements), np.int64, len(elements))


def element_offsets(data, layout: dict | None = None) -> dict[str, np.ndarray]:
    """Byte offset of every element of each top-level section array (absent sections omitted).

    ``layout``: the loader's proven cut of the annotations array (Dataset.layout), if any."""
    try:
        if layout and "split" in layout:
            return _split_offsets(data, layout)
        return _fast_offsets(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return _slow_offsets(data)


def _view_offsets(data, views: _SectionViews, container, shift: int) -> dict[str, np.ndarray]:
    """Offsets of the elements of the section arrays found as Raw views into ``container``, a
    buffer that holds the file's bytes from ``shift`` on (``shift`` may be negative for a
    prefix)."""
    base = _address(container)
    out: dict[str, np.ndarray] = {}
    for name in SECTIONS:
        raw = getattr(views, name)
        if not len(raw) or memoryview(raw)[:1] != b"[":
            continue
        elements = _raw_list_decoder.decode(raw)
        start = _address(raw) - base + shift
        out[name] = _starts_from_lengths(data, start, _lengths(elements)) if elements else np.zeros(0, np.int64)
    return out


def _fast_offsets(data) -> dict[str, np.ndarray]:
    return _view_offsets(data, _sections_decoder.decode(data), data, 0)


def first_part_lengths(data, start: int, split: int) -> np.ndarray:
    """Byte length of each annotation before the loader's cut."""
    with parallel.spliced(data, start, split, b"[", b"]") as part:
        return _lengths(_raw_list_decoder.decode(part))


def tail_offsets(data, split: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Byte length of each annotation after the cut, and the offsets of the elements of the
    sections that follow the annotations array (COCO puts categories there)."""
    with parallel.spliced(data, split + 1, len(data), _REST_PREFIX) as tail:
        views = _rest_decoder.decode(tail)
        rest_lengths = _lengths(views.rest)
        offsets = _view_offsets(data, views, tail, split + 1 - len(_REST_PREFIX))
        del views
    return rest_lengths, offsets


class Prefetch:
    """Element lengths that the loader's children measure while the rules run.

    After sending their columns, the two decoding children go on to measure the elements of
    their part of the annotations array (the list[Raw] pass below, ~0.15 s each), on the second
    core while this process runs the rules. Only runs with findings need them; the children
    are killed when the Dataset goes away (or when the positions are taken).
    """

    def __init__(self, first, rest):
        self._children = (first, rest)

    def take(self):
        """(first lengths, rest lengths, offsets in the tail), or None when a child failed."""
        first, rest = self._children
        try:
            first_lengths = parallel.later(first)
            rest_lengths, tail = parallel.later(rest)
            return first_lengths, rest_lengths, tail
        except Exception:
            return None
        finally:
            self.cancel()

    def cancel(self) -> None:
        for child in self._children:
            parallel.stop(child)


def _split_offsets(data, layout: dict) -> dict[str, np.ndarray]:
    head_end, start, split = layout["head_end"], layout["start"], layout["split"]
    out: dict[str, np.ndarray] = {}
    if head_end is not None:  # sections before the annotations (COCO puts images there)
        with parallel.spliced(data, 0, head_end, b"", b"}") as head:
            out.update(_view_offsets(data, _sections_decoder.decode(head), head, 0))
    prefetch = layout.get("prefetch")
    measured = prefetch.take() if prefetch is not None else None
    if measured is not None:
        first_lengths, rest_lengths, tail = measured
    else:  # measure now, the part before the cut in a child when there is a second core
        child = parallel.start(lambda: first_part_lengths(data, start, split)) if parallel.available() else None
        try:
            rest_lengths, tail = tail_offsets(data, split)
            try:
                first_lengths = parallel.result(child)
            except parallel.ChildFailed:
                first_lengths = first_part_lengths(data, start, split)
        finally:
            parallel.stop(child)
    out.update(tail)
    out["annotations"] = _starts_from_lengths(data, start - 1, np.concatenate([first_lengths, rest_lengths]))
    return out


def _starts_from_lengths(data, array_start: int, lens: np.ndarray) -> np.ndarray:
    first = array_start + 1
    while data[first] in _WS:
        first += 1
    n = len(lens)
    if n == 1:
        return np.array([first], np.int64)
    gap = _GAP.match(data, first + int(lens[0])).group(0)
    g = len(gap)
    starts = np.empty(n, np.int64)
    starts[0] = first
    np.cumsum(lens[:-1] + g, out=starts[1:])
    starts[1:] += first
    ends = starts[:-1] + lens[:-1]
    arr = np.frombuffer(data, np.uint8)
    regular = bool(ends[-1] + g <= len(arr)) and all(
        np.array_equal(arr[ends + j], np.full(n - 1, gap[j], np.uint8)) for j in range(g))
    if regular:
        return starts
    # irregular separators: walk the gaps one by one (still linear, just slower)
    pos = first
    for i in range(n):
        starts[i] = pos
        if i + 1 < n:
            pos = _GAP.match(data, pos + int(lens[i])).end()
    return starts


_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},:]', re.S)


def _slow_offsets(data) -> dict[str, np.ndarray]:
    out: dict[str, list[int]] = {}
    depth = 0
    key = None
    last_string = None
    current: list[int] | None = None
    n = len(data)

    def next_value(pos: int) -> int:
        while pos < n and data[pos] in _WS:
            pos += 1
        return pos

    for m in _TOKEN.finditer(data):
        tok = m.group(0)
        c = tok[:1]
        if c == b'"':
            if depth == 1:
                last_string = tok
            continue
        if c == b":":
            if depth == 1 and last_string is not None:
                key = last_string[1:-1].decode("utf-8", "replace")
            continue
        if c in b"[{":
            depth += 1
            if depth == 2 and c == b"[" and key in SECTIONS:
                # a section written twice: its last array, the one JSON readers keep (the
                # loader reports the key twice; fixes refuse such a file)
                current = out[key] = []
                p = next_value(m.end())
                if p < n and data[p : p + 1] != b"]":
                    current.append(p)
            continue
        if c in b"]}":
            if depth == 2:
                current = None
            depth -= 1
            continue
        if c == b"," and depth == 2 and current is not None:
            current.append(next_value(m.end()))
    return {k: np.asarray(v, np.int64) for k, v in out.items()}


def _char_len(chunk: bytes) -> int:
    return len(chunk) if chunk.isascii() else len(chunk.decode("utf-8", "replace"))


_CHUNK = 1 << 24


def _count_newlines(data, start: int, end: int) -> int:
    if isinstance(data, bytes):
        return data.count(b"\n", start, end)
    if data.find(b"\n", start, end) < 0:  # a memchr: minified files end here
        return 0
    # an mmap has no count(): count slices of it (one copy of at most 16 MB at a time)
    return sum(data[i : min(end, i + _CHUNK)].count(b"\n") for i in range(start, end, _CHUNK))


def _chars(data, start: int, end: int, ascii_only: bool) -> int:
    """Characters in data[start:end] (UTF-8)."""
    if ascii_only:
        return end - start
    return sum(_char_len(data[i : min(end, i + _CHUNK)]) for i in range(start, end, _CHUNK))


def line_columns(data, offsets, ascii_only: bool = False) -> dict[int, tuple[int, int]]:
    """1-based (line, column in characters) for each byte offset, in one pass over the file.

    ``ascii_only``: the file is known to be ASCII (the loader checks), so characters are bytes
    and a minified file's columns cost nothing."""
    result: dict[int, tuple[int, int]] = {}
    line, col, prev = 1, 1, 0
    for off in sorted(set(int(o) for o in offsets)):
        newlines = _count_newlines(data, prev, off)
        if newlines:
            line += newlines
            line_start = data.rfind(b"\n", prev, off) + 1
            col = 1 + _chars(data, line_start, off, ascii_only)
        else:
            col += _chars(data, prev, off, ascii_only)
        prev = off
        result[off] = (line, col)
    return result


def offset_to_line_column(data, offset: int) -> tuple[int, int]:
    return line_columns(data, [offset])[offset]
