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


def _canonical(value):
    """Numbers by value: 50 and 50.0 are one state (a fix may write either)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    return value


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
        return json.loads(chunk.decode("utf-8", "surrogatepass"))


def entry_state(ds, section: str, index: int) -> str | None:
    """The state hash of ``/section/index`` of a loaded Dataset (None if there is no such entry)."""
    from labellint.fix import jsonedit

    span = jsonedit.entry_span(ds, section, index)
    if span is None:
        return None
    return state_of(decode_entry(ds.data, *span))
