"""The state of one entry, as a short hash: what a review decision was made about.

A decision records the state of the annotation the reviewer saw; ``labellint apply`` applies it
only while the annotation is still in that state (or already in the decided one, so applying
twice changes nothing). The hash is of the entry's canonical JSON (sorted keys, no spaces), so
re-indenting or reordering the file does not count as a change, and any edit to the entry does.
"""

from __future__ import annotations

import hashlib
import json

import msgspec

from labellint import jsonscan


def _canonical(value):
    """Numbers by value: 50 and 50.0 are one state (a fix may write either). A loop over a stack,
    not recursion: an entry may nest as deep as the loader lets it (LABELLINT_MAX_JSON_DEPTH)."""
    def leaf(v):
        return int(v) if isinstance(v, float) and v.is_integer() else v

    if not isinstance(value, (list, dict)):
        return leaf(value)
    root = [] if isinstance(value, list) else {}
    stack = [(value, root)]
    while stack:
        source, copy = stack.pop()
        for key, v in (enumerate(source) if isinstance(source, list) else source.items()):
            if isinstance(v, (list, dict)):
                item = [] if isinstance(v, list) else {}
                stack.append((v, item))
            else:
                item = leaf(v)
            if isinstance(copy, list):
                copy.append(item)
            else:
                copy[key] = item
    return root


def state_of(entry) -> str:
    """16 hex digits identifying a decoded entry's content."""
    text = json.dumps(_canonical(entry), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def decode_entry(data, start: int, end: int):
    """The entry at ``data[start:end]``, decoded (non-strict numbers such as NaN allowed)."""
    chunk = bytes(data[start:end])
    try:
        return msgspec.json.decode(chunk)
    except msgspec.DecodeError:
        try:
            return json.loads(chunk.decode("utf-8", "surrogatepass"))
        except ValueError:  # an integer longer than Python converts (its digits are never read otherwise)
            raise jsonscan.long_integer(data, None) from None


def entry_state(ds, section: str, index: int) -> str | None:
    """The state hash of ``/section/index`` of a loaded Dataset (None if there is no such entry)."""
    from labellint.fix import jsonedit

    span = jsonedit.entry_span(ds, section, index)
    if span is None:
        return None
    return state_of(decode_entry(ds.data, *span))
