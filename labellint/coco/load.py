"""Decode a COCO file into a :class:`Dataset`.

Three ways in, fastest first:

* **split typed** (large files, Linux): the ``annotations`` array, nine tenths of a COCO file, is
  cut at an element boundary near its middle and the two parts are decoded by two forked
  processes while this one decodes the rest; the children send back numpy columns. The cut is
  found by a byte search, so it is speculative, but it is *proven* before it is used (see
  :func:`_plan_split`); if the proof fails the file goes the serial way.
* **serial typed**: msgspec decodes into typed Structs (the garbage collector paused), then
  numpy columns. Segmentation is not decoded at all here: rules that want it get a column that
  decodes it on first use.
* **tolerant**: any value of the wrong type makes the typed decode fail; each odd value then
  becomes a :class:`SchemaIssue` instead of a crash. First *loose*: the same Structs with every
  field decoded as whatever JSON value it holds, only the odd columns checked value by value;
  if even that fails (a section that is not an array, an entry that is not an object), the file
  is decoded generically. Non-strict JSON (``Infinity``, ``NaN``) is read with the standard
  library.

Truly broken JSON (and bytes that are not UTF-8) raises :class:`InputError` with line and column.
Before any decoded value is used, a byte scan (labellint.jsonscan) refuses a file nested deeper
than ``max_json_depth`` or holding an integer too long for Python, and lists the top-level keys:
a key written twice is a SchemaIssue (LL001), and the Dataset refuses edits.
Large files are memory-mapped rather than read: the bytes are never copied, and the forked
children share the mapping.
"""

from __future__ import annotations

import codecs
import gc
import json
import math
import mmap
import operator
import os
import re
import weakref
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Annotated, Any

import msgspec
import numpy as np

from labellint import geometry, jsonscan
from labellint.coco import parallel, positions
from labellint.coco.dataset import (
    MISSING_ID,
    Annotations,
    Categories,
    Dataset,
    Images,
    SchemaIssue,
    SegmentationColumn,
    json_key,
)
from labellint.coco.positions import offset_to_line_column
from labellint.errors import InputError
from labellint.fsutil import read_or_map

SECTIONS = ("images", "annotations", "categories")
_NAN = float("nan")
_BOM = b"\xef\xbb\xbf"
_WS = b" \t\r\n"

#: Files at least this large are memory-mapped instead of read (reading 270 MB costs ~0.15 s).
MMAP_MIN_BYTES = 1 << 20
#: Files at least this large decode the annotations in two processes. Below it, forking and
#: sending columns back (~10 ms) is not worth it; train2017 (450 MB) is far above.
SPLIT_MIN_BYTES = 32 << 20


class NotCoco(Exception):
    """The file is JSON but not a COCO annotation file (e.g. package.json)."""


# -- typed structs --------------------------------------------------------------------------------
# Fields the rules do not read (license, coco_url, segmentation, ...) are not declared: msgspec
# skips them without creating a single object, which is most of the speed.
# A bbox of any length but 4 fails the typed decode, so that the tolerant path reports it.
_Box = Annotated[list[float], msgspec.Meta(min_length=4, max_length=4)]


class _Image(msgspec.Struct, gc=False):
    id: int
    width: float
    height: float
    file_name: str


class _Annotation(msgspec.Struct, gc=False):
    id: int
    image_id: int
    category_id: int
    bbox: _Box
    area: float = _NAN
    iscrowd: int = 0


class _Category(msgspec.Struct, gc=False):
    id: int
    name: str
    supercategory: str | None = None


# UNSET, not None, for an absent section: a section that is ``null`` must fail the typed decode
# so that the tolerant path reports it.
class _Doc(msgspec.Struct):
    images: list[_Image] | msgspec.UnsetType = msgspec.UNSET
    annotations: list[_Annotation] | msgspec.UnsetType = msgspec.UNSET
    categories: list[_Category] | msgspec.UnsetType = msgspec.UNSET


#: The key under which the second part of a split annotations array is decoded: U+E000, a
#: private-use character. Any spelling of it in JSON holds one of _REST_KEY_SPELLINGS, so a
#: byte search proves that the file has no such key of its own (see _decode_rest).
_REST_KEY = "\ue000"
_REST_KEY_SPELLINGS = (_REST_KEY.encode(), b"\\ue000", b"\\uE000")
REST_PREFIX = b'{"\\ue000":['  # what makes the bytes after the cut a document again


def _may_hold_rest_key(buf, start: int) -> bool:
    # a one-byte search is a memchr (~5 ms per 100 MB), a longer one ten times slower: look for
    # the longer spellings only in the rare files that have a backslash or the byte 0xEE
    first_bytes = {s[:1] for s in _REST_KEY_SPELLINGS}
    if all(buf.find(b, start) < 0 for b in first_bytes):
        return False
    return any(buf.find(s, start) >= 0 for s in _REST_KEY_SPELLINGS)


class _Rest(_Doc):
    rest: list[_Annotation] | msgspec.UnsetType = msgspec.field(default=msgspec.UNSET, name=_REST_KEY)


# The children of the split decode also keep each annotation's segmentation, as a zero-copy Raw
# view (~5% more decode time), and summarise the polygons from it after sending their columns.
# (Boxes as Raw, read with numpy, were tried: joining 430k small Raws costs more than msgspec's
# lists of floats.)
class _AnnotationSeg(_Annotation, gc=False):
    segmentation: msgspec.Raw = msgspec.Raw()


class _RestSeg(_Doc):
    rest: list[_AnnotationSeg] | msgspec.UnsetType = msgspec.field(default=msgspec.UNSET, name=_REST_KEY)


class _SegmentationOnly(msgspec.Struct, gc=False):
    segmentation: msgspec.Raw = msgspec.Raw()


class _SegmentationDoc(msgspec.Struct):
    annotations: list[_SegmentationOnly] = []


_doc_decoder = msgspec.json.Decoder(_Doc)
_rest_decoder = msgspec.json.Decoder(_Rest)
_rest_seg_decoder = msgspec.json.Decoder(_RestSeg)
_annotations_seg_decoder = msgspec.json.Decoder(list[_AnnotationSeg])
_annotations_decoder = msgspec.json.Decoder(list[_Annotation])
_segmentation_decoder = msgspec.json.Decoder(_SegmentationDoc)


@contextmanager
def _gc_paused():
    # millions of small objects would trigger many useless collections
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# -- typed columns --------------------------------------------------------------------------------
# np.fromiter over an attrgetter is the cheapest way from Structs to a column (~40 ms per column
# of 861k annotations); a bbox is flattened with chain (all have four numbers: the decoder checked).
def _ints(items, attr: str) -> np.ndarray:
    return np.fromiter(map(operator.attrgetter(attr), items), np.int64, len(items))


def _floats(items, attr: str) -> np.ndarray:
    return np.fromiter(map(operator.attrgetter(attr), items), np.float64, len(items))


def _image_columns(items: list[_Image]) -> Images:
    return Images(id=_ints(items, "id"), width=_floats(items, "width"), height=_floats(items, "height"),
                  file_name=[i.file_name for i in items])


def _category_columns(items: list[_Category]) -> Categories:
    return Categories(id=_ints(items, "id"), name=[c.name for c in items],
                      supercategory=[c.supercategory for c in items])


_ANNOTATION_COLUMNS = ("id", "image_id", "category_id", "bbox", "area", "iscrowd")


def _annotation_columns(items: list[_Annotation]) -> dict[str, np.ndarray]:
    n = len(items)
    boxes = chain.from_iterable(map(operator.attrgetter("bbox"), items))
    return {
        "id": _ints(items, "id"),
        "image_id": _ints(items, "image_id"),
        "category_id": _ints(items, "category_id"),
        "bbox": np.fromiter(boxes, np.float64, 4 * n).reshape(n, 4),
        "area": _floats(items, "area"),
        "iscrowd": _ints(items, "iscrowd"),
    }


@dataclass
class _Typed:
    """What the typed decode produced, before it becomes a Dataset."""

    images: Images | None = None
    annotations: list[dict] = field(default_factory=list)  # column parts, in file order
    categories: Categories | None = None
    has_annotations: bool = False
    layout: dict = field(default_factory=dict)  # hints for positions.py


class _TypedFailed(Exception):
    """The typed decode cannot represent this file: the tolerant path must read it."""


def _typed_from_doc(doc: _Doc) -> _Typed:
    out = _Typed()
    if doc.images is not msgspec.UNSET:
        out.images = _image_columns(doc.images)
    if doc.annotations is not msgspec.UNSET:
        out.annotations.append(_annotation_columns(doc.annotations))
        out.has_annotations = True
    if doc.categories is not msgspec.UNSET:
        out.categories = _category_columns(doc.categories)
    return out


def _decode_serial(buf) -> _Typed:
    try:
        doc = _doc_decoder.decode(buf)
        return _typed_from_doc(doc)
    except (msgspec.ValidationError, msgspec.DecodeError, OverflowError) as exc:
        # OverflowError: an integer beyond int64, which the tolerant path reports
        raise _TypedFailed from exc


def _finish_typed(t: _Typed) -> tuple[Images, dict, Categories, dict]:
    images = t.images if t.images is not None else _image_columns([])
    categories = t.categories if t.categories is not None else _category_columns([])
    parts = t.annotations or [_annotation_columns([])]
    ann = parts[0] if len(parts) == 1 else {k: np.concatenate([p[k] for p in parts]) for k in _ANNOTATION_COLUMNS}
    # strict JSON has no Infinity, but 1e999 overflows to it: let the tolerant path report that
    if any(np.isinf(a).any() for a in (images.width, images.height, ann["bbox"], ann["area"])):
        raise _TypedFailed
    sections = {"images": "array"} if t.images is not None else {}
    if t.has_annotations:
        sections["annotations"] = "array"
    if t.categories is not None:
        sections["categories"] = "array"
    return images, ann, categories, sections


# -- split typed decode ---------------------------------------------------------------------------
_ANNOTATIONS_KEY = re.compile(rb'"annotations"[ \t\r\n]*:[ \t\r\n]*\[')
_BOUNDARY = re.compile(rb"\}[ \t\r\n]*,[ \t\r\n]*\{")


@dataclass(frozen=True)
class _Plan:
    head_end: int | None  # the ',' before "annotations"; None when "annotations" is the first key
    start: int  # first byte after the '[' of the annotations array
    split: int  # the ',' between the two elements where the array is cut


def _plan_split(buf) -> _Plan | None:
    """Where to cut the annotations array, found by byte search; None when there is no good cut.

    Nothing here is trusted yet. The plan is proven by the decodes that use it, because a JSON
    parser reads left to right and each piece below is the file's own bytes behind a prefix that
    puts the parser in the state the whole file's parse would be in at that point:

    * head ``buf[:head_end] + "}"`` decodes only if the whole file's parse is, at ``head_end``,
      in the top-level object right after a value. So the ``"annotations"`` that follows the
      comma is a top-level key, and ``start`` (after its ``[``) begins the top-level array.
    * first ``"[" + buf[start:split] + "]"`` decodes only if, at ``split``, the parse is back in
      that array right after a complete element: inside a string, or deeper in an element, the
      added ``]`` is an error. So ``split`` is a real element boundary.
    * rest ``{"\\ue000":[`` + ``buf[split+1:]`` then continues exactly where the whole parse
      would, and decodes only if the rest of the file is valid. Its key is one the file is
      checked not to use, so no key of the file can replace the list under it.

    A type error (ValidationError) inside a proven piece is a type error of the whole file.
    The pieces are decoded at once, but the result of one is used only when those before it
    decoded.
    """
    n = len(buf)
    key = buf.find(b'"annotations"')
    m = _ANNOTATIONS_KEY.match(buf, key) if key >= 0 else None
    if m is None:
        return None
    before = key - 1
    while before >= 0 and buf[before] in _WS:
        before -= 1
    if before < 0:
        return None
    if buf[before] == ord("{"):
        if buf[:before].strip(_WS):  # must be the document's own '{'
            return None
        head_end = None
    elif buf[before] == ord(","):
        head_end = before
    else:
        return None
    start = m.end()
    # cut in the middle of the array's (estimated) bytes; the search is bounded so that a file
    # whose annotations are not where we think costs nothing
    target = start + (n - start) // 2
    b = _BOUNDARY.search(buf, target, min(n, target + (1 << 20)))
    if b is None:
        return None
    split = buf.find(b",", b.start() + 1, b.end())
    return _Plan(head_end, start, split)


def _decode_head(buf, plan: _Plan) -> _Typed:
    if plan.head_end is None:
        return _Typed()
    with parallel.spliced(buf, 0, plan.head_end, b"", b"}") as head:
        doc = _doc_decoder.decode(head)
    if doc.annotations is not msgspec.UNSET:  # a second "annotations" key (spelt with escapes)
        raise _Conflict
    return _typed_from_doc(doc)


# The pieces decoded in children keep their Structs (and the context of the splice, which their
# zero-copy Raw segmentations point into) in ``keep`` for the later jobs.
def _decode_first(buf, plan: _Plan, keep: list, shared: _SharedColumns | None = None):
    if shared is not None:
        os.close(shared.count_r)
    stack = ExitStack()
    keep.append(stack)
    part = stack.enter_context(parallel.spliced(buf, plan.start, plan.split, b"[", b"]"))
    items = _annotations_seg_decoder.decode(part)
    keep.append(items)
    columns = _annotation_columns(items)
    if shared is None:
        return columns
    os.write(shared.count_w, len(items).to_bytes(8, "little"))
    os.close(shared.count_w)
    return shared.put(0, columns) if len(items) <= shared.cap else columns


def _decode_rest(buf, plan: _Plan, keep: list, shared: _SharedColumns | None = None) -> _Typed:
    if shared is not None:
        os.close(shared.count_w)  # so that the read below ends if the first child dies
    if _may_hold_rest_key(buf, plan.split):
        raise _Conflict  # the file may use our key itself
    stack = ExitStack()
    keep.append(stack)
    part = stack.enter_context(parallel.spliced(buf, plan.split + 1, len(buf), REST_PREFIX))
    doc = _rest_seg_decoder.decode(part)
    keep.append(doc)
    if doc.annotations is not msgspec.UNSET:  # a second "annotations" key
        raise _Conflict
    out = _typed_from_doc(doc)
    columns = _annotation_columns(doc.rest)
    if shared is not None:
        count = b""
        while len(count) < 8:
            more = os.read(shared.count_r, 8 - len(count))
            if not more:
                break
            count += more
        if len(count) == 8 and int.from_bytes(count, "little") + len(doc.rest) <= shared.cap:
            columns = shared.put(int.from_bytes(count, "little"), columns)
    out.annotations.append(columns)
    return out


# What the children do next, in the background, niced: measure their elements for positions.py
# (any finding needs them, and the first rules have findings; the piece is still spliced as for
# the decode, and measuring splices the same bytes), then summarise their segmentations for the
# geometry rules (labellint.geometry.summarise; LL106 is the first to ask).
def _measure_first(buf, plan: _Plan, keep: list):
    return positions.first_part_lengths(buf, plan.start, plan.split)


def _measure_rest(buf, plan: _Plan, keep: list):
    return positions.tail_offsets(buf, plan.split)


def _summarise(keep: list, rest: bool) -> dict:
    # first the segmentations packed (their text copied, ~0.07 GB for half of train2017) and the
    # Structs freed (~0.17 GB), batch by batch; then the packed batches go as they are read
    stack, decoded = keep
    packed = geometry.pack_segmentations(decoded.rest if rest else decoded)
    keep.clear()
    del decoded
    try:
        stack.close()  # no Raw views left: the bytes spliced for the decode are put back
    except BufferError:  # pragma: no cover - a view still held: it does not matter any more
        pass
    return geometry.summarise(packed, raw_rle=True)


class _Summaries:
    """The segmentation summaries the two children work out after sending their columns (claims
    on their results, see parallel.share)."""

    def __init__(self, first, rest, rest_row: int):
        self._parts = ((first, 0), (rest, rest_row))

    def take(self) -> list | None:
        """[(first row, summary), ...], or None when a child failed (or was stopped)."""
        try:
            return [(row, parallel.later(claim)) for claim, row in self._parts]
        except Exception:
            return None
        finally:
            self.cancel()

    def cancel(self) -> None:
        for claim, _ in self._parts:
            parallel.stop(claim)


class _Conflict(Exception):
    """The file has a key twice (or our sentinel key): leave it to the serial decode."""


def _can_split(buf) -> bool:
    return len(buf) >= SPLIT_MIN_BYTES and parallel.available()


#: An annotation the typed decode accepts has "id", "image_id", "category_id" and "bbox": never
#: fewer bytes than this, with its separator. So the annotations array has at most
#: (its bytes) / _MIN_ELEMENT_BYTES elements.
_MIN_ELEMENT_BYTES = 40
_SHARED_COLUMNS = (("id", np.int64, 1), ("image_id", np.int64, 1), ("category_id", np.int64, 1),
                   ("bbox", np.float64, 4), ("area", np.float64, 1), ("iscrowd", np.int64, 1))


class _SharedColumns:
    """Where the children put the annotation columns so that this process finds them in place:
    a shared anonymous mapping with room for ``cap`` rows of each column (only the pages written
    count). The first child writes rows [0, n1) and tells the other child n1 through a pipe;
    that one writes rows [n1, n1 + n2). The columns then need no pickling, no pipe and no
    concatenation (~0.1 s for train2017 here, on the way to the first rule). A part that does
    not fit (or whose count does not come) goes the pickled way."""

    def __init__(self, cap: int):
        self.cap = cap
        self.mem = mmap.mmap(-1, cap * sum(width * 8 for _, _, width in _SHARED_COLUMNS))
        self.count_r, self.count_w = os.pipe()

    def views(self, lo: int, hi: int) -> dict:
        out, offset = {}, 0
        for name, dtype, width in _SHARED_COLUMNS:
            column = np.frombuffer(self.mem, dtype, count=self.cap * width, offset=offset)
            out[name] = (column.reshape(self.cap, width) if width > 1 else column)[lo:hi]
            offset += self.cap * width * 8
        return out

    def put(self, lo: int, columns: dict) -> tuple:
        n = len(columns["id"])
        for name, view in self.views(lo, lo + n).items():
            view[...] = columns[name]
        return ("shared", lo, n)

    def close_pipe(self) -> None:
        for fd in (self.count_r, self.count_w):
            try:
                os.close(fd)
            except OSError:
                pass

    @classmethod
    def for_plan(cls, buf, plan) -> _SharedColumns | None:
        try:
            return cls((len(buf) - plan.start) // _MIN_ELEMENT_BYTES + 1)
        except (OSError, ValueError, OverflowError):  # no shared memory: pickled columns
            return None


def _rows_of(part) -> int:
    return part[2] if isinstance(part, tuple) else len(part["id"])


def _decode_split(buf, gate: _Gate) -> _Typed | None:
    """The typed decode in three processes; None when the file must go the serial way.

    Raises _TypedFailed when a proven piece has a type error (the serial decode would fail too).
    The children start before ``gate`` runs here, so that its scan of the file overlaps their
    decode; nothing they decoded is used unless it passed.
    """
    plan = _plan_split(buf)
    if plan is None:
        return None
    first = rest = None
    keep: list = []  # filled in the children only
    shared = _SharedColumns.for_plan(buf, plan)
    done = False
    try:
        # later jobs: element lengths for positions, then the segmentation summary
        first = parallel.start(partial(_decode_first, buf, plan, keep, shared), partial(_measure_first, buf, plan, keep),
                               partial(_summarise, keep, False))
        rest = parallel.start(partial(_decode_rest, buf, plan, keep, shared), partial(_measure_rest, buf, plan, keep),
                              partial(_summarise, keep, True))
        if shared is not None:
            shared.close_pipe()  # the children hold their ends
        gate()
        # each piece in order: a piece is proven only when those before it decoded
        head = _piece(partial(_decode_head, buf, plan))
        first_columns = _piece(partial(parallel.result, first))
        tail = _piece(partial(parallel.result, rest))
        if (head.images is not None and tail.images is not None) or (
                head.categories is not None and tail.categories is not None):
            return None  # a section twice: the serial decode decides which one counts
        done = True
    except _Unproven:
        return None
    finally:
        if not done:  # stop the children whose work is no longer wanted
            parallel.stop(first)
            parallel.stop(rest)
    parts = [first_columns, *tail.annotations]
    if all(isinstance(p, tuple) for p in parts):  # both in the shared block, one after the other
        parts = [shared.views(0, sum(p[2] for p in parts))]
    else:
        parts = [shared.views(p[1], p[1] + p[2]) if isinstance(p, tuple) else p for p in parts]
    return _Typed(
        images=head.images if head.images is not None else tail.images,
        annotations=parts,
        categories=head.categories if head.categories is not None else tail.categories,
        has_annotations=True,
        layout={"head_end": plan.head_end, "start": plan.start, "split": plan.split,
                "prefetch": positions.Prefetch(parallel.share(first, 1), parallel.share(rest, 1)),
                "summaries": _Summaries(parallel.share(first, 2), parallel.share(rest, 2), _rows_of(first_columns))},
    )


class _Unproven(Exception):
    """A piece of the split decode failed in a way that does not prove the file is bad."""


def _piece(work):
    try:
        return work()
    except (msgspec.ValidationError, OverflowError) as exc:
        # the piece is parsed in the state the whole file's parse would be in: same error there
        raise _TypedFailed from exc
    except Exception as exc:  # malformed at the cut, a key twice, a child that died: unproven
        raise _Unproven from exc


def _decode_typed(buf, gate: _Gate) -> _Typed:
    if _can_split(buf):
        split = _decode_split(buf, gate)
        if split is not None:
            return split
    gate()
    return _decode_serial(buf)


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


# -- tolerant path: generic values, every odd value an issue -------------------------------------
def _type_name(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


class _Collector:
    def __init__(self, section: str):
        self.section = section
        self.issues: list[SchemaIssue] = []

    def issue(self, index, fld, message, kind, value=None):
        self.issues.append(SchemaIssue(self.section, index, fld, message, kind, value))

    def int_field(self, entry: dict, index: int, key: str, required: bool = True, default=MISSING_ID):
        if key not in entry:
            if required:
                self.issue(index, key, f"missing key '{key}'", "missing-key")
            return default
        v = entry[key]
        if type(v) is int:
            if -(2**63) < v < 2**63:
                return v
            self.issue(index, key, f"'{key}' ({v}) is outside the 64-bit integer range", "field-type", v)
            return MISSING_ID
        if isinstance(v, str):
            what = f"a string ({v!r})" if len(v) <= 40 else "a string"
        elif isinstance(v, float) and math.isfinite(v) and v.is_integer():
            what = f"a float ({v!r})"
        else:
            what = _type_name(v) if not isinstance(v, float) else f"a non-integer number ({_json_number(v)})"
        self.issue(index, key, f"'{key}' must be an integer, got {what}", "field-type", v)
        return MISSING_ID

    def number_field(self, entry: dict, index: int, key: str, required: bool = True):
        if key not in entry:
            if required:
                self.issue(index, key, f"missing key '{key}'", "missing-key")
            return _NAN
        v = entry[key]
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            try:
                f = float(v)
            except OverflowError:  # an integer too large for a float
                f = math.inf if v > 0 else -math.inf
            if not math.isfinite(f):
                self.issue(index, key, f"'{key}' is {_json_number(f)}", "non-finite", v)
            return f
        self.issue(index, key, f"'{key}' must be a number, got {_type_name(v)}", "field-type", v)
        return _NAN

    def str_field(self, entry: dict, index: int, key: str, required: bool = True):
        if key not in entry:
            if required:
                self.issue(index, key, f"missing key '{key}'", "missing-key")
            return None
        v = entry[key]
        if isinstance(v, str):
            return v
        if v is None and not required:
            return None
        self.issue(index, key, f"'{key}' must be a string, got {_type_name(v)}", "field-type", v)
        return None

    def bbox_field(self, entry: dict, index: int):
        if "bbox" not in entry:
            self.issue(index, "bbox", "missing key 'bbox'", "missing-key")
            return [_NAN] * 4
        v = entry["bbox"]
        if isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
            try:
                floats = [float(x) for x in v]
            except OverflowError:
                floats = [math.inf] * len(v)
            if not all(math.isfinite(x) for x in floats):
                self.issue(index, "bbox", "'bbox' has a non-finite number: [" + ", ".join(map(_json_number, floats)) + "]",
                           "non-finite", v)
            if len(v) == 4:
                return floats
            self.issue(index, "bbox", f"'bbox' must have 4 numbers [x, y, width, height], got {len(v)}", "field-type", v)
        else:
            self.issue(index, "bbox", f"'bbox' must be an array of 4 numbers, got {_type_name(v)}"
                       + (" with non-numeric items" if isinstance(v, list) else ""), "field-type", v)
        return [_NAN] * 4


def _json_number(v) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    return repr(v)


def _non_finite_in(value) -> bool:
    """True when a (possibly nested) list or object holds Infinity or NaN. A loop over a stack,
    not recursion: however deep the value, the interpreter's stack is not what bounds it."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, float):
            if not math.isfinite(v):
                return True
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
    return False


def _entries(doc: dict, section: str, issues: list[SchemaIssue]) -> list:
    if section not in doc:
        return []
    value = doc[section]
    if isinstance(value, list):
        return value
    issues.append(SchemaIssue(None, None, section, f"'{section}' must be an array, got {_type_name(value)}",
                              "section-type", value))
    return []


def _from_generic(doc: dict, strict: bool = True) -> tuple[Images, Annotations, Categories, dict, list[SchemaIssue]]:
    issues: list[SchemaIssue] = []
    sections = {k: _type_name(doc[k]) for k in SECTIONS if k in doc}

    def rows(section):
        col = _Collector(section)
        for i, entry in enumerate(_entries(doc, section, issues)):
            if not isinstance(entry, dict):
                col.issue(i, None, f"entry must be an object, got {_type_name(entry)}", "entry-type", entry)
                yield col, i, None
            else:
                yield col, i, entry
        issues.extend(col.issues)

    ids, ws, hs, names = [], [], [], []
    for col, i, e in rows("images"):
        if e is None:
            ids.append(MISSING_ID), ws.append(_NAN), hs.append(_NAN), names.append(None)
            continue
        ids.append(col.int_field(e, i, "id"))
        ws.append(col.number_field(e, i, "width"))
        hs.append(col.number_field(e, i, "height"))
        names.append(col.str_field(e, i, "file_name"))
    images = Images(np.array(ids, np.int64), np.array(ws, np.float64), np.array(hs, np.float64), names)

    a_id, a_img, a_cat, a_box, a_area, a_crowd, a_seg = [], [], [], [], [], [], []
    for col, i, e in rows("annotations"):
        if e is None:
            a_id.append(MISSING_ID), a_img.append(MISSING_ID), a_cat.append(MISSING_ID)
            a_box.append([_NAN] * 4), a_area.append(_NAN), a_crowd.append(0), a_seg.append(None)
            continue
        a_id.append(col.int_field(e, i, "id"))
        a_img.append(col.int_field(e, i, "image_id"))
        a_cat.append(col.int_field(e, i, "category_id"))
        a_box.append(col.bbox_field(e, i))
        a_area.append(col.number_field(e, i, "area", required=False))
        a_crowd.append(col.int_field(e, i, "iscrowd", required=False, default=0))
        seg = e.get("segmentation")
        if not strict and _non_finite_in(seg):
            col.issue(i, "segmentation", "'segmentation' has a non-finite number", "non-finite")
        a_seg.append(seg)
    annotations = Annotations(
        np.array(a_id, np.int64), np.array(a_img, np.int64), np.array(a_cat, np.int64),
        np.array(a_box, np.float64).reshape(-1, 4), np.array(a_area, np.float64),
        np.array(a_crowd, np.int64), a_seg,
    )

    c_id, c_name, c_super = [], [], []
    for col, i, e in rows("categories"):
        if e is None:
            c_id.append(MISSING_ID), c_name.append(None), c_super.append(None)
            continue
        c_id.append(col.int_field(e, i, "id"))
        c_name.append(col.str_field(e, i, "name"))
        c_super.append(col.str_field(e, i, "supercategory", required=False))
    categories = Categories(np.array(c_id, np.int64), c_name, c_super)
    return images, annotations, categories, sections, issues


# -- loose typed: the tolerant path's results at nearly the typed path's speed ---------------------
# A file with a few odd values (a string id, a missing key) is what a linter sees most often.
# Rather than decode it generically (dicts, ~5x slower on train2017), decode every field as
# whatever JSON value it holds (msgspec ``Any``, in Structs, unknown fields still skipped), turn
# a column into numpy at once when all its values have the expected type, and check value by
# value, with the tolerant path's own checks (_Collector), only the columns that do not.
# Sections that are not arrays, entries that are not objects and numbers beyond a float still
# need the generic decode. tests/test_loader.py checks that both give the same columns and issues.
class _LooseImage(msgspec.Struct, gc=False):
    id: Any = msgspec.UNSET
    width: Any = msgspec.UNSET
    height: Any = msgspec.UNSET
    file_name: Any = msgspec.UNSET


class _LooseAnnotation(msgspec.Struct, gc=False):
    id: Any = msgspec.UNSET
    image_id: Any = msgspec.UNSET
    category_id: Any = msgspec.UNSET
    bbox: Any = msgspec.UNSET
    area: Any = msgspec.UNSET
    iscrowd: Any = msgspec.UNSET


class _LooseCategory(msgspec.Struct, gc=False):
    id: Any = msgspec.UNSET
    name: Any = msgspec.UNSET
    supercategory: Any = msgspec.UNSET


class _LooseDoc(msgspec.Struct):
    images: list[_LooseImage] | msgspec.UnsetType = msgspec.UNSET
    annotations: list[_LooseAnnotation] | msgspec.UnsetType = msgspec.UNSET
    categories: list[_LooseCategory] | msgspec.UnsetType = msgspec.UNSET


_loose_decoder = msgspec.json.Decoder(_LooseDoc)
_UNSET_TYPE = type(msgspec.UNSET)
_NUMBER_TYPES = {int, float}

# per section: (field, kind, required, default) in the order _from_generic checks them
_LOOSE_FIELDS = {
    "images": (("id", "int", True, MISSING_ID), ("width", "number", True, None),
               ("height", "number", True, None), ("file_name", "str", True, None)),
    "annotations": (("id", "int", True, MISSING_ID), ("image_id", "int", True, MISSING_ID),
                    ("category_id", "int", True, MISSING_ID), ("bbox", "bbox", True, None),
                    ("area", "number", False, None), ("iscrowd", "int", False, 0)),
    "categories": (("id", "int", True, MISSING_ID), ("name", "str", True, None),
                   ("supercategory", "str", False, None)),
}


def _loose_fast(values: list, kind: str, required: bool, default):
    """The column at once when every value has the expected type, else None."""
    n = len(values)
    types = set(map(type, values))
    if _UNSET_TYPE in types:  # absent keys: fine when optional, the default stands in
        if required:
            return None
        fill = {"int": default, "number": _NAN, "str": None}.get(kind)
        values = [fill if v is msgspec.UNSET else v for v in values]
        types.discard(_UNSET_TYPE)
    try:
        if kind == "int" and types <= {int}:
            column = np.fromiter(values, np.int64, n)  # OverflowError beyond int64
            return None if (column == MISSING_ID).any() else column  # -2**63 is reported
        if kind == "number" and types <= _NUMBER_TYPES:
            column = np.fromiter(values, np.float64, n)
            return column if np.isfinite(column).all() else None
        if kind == "str" and (types <= {str} or (not required and types <= {str, type(None)})):
            return values
        if kind == "bbox" and types <= {list} and set(map(len, values)) <= {4}:
            flat = list(chain.from_iterable(values))
            if set(map(type, flat)) <= _NUMBER_TYPES:
                column = np.fromiter(flat, np.float64, 4 * n).reshape(n, 4)
                return column if np.isfinite(column).all() else None
    except OverflowError:
        return None
    return None


def _loose_slow(col: _Collector, values: list, name: str, kind: str, required: bool, default):
    """Value by value: the usual ones directly, the odd ones through the tolerant path's checks
    (and messages)."""
    def check(i, v):
        entry = {} if v is msgspec.UNSET else {name: v}
        if kind == "int":
            return col.int_field(entry, i, name, required, default)
        if kind == "number":
            return col.number_field(entry, i, name, required)
        if kind == "str":
            return col.str_field(entry, i, name, required)
        return col.bbox_field(entry, i)

    if kind == "int":
        out = [v if type(v) is int and _INT64_MIN < v <= _INT64_MAX else check(i, v) for i, v in enumerate(values)]
        return np.array(out, np.int64)
    if kind == "number":
        out = [float(v) if type(v) is float or (type(v) is int and -_FLOAT_MAX < v < _FLOAT_MAX) else check(i, v)
               for i, v in enumerate(values)]  # floats here are finite: msgspec refuses the rest
        return np.array(out, np.float64)
    if kind == "str":
        return [v if type(v) is str else check(i, v) for i, v in enumerate(values)]
    out = [check(i, v) for i, v in enumerate(values)]
    return np.array(out, np.float64).reshape(-1, 4)


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_FLOAT_MAX = 2**1023


def _loose_section(section: str, items: list) -> tuple[dict, list[SchemaIssue]]:
    columns, issues = {}, []
    for rank, (name, kind, required, default) in enumerate(_LOOSE_FIELDS[section]):
        values = list(map(operator.attrgetter(name), items))
        column = _loose_fast(values, kind, required, default)
        if column is None:
            col = _Collector(section)
            column = _loose_slow(col, values, name, kind, required, default)
            issues.extend((issue.index, rank, issue) for issue in col.issues)
        columns[name] = column
    # the tolerant path's order: entry by entry, field by field
    return columns, [issue for _, _, issue in sorted(issues, key=lambda t: (t[0], t[1]))]


def _from_loose(doc: _LooseDoc):
    issues: list[SchemaIssue] = []
    sections = {}
    parts = {}
    for section in SECTIONS:
        items = getattr(doc, section)
        if items is not msgspec.UNSET:
            sections[section] = "array"
        parts[section], found = _loose_section(section, items if items is not msgspec.UNSET else [])
        issues.extend(found)
    images = Images(**parts["images"])
    categories = Categories(**parts["categories"])
    return images, parts["annotations"], categories, sections, issues


# -- entry points --------------------------------------------------------------------------------
_BYTE = re.compile(r"\(byte (\d+)\)")
_NON_STRICT = (b"NaN", b"Infinity", b"-Infinity")
_UTF8_CHUNK = 1 << 22


def _check_utf8(buf, path: str) -> bool:
    """Raise InputError at the first byte that is not UTF-8 (JSON text must be UTF-8); returns
    whether the text is plain ASCII (then columns are byte counts, see positions.line_columns).

    msgspec checks only the strings it decodes, and skips the fields we do not declare."""
    if not len(buf) or int(np.frombuffer(buf, np.uint8).max()) < 0x80:
        return True  # ASCII, like nearly every COCO file: one vectorised pass (~13 ms for 270 MB)
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


def _parse_generic(buf, path: str):
    """Generic decode; returns (value, strict_json). Raises InputError with line:col if broken."""
    try:
        return msgspec.json.decode(buf), True
    except msgspec.DecodeError as exc:
        m = _BYTE.search(str(exc))
        offset = int(m.group(1)) if m else (len(buf) if "truncated" in str(exc) else 0)
        at_token = any(buf[offset : offset + len(tok)] == tok for tok in _NON_STRICT)
        # msgspec also refuses numbers beyond a float (1e999); Python reads them as infinity
        out_of_range = "out of range" in str(exc)
        if not (at_token or out_of_range) and buf.find(b"NaN") < 0 and buf.find(b"Infinity") < 0:
            line, col = offset_to_line_column(buf, offset)
            reason = str(exc).split(" (byte")[0].replace("JSON is malformed: ", "")
            raise InputError(f"invalid JSON: {reason}", path, line, col) from None
    try:
        return json.loads(bytes(buf).decode("utf-8")), False
    except UnicodeDecodeError as exc:
        line, col = offset_to_line_column(buf, exc.start)
        raise InputError("invalid JSON: bytes that are not UTF-8", path, line, col) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg.lower()}", path, exc.lineno, exc.colno) from None
    except ValueError:  # an integer literal longer than Python converts (sys.set_int_max_str_digits)
        raise jsonscan.long_integer(buf, path) from None


def is_coco(doc) -> bool:
    return isinstance(doc, dict) and ("annotations" in doc or "images" in doc)


def decode_segmentations(buf) -> list:
    """Every annotation's segmentation as msgspec.Raw (an empty one when absent), in file order.

    All items are Raw, so that callers can treat them in bulk (labellint.geometry joins them)."""
    with _gc_paused():
        return list(map(operator.attrgetter("segmentation"), _segmentation_decoder.decode(buf).annotations))


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
    with _gc_paused():
        try:
            typed = None
            typed = _decode_typed(data, gate)
            images, ann, categories, sections = _finish_typed(typed)
        except _TypedFailed:
            if typed is not None:  # decoded, but not usable (Infinity): its children go
                for helper in ("prefetch", "summaries"):
                    if helper in typed.layout:
                        typed.layout[helper].cancel()
            typed = None
        gate()
        issues: list[SchemaIssue] = gate.issues()
        if typed is None:  # some value has the wrong type: the loose decode finds which
            try:
                images, ann, categories, sections, found = _from_loose(_loose_decoder.decode(data))
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
