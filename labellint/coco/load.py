"""Decode a COCO file into a :class:`Dataset`.

Three ways in, fastest first:

* **split typed** (large files, Linux): the ``annotations`` array is decoded by two forked
  processes while this one decodes the rest, at a cut proven before it is used
  (labellint.coco.split); if the proof fails the file goes the serial way.
* **serial typed** (labellint.coco.typed): msgspec decodes into typed Structs (the garbage
  collector paused), then numpy columns. Segmentation is not decoded at all here: rules that
  want it get a column that decodes it on first use.
* **tolerant**: any value of the wrong type makes the typed decode fail; each odd value then
  becomes a :class:`SchemaIssue` instead of a crash. First *loose* (labellint.coco.loose): the
  same Structs with every field decoded as whatever JSON value it holds, only the odd columns
  checked value by value; if even that fails (a section that is not an array, an entry that is
  not an object), the file is decoded generically (labellint.coco.tolerant). Non-strict JSON
  (``Infinity``, ``NaN``) is read with the standard library.

The fields all three read are declared once, in labellint.coco.fields.

Truly broken JSON (and bytes that are not UTF-8) raises :class:`InputError` with line and column.
Before any decoded value is used, a byte scan (labellint.jsonscan) refuses a file nested deeper
than ``max_json_depth`` or holding an integer too long for Python, and lists the top-level keys:
a key written twice is a SchemaIssue (LL001), and the Dataset refuses edits.
Large files are memory-mapped rather than read: the bytes are never copied, and the forked
children share the mapping.
"""

from __future__ import annotations

import codecs
import weakref
from functools import partial
from pathlib import Path

import msgspec
import numpy as np

from labellint import jsonscan
from labellint.coco import parallel
from labellint.coco.dataset import Annotations, Dataset, SchemaIssue, SegmentationColumn, json_key
from labellint.coco.gcpause import gc_paused
from labellint.coco.loose import from_loose, loose_decoder
from labellint.coco.positions import offset_to_line_column
from labellint.coco.sharedmem import SharedColumns as _SharedColumns
from labellint.coco.split import decode_split as _decode_split
from labellint.coco.split import plan_split as _plan_split
from labellint.coco.tolerant import _from_generic, _non_finite_in, _parse_generic, is_coco
from labellint.coco.typed import Typed, TypedFailed, decode_segmentations, decode_serial, finish_typed
from labellint.errors import InputError
from labellint.fsutil import read_or_map

# The split decode's parts, and the tolerant path's, under the names tests reach them by.
__all__ = ["NotCoco", "load", "load_bytes", "decode_segmentations", "is_coco", "_SharedColumns", "_decode_split",
           "_plan_split", "_from_generic", "_non_finite_in", "_parse_generic"]

_BOM = b"\xef\xbb\xbf"

#: Files at least this large are memory-mapped instead of read: their bytes are never copied.
MMAP_MIN_BYTES = 1 << 20
#: Files at least this large decode the annotations in two processes. Below it, forking and
#: sending columns back is not worth it; train2017 (450 MB) is far above.
SPLIT_MIN_BYTES = 32 << 20


class NotCoco(Exception):
    """The file is JSON but not a COCO annotation file (e.g. package.json)."""


class _Gate:
    """The byte scan (labellint.jsonscan) that must pass before any decoded value is used:
    nesting no deeper than the limit, and the top-level keys (a key twice is a SchemaIssue).
    Runs once, where the decode that needs it first calls it."""

    def __init__(self, buf, path: str):
        self.buf, self.path = buf, path
        self.scan: jsonscan.Scan | None = None

    def __call__(self) -> jsonscan.Scan:
        if self.scan is None:
            self.scan = jsonscan.check(self.buf, self.path)
        return self.scan

    def issues(self) -> list[SchemaIssue]:
        out = []
        for key, first, second in self().duplicate_keys():
            line, col = offset_to_line_column(self.buf, first)
            out.append(SchemaIssue(
                None, None, key, f"the top-level key {json_key(key)} appears twice (first at line {line}, column "
                f"{col}): JSON readers keep only the last one, while other tools may take the first; keep one",
                "duplicate-key", offset=second))
        return out


def _can_split(buf) -> bool:
    return len(buf) >= SPLIT_MIN_BYTES and parallel.available()


def _decode_typed(buf, gate: _Gate) -> Typed:
    if _can_split(buf):
        split = _decode_split(buf, gate)
        if split is not None:
            return split
    gate()
    return decode_serial(buf)


_UTF8_CHUNK = 1 << 22


def _check_utf8(buf, path: str) -> bool:
    """Raise InputError at the first byte that is not UTF-8 (JSON text must be UTF-8); returns
    whether the text is plain ASCII (then columns are byte counts, see positions.line_columns).

    msgspec checks only the strings it decodes, and skips the fields we do not declare."""
    if not len(buf) or int(np.frombuffer(buf, np.uint8).max()) < 0x80:
        return True  # ASCII, like nearly every COCO file: one vectorised pass
    pos, n = 0, len(buf)
    with memoryview(buf) as view:
        while pos < n:
            end = min(n, pos + _UTF8_CHUNK)
            try:
                _, used = codecs.utf_8_decode(view[pos:end], "strict", end == n)
            except UnicodeDecodeError as exc:
                line, col = offset_to_line_column(buf, pos + exc.start)
                raise InputError("invalid JSON: bytes that are not UTF-8", path, line, col) from None
            if used == 0:  # pragma: no cover - a chunk is far longer than one character
                break
            pos += used
    return False


def load_bytes(data, path: str) -> Dataset:
    """Decode ``data`` (bytes or a read-only buffer such as an mmap; the content of ``path``,
    shown in messages). Raises NotCoco or InputError."""
    if data[:3] == _BOM:
        data = data[len(_BOM) :]  # a copy, but BOMs are rare in COCO files
    ascii_only = _check_utf8(data, path)
    try:
        return _load_checked(data, path, ascii_only)
    except RecursionError:  # only when LABELLINT_MAX_JSON_DEPTH is above what the decoder can take
        raise jsonscan.too_deep(data, path, jsonscan.scan(data, _PYTHON_DEPTH).too_deep) from None


#: Where a RecursionError is reported: about the depth a decoder reaches on a default stack.
_PYTHON_DEPTH = 500


def _load_checked(data, path: str, ascii_only: bool) -> Dataset:
    gate = _Gate(data, path)  # before any decoded value is used: see _decode_typed
    with gc_paused():
        try:
            typed = None
            typed = _decode_typed(data, gate)
            images, ann, categories, sections = finish_typed(typed)
        except TypedFailed:
            if typed is not None:  # decoded, but not usable (Infinity): its children go
                for helper in ("prefetch", "summaries"):
                    if helper in typed.layout:
                        typed.layout[helper].cancel()
            typed = None
        gate()
        issues: list[SchemaIssue] = gate.issues()
        if typed is None:  # some value has the wrong type: the loose decode finds which
            try:
                images, ann, categories, sections, found = from_loose(loose_decoder.decode(data))
                issues += found
                loose = True
            except (msgspec.ValidationError, msgspec.DecodeError):
                loose = False  # not arrays, not objects, not strict JSON: the generic decode
        if typed is not None or loose:
            if "images" not in sections and "annotations" not in sections:
                raise NotCoco(path)
            n = len(ann["id"])
            layout = dict(typed.layout) if typed is not None else {}
            summaries = layout.pop("summaries", None)
            annotations = Annotations(**ann, segmentation=SegmentationColumn(
                n, partial(decode_segmentations, data), summaries.take if summaries is not None else None))
            ds = Dataset(path, data, images, annotations, categories, sections, issues, True,
                         layout={**layout, "ascii": ascii_only})
            if "prefetch" in ds.layout:  # its children live as long as the Dataset, no longer
                weakref.finalize(ds, ds.layout["prefetch"].cancel)
            if summaries is not None:
                weakref.finalize(ds, summaries.cancel)
            return ds
        generic, strict = _parse_generic(data, path)
        if not is_coco(generic):
            raise NotCoco(path)
        images, annotations, categories, sections, found = _from_generic(generic, strict)
        issues += found
        del generic
    return Dataset(path, data, images, annotations, categories, sections, issues, strict,
                   layout={"ascii": ascii_only})


def _read(path: Path, shown: str):
    """The file's bytes: memory-mapped when large (no copy; the split decode splices in place), else read."""
    try:
        return read_or_map(path, MMAP_MIN_BYTES, shown)
    except IsADirectoryError:
        raise InputError("is a directory, not a file", shown) from None
    except FileNotFoundError:
        raise InputError("no such file", shown) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", shown) from None


def load(path: str | Path, display_path: str | None = None) -> Dataset:
    shown = display_path or str(path)
    return load_bytes(_read(Path(path), shown), shown)
