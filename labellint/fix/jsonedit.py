"""Edit a COCO file in place: every byte that no edit touches stays as it was.

A fix sets a field of an entry or deletes an entry. The loader knows where each entry starts
(Dataset.offsets); this module finds where it ends and where its fields are with a small
scanner, then splices new bytes in. New values follow the style of the value they replace:
an integer stays an integer when the new value is whole, a list written ``[1, 2]`` stays spaced,
``[1,2]`` stays tight, a list spread over lines keeps its indentation. Deleting an entry removes
it with one separator, so a minified file stays minified and an indented file keeps its layout.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass

from labellint.coco.dataset import MISSING_ID
from labellint.findings import Edit

_WS = b" \t\r\n"
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_STRUCT = re.compile(rb'["\[\]{}]')
_SCALAR = re.compile(rb"[^,\]}\s]+")


class EditError(ValueError):
    """The file is not shaped as the edit expects (should not happen for a file that loaded)."""


def skip_ws(buf, pos: int) -> int:
    n = len(buf)
    while pos < n and buf[pos] in _WS:
        pos += 1
    return pos


def value_end(buf, pos: int) -> int:
    """End (exclusive) of the JSON value that starts at ``pos``."""
    first = buf[pos:pos + 1]
    if first == b'"':
        m = _STRING.match(buf, pos)
        if not m:
            raise EditError(f"unterminated string at byte {pos}")
        return m.end()
    if first in (b"{", b"["):
        depth = 0
        i = pos
        while True:
            m = _STRUCT.search(buf, i)
            if m is None:
                raise EditError(f"unterminated value at byte {pos}")
            c = m.group()
            if c == b'"':
                s = _STRING.match(buf, m.start())
                if not s:
                    raise EditError(f"unterminated string at byte {m.start()}")
                i = s.end()
                continue
            depth += 1 if c in (b"{", b"[") else -1
            i = m.end()
            if depth == 0:
                return i
    m = _SCALAR.match(buf, pos)
    if not m:
        raise EditError(f"no value at byte {pos}")
    return m.end()


@dataclass
class Member:
    key: str
    key_start: int
    value_start: int
    value_end: int


def members(buf, start: int) -> tuple[list[Member], int]:
    """The members of the object at ``start`` and the position of its closing brace."""
    if buf[start:start + 1] != b"{":
        raise EditError(f"expected an object at byte {start}")
    out: list[Member] = []
    pos = skip_ws(buf, start + 1)
    if buf[pos:pos + 1] == b"}":
        return out, pos
    while True:
        m = _STRING.match(buf, pos)
        if not m:
            raise EditError(f"expected a key at byte {pos}")
        key = json.loads(bytes(m.group()).decode("utf-8", "surrogatepass"))
        pos = skip_ws(buf, m.end())
        if buf[pos:pos + 1] != b":":
            raise EditError(f"expected ':' at byte {pos}")
        vstart = skip_ws(buf, pos + 1)
        vend = value_end(buf, vstart)
        out.append(Member(key, m.start(), vstart, vend))
        pos = skip_ws(buf, vend)
        c = buf[pos:pos + 1]
        if c == b"}":
            return out, pos
        if c != b",":
            raise EditError(f"expected ',' or '}}' at byte {pos}")
        pos = skip_ws(buf, pos + 1)


def entry_span(ds, section: str, index: int) -> tuple[int, int] | None:
    starts = ds.offsets().get(section)
    if starts is None or not 0 <= index < len(starts):
        return None
    start = int(starts[index])
    return start, value_end(ds.data, start)


# -- rendering values in the style of the bytes they replace ------------------------------------

def number(value, like_int: bool) -> int | float:
    """``value`` as the file would write it: whole numbers as integers where the file did."""
    if isinstance(value, int):  # bool included
        return value
    v = float(value)
    if not math.isfinite(v):
        raise EditError(f"cannot write the non-finite number {v}")
    v = float(f"{v:.12g}")  # 95.30000000000001 -> 95.3: arithmetic noise is not data
    if like_int and v.is_integer():
        return int(v)
    return v


def _shape_like(value, old):
    """Give numbers in ``value`` the int/float kind of the matching numbers in ``old``."""
    if isinstance(value, (list, tuple)):
        olds = old if isinstance(old, list) else []
        ints = [isinstance(o, int) and not isinstance(o, bool) for o in olds if isinstance(o, (int, float))]
        default_int = bool(ints) and all(ints)
        out = []
        for i, v in enumerate(value):
            o = olds[i] if i < len(olds) else None
            if isinstance(v, (list, tuple)):
                out.append(_shape_like(v, o if isinstance(o, list) else (olds[0] if olds and isinstance(olds[0], list) else [])))
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                like = (isinstance(o, int) and not isinstance(o, bool)) if isinstance(o, (int, float)) else default_int
                out.append(number(v, like))
            else:
                out.append(v)
        return out
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return number(value, isinstance(old, int) and not isinstance(old, bool) if old is not None else True)
    return value


def render(value, old: bytes | None = None, ascii_only: bool = False) -> bytes:
    """JSON bytes for ``value`` written the way ``old`` (the bytes it replaces) was written."""
    old_value = None
    if old is not None:
        try:
            old_value = json.loads(bytes(old).decode("utf-8", "surrogatepass"))
        except ValueError:
            old_value = None
    shaped = _shape_like(value, old_value) if old is not None else _shape_like(value, None)
    kw = {"ensure_ascii": ascii_only, "allow_nan": False}
    if isinstance(shaped, (list, dict)) and old is not None and b"\n" in old:
        # spread over lines: same step, re-based on the closing bracket's indentation
        old_b = bytes(old)
        first_item = re.match(rb"[\[{]\r?\n([ \t]*)", old_b)
        closing = re.search(rb"\n([ \t]*)[\]}]\s*$", old_b)
        if first_item and closing:
            base = closing.group(1).decode()
            step = first_item.group(1).decode()[len(base):] or "  "
            text = json.dumps(shaped, indent=step, separators=(",", ": "), **kw)
            newline = "\r\n" if b"\r\n" in old_b else "\n"
            return text.replace("\n", newline + base).encode("utf-8", "surrogatepass")
    spaced = old is None or b", " in bytes(old) or b": " in bytes(old)
    if old is not None and not isinstance(old_value, (list, dict)):
        spaced = True  # a scalar replaced by a list: the usual COCO style
    seps = (", ", ": ") if spaced else (",", ":")
    return json.dumps(shaped, separators=seps, **kw).encode("utf-8", "surrogatepass")


# -- applying edits ----------------------------------------------------------------------------

def _array_bounds(buf, first_start: int, last_end: int) -> tuple[int, int]:
    """Positions just inside the '[' before ``first_start`` and the ']' after ``last_end``."""
    i = first_start - 1
    while i >= 0 and buf[i] in _WS:
        i -= 1
    j = skip_ws(buf, last_end)
    if buf[i:i + 1] != b"[" or buf[j:j + 1] != b"]":
        raise EditError("could not find the section array's brackets")
    return i + 1, j


def _member_sep(buf, start: int, ms: list[Member]) -> tuple[bytes, bytes]:
    """(separator between members, separator between key and value) used by this object."""
    if len(ms) >= 2:
        between = bytes(buf[ms[0].value_end:ms[1].key_start])
    elif ms:
        lead = bytes(buf[start + 1:ms[0].key_start])
        between = b"," + lead if b"\n" in lead else b", "
    else:
        between = b", "
    if ms:
        kv = bytes(buf[ms[0].key_start:ms[0].value_start])
        kv = kv[kv.index(b'"', 1) + 1:]
    else:
        kv = b": "
    return between, kv


def _appended(ds, appends: dict, sets: dict, ascii_only: bool) -> list[tuple[int, int, bytes]]:
    """Splices that add entries after the last one of their section, written as it is (the
    separator before it, its spacing and indentation), each with the next id unused by the
    file and by the ids the other edits set."""
    buf, offsets = ds.data, ds.offsets()
    out = []
    for section, entries in appends.items():
        starts = offsets.get(section)
        if starts is None or len(starts) == 0:
            raise EditError(f"no entry in {section} to add after")
        column = {"annotations": ds.annotations.id, "images": ds.images.id}.get(section)
        used = [int(v) for v in column.tolist() if v != MISSING_ID] if column is not None else []
        used += [v for (sec, _), fields in sets.items() if sec == section
                 for k, v in fields.items() if k == "id" and isinstance(v, int)]
        next_id = max(used, default=0) + 1
        last = int(starts[-1])
        end = value_end(buf, last)
        sep = bytes(buf[value_end(buf, int(starts[-2])):int(starts[-1])]) if len(starts) > 1 else b", "
        old = bytes(buf[last:end])
        text = b""
        for k, fields in enumerate(entries):
            text += sep + render({"id": next_id + k, **fields}, old, ascii_only)
        out.append((end, end, text))
    return out


def apply_edits(ds, edits: list[Edit]) -> bytes:
    """The file's bytes with ``edits`` applied (edits of one entry combine; a deleted entry's
    other edits are dropped; appended entries follow the last one, with the next unused ids)."""
    buf = ds.data
    ascii_only = bool(ds.layout.get("ascii"))
    offsets = ds.offsets()
    deletes: dict[str, set[int]] = defaultdict(set)
    sets: dict[tuple[str, int], dict[str, object]] = defaultdict(dict)
    appends: dict[str, list[dict]] = defaultdict(list)
    for e in edits:
        if e.op == "delete":
            deletes[e.section].add(e.index)
        elif e.op == "set":
            sets[(e.section, e.index)][e.field] = e.value
        elif e.op == "append":
            appends[e.section].append(e.value)
        else:
            raise EditError(f"unknown edit {e.op!r}")
    splices: list[tuple[int, int, bytes]] = _appended(ds, appends, sets, ascii_only)  # (start, end, replacement)
    for (section, index), fields in sets.items():
        if index in deletes.get(section, ()):
            continue
        starts = offsets.get(section)
        if starts is None or not 0 <= index < len(starts):
            raise EditError(f"no entry /{section}/{index}")
        start = int(starts[index])
        ms, close = members(buf, start)
        by_key = {m.key: m for m in ms}
        missing = []
        for name, value in fields.items():
            m = by_key.get(name)
            if m is None:
                missing.append((name, value))
                continue
            old = bytes(buf[m.value_start:m.value_end])
            splices.append((m.value_start, m.value_end, render(value, old, ascii_only)))
        if missing:
            between, kv = _member_sep(buf, start, ms)
            text = b"".join((between if (ms or i) else b"") + json.dumps(k, ensure_ascii=ascii_only).encode()
                            + kv + render(v, None, ascii_only) for i, (k, v) in enumerate(missing))
            at = ms[-1].value_end if ms else close
            if not ms:
                text = text.lstrip(b", ")
            splices.append((at, at, text))
    for section, rows in deletes.items():
        starts = offsets.get(section)
        if starts is None:
            raise EditError(f"no section {section}")
        n = len(starts)
        rows = sorted(r for r in rows if 0 <= r < n)
        if not rows:
            continue
        if len(rows) == n:  # empty the array: '[' and ']' close up
            inner_start, inner_end = _array_bounds(buf, int(starts[0]), value_end(buf, int(starts[-1])))
            splices.append((inner_start, inner_end, b""))
            continue
        runs: list[list[int]] = []
        for r in rows:
            if runs and runs[-1][1] == r - 1:
                runs[-1][1] = r
            else:
                runs.append([r, r])
        for a, b in runs:
            if b < n - 1:  # this entry and the separator after it, up to the next entry
                splices.append((int(starts[a]), int(starts[b + 1]), b""))
            else:  # the run ends the array: the separator before it goes instead
                splices.append((value_end(buf, int(starts[a - 1])), value_end(buf, int(starts[b])), b""))
    splices.sort(key=lambda s: (s[0], s[1]))
    out = []
    pos = 0
    for start, end, text in splices:
        if start < pos:
            raise EditError(f"overlapping edits at byte {start}")
        out.append(bytes(buf[pos:start]))
        out.append(text)
        pos = end
    out.append(bytes(buf[pos:]))
    return b"".join(out)
