"""A byte-level look at a JSON text before it is decoded: how deep it nests, its top-level keys,
and whether it holds an integer too long for Python.

Decoders recurse once per level of nesting, and so do walks over decoded values: a file nested a
thousand deep ends in a RecursionError, wherever it is first walked. :func:`check` refuses it
first, at the byte where it goes deeper than the limit (``limits.get("max_json_depth")``), so
that everything after it may assume a bounded depth. It also lists the keys of the top-level
object with the offset of each: a key that appears twice is a file whose readers disagree
(JSON readers keep the last value; the byte offsets a linter reports may point into the first).

Speed matters (this runs on every file, 270 MB for COCO train2017), so nothing here walks the
bytes one by one in Python. The file is cut into 64-byte words, and numpy computes, for each
word, bit masks of its quotes, its opening and closing brackets, and which of its bytes lie
inside a string (a prefix XOR of the quote bits, carried from word to word, as simdjson does).
The depth at the start of each word is then a cumulative sum of bracket counts; a word can go at
most as deep as its start plus its opening brackets, and no shallower than its start minus its
closing brackets. Only the rare words whose bounds reach the limit, or the top level, are looked
at byte by byte. Backslashes, which only strings hold, are looked at only in files that have
some: a quote after an odd run of backslashes is escaped and opens or closes nothing.

Python refuses to convert an integer literal of more than 4300 digits (sys.set_int_max_str_digits)
with a ValueError, wherever a decoder first meets it, even in a field read long after loading. A
run of that many digits fills some 66 whole words without a quote or a bracket; only such runs
of words (a long polygon, a long string) are searched for digits.
"""

from __future__ import annotations

import re
import sys

import msgspec
import numpy as np

from labellint import limits
from labellint.errors import InputError

_CHUNK = 1 << 20  # bytes per step: a multiple of 64, small enough for the masks to stay in cache
_WORD_SHIFTS = tuple(np.uint64(s) for s in (1, 2, 4, 8, 16, 32))
_TOP_BIT = np.uint64(63)
_QUOTE, _BACKSLASH = 0x22, 0x5C
_OPEN, _CLOSE = 0x7B, 0x7D  # '{' and '}'; '[' and ']' are the same bytes with bit 5 cleared
_STRING_TEXT = rb'"[^"\\]*(?:\\.[^"\\]*)*"'  # unrolled: a long string is one fast run, not a repeat per byte
_STRING = re.compile(_STRING_TEXT, re.S)
_SPACE = re.compile(rb"[ \t\r\n]*")
_COLON = re.compile(rb"[ \t\r\n]*:")


class Scan:
    """What :func:`scan` found."""

    def __init__(self, too_deep: int | None, keys: list[tuple[str, int]], is_object: bool,
                 long_integer: int | None = None):
        self.too_deep = too_deep  # offset of the first bracket deeper than the limit, or None
        self.keys = keys  # the top-level object's keys, in file order, with their offsets
        self.is_object = is_object
        self.long_integer = long_integer  # offset of an integer longer than Python converts, or None

    def duplicate_keys(self) -> list[tuple[str, int, int]]:
        """(key, offset of its first occurrence, offset of its second) for each top-level key
        that appears more than once, in the order of the second occurrences."""
        first: dict[str, int] = {}
        out = []
        reported = set()
        for key, offset in self.keys:
            if key not in first:
                first[key] = offset
            elif key not in reported:
                reported.add(key)
                out.append((key, first[key], offset))
        return out


def _bits(mask: np.ndarray) -> np.ndarray:
    """A boolean mask as 64-bit words, bit j of word w standing for byte 64 w + j."""
    packed = np.packbits(mask, bitorder="little")
    pad = -len(packed) % 8
    if pad:
        packed = np.concatenate([packed, np.zeros(pad, np.uint8)])
    return packed.view("<u8")


def _unbits(words: np.ndarray) -> np.ndarray:
    """(len(words), 64) of 0/1 (int8): the inverse of :func:`_bits`."""
    return np.unpackbits(words.astype("<u8").view(np.uint8), bitorder="little").reshape(-1, 64).astype(np.int8)


def _escaped_quotes(chunk: np.ndarray, carry: int) -> tuple[np.ndarray, int]:
    """Positions (in ``chunk``) of the quotes that a backslash escapes, and whether the chunk
    ends in an odd run of backslashes (``carry``: whether the previous one did)."""
    slashes = np.flatnonzero(chunk == _BACKSLASH)
    if not len(slashes):
        first_escaped = bool(carry) and len(chunk) > 0 and chunk[0] == _QUOTE
        return np.zeros(int(first_escaped), np.int64), 0
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(slashes) != 1) + 1, [len(slashes)]])
    starts = slashes[bounds[:-1]]
    ends = starts + np.diff(bounds)  # the byte after each run
    odd = np.diff(bounds) % 2
    if carry and starts[0] == 0:
        odd[0] ^= 1  # the run began in the previous chunk
    escaped = ends[(odd == 1) & (ends < len(chunk))]
    escaped = escaped[chunk[escaped] == _QUOTE]
    if carry and starts[0] != 0 and chunk[0] == _QUOTE:
        escaped = np.concatenate([[0], escaped])
    return escaped, int(odd[-1]) if ends[-1] == len(chunk) else 0


def scan(buf, limit: int) -> Scan:
    """Depth and top-level keys of the JSON text ``buf`` (bytes, or a buffer such as an mmap).

    Never raises on bytes that are not JSON: the decoder that follows says what is wrong."""
    data = np.frombuffer(buf, np.uint8)
    n = len(data)
    lead = _SPACE.match(buf).end()
    is_object = lead < n and data[lead] == _OPEN
    finder = buf if hasattr(buf, "find") else bytes(buf)
    slashes = finder.find(b"\\") >= 0
    keys: list[tuple[str, int]] = []
    depth = 0  # at the start of the chunk
    inside_string = 0  # whether the chunk starts inside a string
    carry = 0  # parity of the backslashes that end the previous chunk
    # integers longer than Python converts: a run of that many digits fills `need` whole words
    # that hold no quote and no bracket; such runs of words are rare (a long polygon, a long
    # string), and only they are searched for digits
    digits = int_digits_limit()
    need = max(1, (digits + 1) // 64 - 1) if digits else 0
    plain_run = 0  # words with no quote and no bracket that end the previous chunk
    long_runs: list[tuple[int, int]] = []
    mask_buf = np.empty(min(n, _CHUNK), bool)
    fold_buf = np.empty(min(n, _CHUNK), np.uint8)
    for base in range(0, n, _CHUNK):
        chunk = data[base:base + _CHUNK]
        m = len(chunk)
        quote_mask = np.equal(chunk, _QUOTE, out=mask_buf[:m])
        if slashes:
            escaped, carry = _escaped_quotes(chunk, carry)
            quote_mask[escaped] = False
        quotes = _bits(quote_mask)
        folded = np.bitwise_or(chunk, 0x20, out=fold_buf[:m])
        opens = _bits(np.equal(folded, _OPEN, out=mask_buf[:m]))
        closes = _bits(np.equal(folded, _CLOSE, out=mask_buf[:m]))
        if need:
            edges = np.flatnonzero((quotes | opens | closes) != 0)
            edges = np.concatenate([[-1 - plain_run], edges, [len(quotes)]])
            gaps = np.diff(edges) - 1
            last = base + _CHUNK >= n
            for k in np.flatnonzero(gaps[:None if last else -1] >= need):  # the run that ends the chunk goes on
                long_runs.append((max(0, base + 64 * int(edges[k])), min(n, base + 64 * (int(edges[k + 1]) + 1))))
            plain_run = int(gaps[-1])
        # bit j of `strings`: the quotes up to byte j, this one included, are odd in number:
        # byte j is an opening quote or inside a string (a closing quote is not)
        strings = quotes.copy()
        for s in _WORD_SHIFTS:
            strings ^= strings << s
        word_parity = (strings >> _TOP_BIT).astype(np.int8)
        carried = np.cumsum(word_parity, dtype=np.int8)  # int8 wraps around; its parity does not
        carried -= word_parity
        carried += inside_string
        carried &= 1
        strings ^= (-carried.astype(np.int64)).view("<u8")
        inside_string = int((carried[-1] + word_parity[-1]) & 1)
        opens &= ~strings
        closes &= ~strings
        n_open = np.bitwise_count(opens).astype(np.int64)
        n_close = np.bitwise_count(closes).astype(np.int64)
        start = np.cumsum(n_open - n_close)  # depth after each word, for now
        start -= n_open - n_close
        start += depth
        depth = int(start[-1] + n_open[-1] - n_close[-1])
        # most chunks stop here: no word can reach the limit, nor the top level
        reach_deep = int((start + n_open).max()) > limit
        reach_top = is_object and int((start - n_close).min()) <= 1
        if not (reach_deep or reach_top):
            continue
        # only words that open something can go too deep, only words that open a string can
        # hold a key: a long string or a run of spaces at the top level is passed over
        deep = np.flatnonzero((start + n_open > limit) & (n_open > 0)) if reach_deep else None
        top = np.flatnonzero((start - n_close <= 1) & ((quotes & strings) != 0)) if reach_top else None
        words = deep if top is None else top if deep is None else np.union1d(deep, top)
        step = _unbits(opens[words]) - _unbits(closes[words])
        after = start[words][:, None] + np.cumsum(step, axis=1, dtype=np.int64)  # depth after each byte
        if reach_deep:
            over = np.argwhere(after > limit)
            if len(over):
                w, j = over[0]
                return Scan(base + 64 * int(words[w]) + int(j), keys, is_object, None)
        if reach_top:
            before = after - step
            opening = _unbits(quotes[words]) & _unbits(strings[words])
            for w, j in np.argwhere((opening == 1) & (before == 1)):
                _top_key(buf, base + 64 * int(words[w]) + int(j), keys)
    long_integer = None
    if any(_digit_run(data[lo:hi], digits + 1) for lo, hi in long_runs):
        long_integer = long_integer_at(buf)  # in a string, it is no integer
    return Scan(None, keys, is_object, long_integer)


def _digit_run(region: np.ndarray, length: int) -> bool:
    """Whether ``region`` holds ``length`` digits in a row (1 MB at a time, overlapping by
    ``length``: the count of digits in every window of that length, from a cumulative sum)."""
    for lo in range(0, max(1, len(region) - length + 1), _CHUNK):
        digit = (region[lo:lo + _CHUNK + length] - 48) < 10  # uint8: bytes below '0' wrap round
        if len(digit) < length or np.count_nonzero(digit) < length:
            continue
        counts = np.cumsum(digit, dtype=np.int32)
        if counts[length - 1] == length or (counts[length:] - counts[:-length]).max(initial=0) == length:
            return True
    return False


def _top_key(buf, at: int, keys: list) -> None:
    """The string at ``at`` (at depth 1 of the top-level object) if it is a key (a ':' follows)."""
    m = _STRING.match(buf, at)
    if m is None or _COLON.match(buf, m.end()) is None:
        return
    try:
        keys.append((msgspec.json.decode(m.group()), at))
    except msgspec.DecodeError:  # a broken escape: the decoder reports the file
        pass


def check(buf, path: str) -> Scan:
    """:func:`scan` with the configured limit; InputError at the first byte nested too deep."""
    limit = limits.get("max_json_depth")
    found = scan(buf, limit)
    if found.too_deep is not None:
        raise too_deep(buf, path, found.too_deep, limit)
    if found.long_integer is not None:
        raise long_integer(buf, path)
    return found


def too_deep(buf, path: str, offset: int | None, limit: int | None = None) -> InputError:
    from labellint.coco.positions import offset_to_line_column

    env = limits.LIMITS["max_json_depth"].env
    line, col = offset_to_line_column(buf, offset) if offset is not None else (None, None)
    if limit is None:  # the decoder ran out of stack before the limit
        return InputError(f"nested deeper than this Python can decode: {env}={limits.get('max_json_depth')} "
                          "is more than it takes (lower it)", path, line, col)
    return InputError(f"nested deeper than {limit} levels of arrays and objects, the most read "
                      f"(set {env} to change it)", path, line, col)


# -- integers too long for Python ------------------------------------------------------------------
def int_digits_limit() -> int:
    """The longest integer literal Python converts (sys.set_int_max_str_digits; 0: no limit)."""
    getter = getattr(sys, "get_int_max_str_digits", None)
    return getter() if getter is not None else 0


def long_integer(buf, path: str | None) -> InputError:
    """The error for a file with an integer literal too long for Python, at that literal."""
    from labellint.coco.positions import offset_to_line_column

    at = long_integer_at(buf)
    line, col = offset_to_line_column(buf, at) if at is not None else (None, None)
    return InputError(f"an integer of more than {int_digits_limit()} digits, beyond Python's limit for converting "
                      "one (PYTHONINTMAXSTRDIGITS); no id, size or coordinate is that long", path, line, col)


def long_integer_at(buf) -> int | None:
    """Offset of the first integer literal (outside strings) longer than Python converts, if any.
    Only for error messages: it walks every string of the file in Python."""
    digits = int_digits_limit()
    if not digits or re.search(rb"[0-9]{%d}" % (digits + 1), buf) is None:
        return None
    # an integer, not a float's digits: the whole run (taken at once, no backtracking), then no
    # fraction or exponent
    token = re.compile(_STRING_TEXT + rb"|(?<![0-9])-?(?=([0-9]{%d,}))\1(?![.eE])" % (digits + 1), re.S)
    return next((t.start() for t in token.finditer(buf) if t.group()[:1] != b'"'), None)
