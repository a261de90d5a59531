"""Predictions files of boxes only: the fast road, in two processes for a large file.

The common results file (every detection a box, no masks) decodes into a Struct with no optional
field, and a large one in two processes, each decoding half of the array (the forked child
shares the file's bytes; only its columns come back). Whatever this road does not like (a bad
entry, a cut it cannot prove, no second core) gives no verdict: the general decode
(labellint.gate.predictions) then says what is wrong.
"""

from __future__ import annotations

import gc
import os
import re
import signal
import sys
import warnings
from dataclasses import dataclass
from functools import partial
from itertools import chain
from operator import attrgetter

import msgspec
import numpy as np

from labellint import buffers

_BOUNDARY = re.compile(rb"\}[ \t\r\n]*,[ \t\r\n]*\{")


class _Box(msgspec.Struct, gc=False):
    """The common detection: a box, no mask. No optional field: it decodes faster than
    predictions._Det."""

    image_id: int
    category_id: int
    score: float
    bbox: tuple[float, float, float, float]


_box_decoder = msgspec.json.Decoder(list[_Box])


def _ints(dets, name: str) -> np.ndarray:
    return np.fromiter(map(attrgetter(name), dets), np.int64, len(dets))


#: The files with this key hold masks: the general decode reads them (the box Struct would drop them).
_SEGMENTATION = b'"segmentation"'


def _box_columns(dets: list) -> tuple:
    """``(image_id, category_id, rows)``; rows are the ``as_array`` form ``[image_id, x, y, w, h,
    score, category_id]``, and ``score`` and ``bbox`` become views of them."""
    n = len(dets)
    image_id, category_id = _ints(dets, "image_id"), _ints(dets, "category_id")
    rows = np.empty((n, 7), np.float64)
    rows[:, 0] = image_id
    rows[:, 1:5] = np.fromiter(chain.from_iterable(map(attrgetter("bbox"), dets)), np.float64, 4 * n).reshape(n, 4)
    rows[:, 5] = np.fromiter(map(attrgetter("score"), dets), np.float64, n)
    rows[:, 6] = category_id
    return image_id, category_id, rows


def _decode_boxes(data) -> tuple | None:
    """Columns (as _box_columns) when every detection is a plain box; None is no verdict: the
    general decode then reads the file again and names what is wrong (a missing score, a box of
    three numbers, broken JSON with its line and column)."""
    try:
        return _box_columns(_box_decoder.decode(data))
    except (msgspec.DecodeError, OverflowError):  # ValidationError is a DecodeError
        return None


class _HasMasks(Exception):
    """A part of the file has a "segmentation" key (_Box would drop it): the general decode."""


_ARRAY_START = re.compile(rb"[ \t\r\n]*\[")


@dataclass
class _SplitChild:
    start: int  # first byte of the top-level array's content
    split: int  # the ',' between two detections where the array is cut
    pid: int
    fd: int


def _start_split(data, share: float) -> _SplitChild | None:
    """Cut the array at an element boundary near ``share`` of it and fork a child that decodes the
    first part; None when there is no second core or no cut.

    The cut is found by byte search and proven by the decodes themselves, as in
    :func:`labellint.coco.split.plan_split`: ``"[" + first + "]"`` decodes only if the parse of the
    whole file is, at the cut, in the top-level array right after a complete element (inside a
    string or deeper in an element the added ``]`` is an error); ``"[" + rest`` then continues
    exactly as the whole parse would, to the end of the file. Both must decode to be used."""
    if not _can_fork():
        return None
    m = _ARRAY_START.match(data)
    if m is None:
        return None
    start, n = m.end(), len(data)
    target = start + int((n - start) * share)
    b = _BOUNDARY.search(data, target, min(n, target + (1 << 20)))
    if b is None:
        return None
    split = data.find(b",", b.start() + 1, b.end())
    child = _fork(partial(_decode_part, data, start, split, b"[", b"]", True))
    return _SplitChild(start, split, *child) if child is not None else None


def _finish_split(data, child: _SplitChild) -> tuple | None:
    """Decode the rest here, then take the child's columns; None when either part did not decode."""
    try:
        try:
            rest_ids, rest_cats, rest_rows = _decode_part(data, child.split + 1, len(data), b"[", b"")
        except (msgspec.DecodeError, OverflowError, _HasMasks):
            return None
        n1 = _read_header(child.fd)
        if n1 < 0:
            return None
        n = n1 + len(rest_ids)
        image_id, category_id, rows = np.empty(n, np.int64), np.empty(n, np.int64), np.empty((n, 7), np.float64)
        for target in (image_id[:n1], category_id[:n1], rows[:n1]):
            if not _read_into(child.fd, target):
                return None
        image_id[n1:], category_id[n1:], rows[n1:] = rest_ids, rest_cats, rest_rows
        return image_id, category_id, rows
    finally:
        _reap(child.pid, child.fd)


_kept: list = []


def _decode_part(data, start: int, end: int, prefix: bytes, suffix: bytes, keep: bool = False) -> tuple:
    """Each process looks for masks in its own part only: no pass of one process over the whole file.
    ``keep``: the forked child leaves with os._exit, so its objects need not be freed."""
    if data.find(_SEGMENTATION, start, end) >= 0:
        raise _HasMasks
    with _spliced(data, start, end, prefix, suffix) as part:
        dets = _box_decoder.decode(part)
    if keep:
        _kept.append(dets)
    return _box_columns(dets)


_spliced = buffers.spliced  # one in-place splice for the loader and this decoder


# -- a forked child for the first part (Linux, a second core) -----------------------------------
def _can_fork() -> bool:
    if not hasattr(os, "fork") or not sys.platform.startswith("linux") or os.environ.get("LABELLINT_NO_FORK"):
        return False
    try:
        return len(os.sched_getaffinity(0)) >= 2
    except OSError:  # pragma: no cover
        return False


def _fork(work):
    """``(pid, fd)`` of a forked child that runs ``work()`` (arrays of one length) and writes to the
    pipe their length (-1 when it failed), then their bytes; None when no child could start.

    The child shares the parent's memory (the file's bytes), so nothing is copied in; it runs only
    msgspec and numpy and leaves with ``os._exit``, skipping all cleanup. Python >= 3.12 warns
    about forking a process that has threads; the child takes no lock another thread could hold."""
    r, w = os.pipe()
    try:  # a larger pipe: fewer switches between the writing child and the reading parent
        import fcntl

        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 1 << 20)
    except (ImportError, AttributeError, OSError):  # pragma: no cover
        pass
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return None
    if pid == 0:  # pragma: no cover - the child; the parent checks what it sends
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            gc.disable()  # its objects are never freed: nothing for the collector to do
            os.close(r)
            try:
                arrays = work()
                header = len(arrays[0])
            except BaseException:
                arrays, header = (), -1
            with open(w, "wb", buffering=0) as out:
                out.write(header.to_bytes(8, "little", signed=True))
                for a in arrays:
                    with memoryview(np.ascontiguousarray(a)).cast("B") as view:
                        while view.nbytes:
                            view = view[out.write(view):]
        finally:
            os._exit(0)
    os.close(w)
    return pid, r


def _read_into(fd: int, array: np.ndarray) -> bool:
    with memoryview(array).cast("B") as view:
        while view.nbytes:
            got = os.readv(fd, [view])
            if got <= 0:
                return False
            view = view[got:]
    return True


def _read_header(fd: int) -> int:
    head = np.empty(1, np.int64)
    return int(head[0]) if _read_into(fd, head) else -1


def _reap(pid: int, fd: int) -> None:
    os.close(fd)  # a child still writing gets EPIPE (or SIGPIPE) and exits
    try:
        os.kill(pid, signal.SIGKILL)  # ours, by pid; gone already in the normal case
    except ProcessLookupError:  # pragma: no cover
        pass
    os.waitpid(pid, 0)

