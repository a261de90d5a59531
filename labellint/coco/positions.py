"""Where each image, annotation and category starts in the file, and its line and column.

Two ways to find the byte offset of every element of the top-level arrays:

* fast (strict JSON): msgspec decodes the sections as zero-copy ``Raw`` views, which gives each
  section's offset; element lengths come from decoding a section as ``list[Raw]``. Elements are
  separated by the same bytes in almost every real file (``,`` minified, ``,\\n    `` indented),
  so the starts are a cumulative sum, verified byte for byte with numpy. Irregular separators
  fall back to a loop over the gaps.
* slow (non-strict JSON such as ``Infinity``): a regex tokenizer that tracks nesting depth.

Line and column are computed only for the offsets a report needs, in one linear pass.
"""

from __future__ import annotations

import re

import msgspec
import numpy as np

SECTIONS = ("images", "annotations", "categories")
_WS = b" \t\r\n"
_GAP = re.compile(rb"[ \t\r\n]*,[ \t\r\n]*")


class _SectionViews(msgspec.Struct):
    # an empty Raw means "absent" (msgspec does not support Raw inside a union)
    images: msgspec.Raw = msgspec.Raw()
    annotations: msgspec.Raw = msgspec.Raw()
    categories: msgspec.Raw = msgspec.Raw()


_sections_decoder = msgspec.json.Decoder(_SectionViews)
_raw_list_decoder = msgspec.json.Decoder(list[msgspec.Raw])


def _address(buf) -> int:
    return np.frombuffer(buf, np.uint8).ctypes.data if len(buf) else 0


def element_offsets(data: bytes) -> dict[str, np.ndarray]:
    """Byte offset of every element of each top-level section array (absent sections omitted)."""
    try:
        return _fast_offsets(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return _slow_offsets(data)


def _fast_offsets(data: bytes) -> dict[str, np.ndarray]:
    views = _sections_decoder.decode(data)
    base = _address(data)
    out: dict[str, np.ndarray] = {}
    for name in SECTIONS:
        raw = getattr(views, name)
        if not len(raw) or memoryview(raw)[:1] != b"[":
            continue
        start = _address(raw) - base
        elements = _raw_list_decoder.decode(raw)
        if not elements:
            out[name] = np.zeros(0, np.int64)
            continue
        lens = np.fromiter(map(len, elements), np.int64, len(elements))
        out[name] = _starts_from_lengths(data, start, lens)
    return out


def _starts_from_lengths(data: bytes, array_start: int, lens: np.ndarray) -> np.ndarray:
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
    regular = all(np.array_equal(arr[ends + j], np.full(n - 1, gap[j], np.uint8)) for j in range(g))
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


def _slow_offsets(data: bytes) -> dict[str, np.ndarray]:
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
            if depth == 2 and c == b"[" and key in SECTIONS and key not in out:
                current = out.setdefault(key, [])
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


def line_columns(data: bytes, offsets) -> dict[int, tuple[int, int]]:
    """1-based (line, column in characters) for each byte offset, in one pass over the file."""
    result: dict[int, tuple[int, int]] = {}
    line, col, prev = 1, 1, 0
    for off in sorted(set(int(o) for o in offsets)):
        newlines = data.count(b"\n", prev, off)
        if newlines:
            line += newlines
            line_start = data.rfind(b"\n", prev, off) + 1
            col = 1 + _char_len(data[line_start:off])
        else:
            col += _char_len(data[prev:off])
        prev = off
        result[off] = (line, col)
    return result


def offset_to_line_column(data: bytes, offset: int) -> tuple[int, int]:
    return line_columns(data, [offset])[offset]
