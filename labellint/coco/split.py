"""The split typed decode: the annotations array decoded in two forked processes.

The ``annotations`` array, nine tenths of a COCO file, is cut at an element boundary near its
middle and the two parts are decoded by two forked processes while this one decodes the rest;
the children send back numpy columns (in shared memory when it fits, labellint.coco.sharedmem).
The cut is found by a byte search, so it is speculative, but it is *proven* before it is used
(see :func:`plan_split`); if the proof fails the file goes the serial way.
"""

from __future__ import annotations

import os
import re
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from typing import Callable

import msgspec

from labellint import geometry
from labellint.coco import parallel, positions
from labellint.coco.sharedmem import SharedColumns, rows_of
from labellint.coco.typed import Typed, TypedFailed, _Annotation, _Doc, annotation_columns, doc_decoder, typed_from_doc

_WS = b" \t\r\n"

#: The key under which the second part of a split annotations array is decoded: U+E000, a
#: private-use character. Any spelling of it in JSON holds one of _REST_KEY_SPELLINGS, so a
#: byte search proves that the file has no such key of its own (see _decode_rest).
_REST_KEY = "\ue000"
_REST_KEY_SPELLINGS = (_REST_KEY.encode(), b"\\ue000", b"\\uE000")
REST_PREFIX = b'{"\\ue000":['  # what makes the bytes after the cut a document again


def _may_hold_rest_key(buf, start: int) -> bool:
    # a one-byte search is a memchr, a longer one about ten times slower: look for the longer
    # spellings only in the rare files that have a backslash or the byte 0xEE
    first_bytes = {s[:1] for s in _REST_KEY_SPELLINGS}
    if all(buf.find(b, start) < 0 for b in first_bytes):
        return False
    return any(buf.find(s, start) >= 0 for s in _REST_KEY_SPELLINGS)


# The children also keep each annotation's segmentation, as a zero-copy Raw view, and summarise
# the polygons from it after sending their columns. Boxes stay msgspec's lists of floats:
# joining hundreds of thousands of small Raws to read them with numpy costs more.
class _AnnotationSeg(_Annotation, gc=False):
    segmentation: msgspec.Raw = msgspec.Raw()


class _RestSeg(_Doc):
    rest: list[_AnnotationSeg] | msgspec.UnsetType = msgspec.field(default=msgspec.UNSET, name=_REST_KEY)


_rest_seg_decoder = msgspec.json.Decoder(_RestSeg)
_annotations_seg_decoder = msgspec.json.Decoder(list[_AnnotationSeg])

_ANNOTATIONS_KEY = re.compile(rb'"annotations"[ \t\r\n]*:[ \t\r\n]*\[')
_BOUNDARY = re.compile(rb"\}[ \t\r\n]*,[ \t\r\n]*\{")


@dataclass(frozen=True)
class Plan:
    head_end: int | None  # the ',' before "annotations"; None when "annotations" is the first key
    start: int  # first byte after the '[' of the annotations array
    split: int  # the ',' between the two elements where the array is cut


def plan_split(buf) -> Plan | None:
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
    return Plan(head_end, start, split)


def _decode_head(buf, plan: Plan) -> Typed:
    if plan.head_end is None:
        return Typed()
    with parallel.spliced(buf, 0, plan.head_end, b"", b"}") as head:
        doc = doc_decoder.decode(head)
    if doc.annotations is not msgspec.UNSET:  # a second "annotations" key (spelt with escapes)
        raise _Conflict
    return typed_from_doc(doc)


# The pieces decoded in children keep their Structs (and the context of the splice, which their
# zero-copy Raw segmentations point into) in ``keep`` for the later jobs.
def _decode_first(buf, plan: Plan, keep: list, shared: SharedColumns | None = None):
    if shared is not None:
        os.close(shared.count_r)
    stack = ExitStack()
    keep.append(stack)
    part = stack.enter_context(parallel.spliced(buf, plan.start, plan.split, b"[", b"]"))
    items = _annotations_seg_decoder.decode(part)
    keep.append(items)
    columns = annotation_columns(items)
    if shared is None:
        return columns
    os.write(shared.count_w, len(items).to_bytes(8, "little"))
    os.close(shared.count_w)
    return shared.put(0, columns) if len(items) <= shared.cap else columns


def _decode_rest(buf, plan: Plan, keep: list, shared: SharedColumns | None = None) -> Typed:
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
    out = typed_from_doc(doc)
    columns = annotation_columns(doc.rest)
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
def _measure_first(buf, plan: Plan, keep: list):
    return positions.first_part_lengths(buf, plan.start, plan.split)


def _measure_rest(buf, plan: Plan, keep: list):
    return positions.tail_offsets(buf, plan.split)


def _summarise(keep: list, rest: bool) -> dict:
    # first the segmentations packed (their text copied) and the Structs freed, batch by batch;
    # then the packed batches go as they are read
    stack, decoded = keep
    packed = geometry.pack_segmentations(decoded.rest if rest else decoded)
    keep.clear()
    del decoded
    try:
        stack.close()  # no Raw views left: the bytes spliced for the decode are put back
    except BufferError:  # pragma: no cover - a view still held: it does not matter any more
        pass
    return geometry.summarise(packed, raw_rle=True)


class Summaries:
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


def decode_split(buf, gate: Callable[[], object]) -> Typed | None:
    """The typed decode in three processes; None when the file must go the serial way.

    Raises TypedFailed when a proven piece has a type error (the serial decode would fail too).
    The children start before ``gate`` runs here, so that its scan of the file overlaps their
    decode; nothing they decoded is used unless it passed.
    """
    plan = plan_split(buf)
    if plan is None:
        return None
    first = rest = None
    keep: list = []  # filled in the children only
    shared = SharedColumns.for_plan(buf, plan)
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
    return Typed(
        images=head.images if head.images is not None else tail.images,
        annotations=parts,
        categories=head.categories if head.categories is not None else tail.categories,
        has_annotations=True,
        layout={"head_end": plan.head_end, "start": plan.start, "split": plan.split,
                "prefetch": positions.Prefetch(parallel.share(first, 1), parallel.share(rest, 1)),
                "summaries": Summaries(parallel.share(first, 2), parallel.share(rest, 2), rows_of(first_columns))},
    )


class _Unproven(Exception):
    """A piece of the split decode failed in a way that does not prove the file is bad."""


def _piece(work):
    try:
        return work()
    except (msgspec.ValidationError, OverflowError) as exc:
        # the piece is parsed in the state the whole file's parse would be in: same error there
        raise TypedFailed from exc
    except Exception as exc:  # malformed at the cut, a key twice, a child that died: unproven
        raise _Unproven from exc
