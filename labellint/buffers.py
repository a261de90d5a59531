"""Decoding a slice of a big buffer as a JSON document of its own, without copying it.

Used by the COCO loader's two-process decode and by the prediction decoder of ``labellint
evaluate`` (which imports this module alone, not labellint.coco, to keep its start-up short).
"""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def spliced(buf, start: int, end: int, prefix: bytes = b"", suffix: bytes = b""):
    """A buffer holding ``prefix + buf[start:end] + suffix``, to decode a slice of the file as a
    document of its own.

    When ``buf`` is writable (the loader maps large files copy-on-write, so writes reach neither
    the file nor another process), the bytes just around the slice are overwritten for the
    duration and restored after: no copy. Copying a 130 MB slice costs ~0.1-0.2 s (mostly page
    faults of the new buffer), as much as decoding it. Otherwise (``bytes``) it is a copy.
    """
    lo, hi = start - len(prefix), end + len(suffix)
    if 0 <= lo and hi <= len(buf) and writable(buf):
        saved = bytes(buf[lo:start]), bytes(buf[end:hi])
        buf[lo:start], buf[end:hi] = prefix, suffix
        view = memoryview(buf)[lo:hi]
        try:
            yield view
        finally:
            view.release()
            buf[lo:start], buf[end:hi] = saved
        return
    out = bytearray(len(prefix) + (end - start) + len(suffix))
    out[: len(prefix)] = prefix
    with memoryview(buf) as view:
        out[len(prefix) : len(prefix) + end - start] = view[start:end]
    out[len(out) - len(suffix) :] = suffix
    yield out


def writable(buf) -> bool:
    try:
        with memoryview(buf) as view:
            return not view.readonly
    except TypeError:
        return False
