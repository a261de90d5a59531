"""Decimal numbers in JSON bytes, eight digits at a time (SWAR arithmetic on uint64 words).

The plain decimals COCO writers emit (``-12.5``, ``239.97000000000003``) are parsed straight from
the file's bytes, a whole column of them at once, instead of becoming Python floats one by one.
"""

from __future__ import annotations

import numpy as np

_U64 = np.uint64
_DIGIT_BITS = _U64(0x1010101010101010)  # bit 4 is set in '0'..'9' and clear in '.'
_BYTE_INDEX = _U64(0x0001020304050607)  # multiplying 2**(8k) by this puts k in the top byte
_LOW_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], np.uint64)
_TOP_DIGITS = np.array([(0x0F0F0F0F0F0F0F0F << (8 * (8 - k))) & ((1 << 64) - 1) for k in range(9)], np.uint64)
_ALIGN_SHIFT = np.array([(64 - 8 * k) & 63 for k in range(9)], np.uint64)  # moves k bytes to the top
_DOT_BITS = _LOW_BYTES & _DIGIT_BITS  # bit 4 of each of the first k bytes
_TOP_DOT_BITS = ~_LOW_BYTES[8 - np.arange(9)] & _DIGIT_BITS  # bit 4 of each of the last k bytes
_FRACTION_INDEX = _U64(0x0706050403020100)  # multiplying 2**(8k) by this puts 7 - k in the top byte
_FRONT = b" " * 8  # lets the first token read the whole 8-byte word that ends with it
_POW10 = 10.0 ** np.arange(17)
_PAD = b" " * 32  # lets every token read whole 8-byte words past its end


def _word_reader(buf):
    """A function giving the little-endian uint64 that starts at each of some byte offsets of ``buf``
    (a view of every 8-byte window: numpy gathers from it directly)."""
    return np.ndarray((len(buf) - 7,), "<u8", buffer=buf, strides=(1,)).take


def _eight_digits(w: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Value of the first ``n`` (0 to 8) ASCII digits held in each word (first digit lowest)."""
    v = (w << _ALIGN_SHIFT[n]) & _TOP_DIGITS[n]  # right-align, zero-pad
    v = (v * _U64(2561)) >> _U64(8)  # pairs of digits
    v = ((v & _U64(0x00FF00FF00FF00FF)) * _U64(6553601)) >> _U64(16)  # fours
    return ((v & _U64(0x0000FFFF0000FFFF)) * _U64(42949672960001)) >> _U64(32)  # eight


def parse_decimals(buf, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parse JSON numbers without exponent (``-?\\d+(\\.\\d+)?``) at ``buf[start:start + length]``.

    Returns (values, ok); ``ok`` is False where the '.' is not among the first eight characters
    or the fraction has more than 16 digits, which the caller decodes another way. ``buf`` must
    end with 24 spare bytes. Numbers of up to 8 characters (nearly all coordinates) are
    correctly rounded; longer ones can differ in the last bit, which no geometry check notices.
    """
    word_at = _word_reader(buf)
    w = word_at(starts)
    negative = (w & _U64(0xFF)) == ord("-")
    signed = negative.any()  # coordinates rarely are: skip the sign work when none is
    s = starts + negative if signed else starts
    n = lengths - negative if signed else lengths
    if signed:
        w = word_at(s)
    n8 = np.minimum(n, 8)
    dot_bit = ~w & _DOT_BITS[n8]  # bit 4 of a '.' among the first eight bytes
    has_dot = dot_bit != 0
    dot_unit = dot_bit >> _U64(4)  # 2 ** (8 * position of the '.')
    dot = ((dot_unit * _BYTE_INDEX) >> _U64(56)).astype(np.int64)
    n_frac = np.where(has_dot, n - dot - 1, 0)
    # drop the '.': the bytes after it move down one place, then all digits parse as one integer
    before_dot = np.where(has_dot, dot_unit - _U64(1), _LOW_BYTES[n8])
    digits = (w & before_dot) | ((w >> _U64(8)) & ~before_dot)
    value = _eight_digits(digits, np.minimum(n - has_dot, 8)) / _POW10[np.minimum(n_frac, 16)]
    ok = n <= 8  # the whole number was in the word
    long = np.flatnonzero(~ok)  # longer: rare; read the whole part and up to 16 fraction digits
    if long.size:
        d, nf, sl = dot[long], n_frac[long], s[long]
        first = np.minimum(nf, 8)
        rest = np.clip(nf - 8, 0, 8)
        value[long] = (_eight_digits(w[long], np.minimum(d, 8)).astype(np.float64)
                       + _eight_digits(word_at(sl + d + 1), first) / _POW10[first]
                       + _eight_digits(word_at(sl + d + 9), rest) / _POW10[first + rest])
        ok[long] = has_dot[long] & (nf <= 16)
    return (np.where(negative, -value, value) if signed else value), ok


def _digits_value(v: np.ndarray) -> np.ndarray:
    """Value of the ASCII digits held in the top bytes of each word, the rest of it zero."""
    v = (v * _U64(2561)) >> _U64(8)  # pairs of digits
    v = ((v & _U64(0x00FF00FF00FF00FF)) * _U64(6553601)) >> _U64(16)  # fours
    return ((v & _U64(0x0000FFFF0000FFFF)) * _U64(42949672960001)) >> _U64(32)  # eight


def parse_decimal_ends(buf, ends: np.ndarray, lengths: np.ndarray, signed: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """:func:`parse_decimals` of the numbers that end at ``ends``, with the same results, in
    fewer steps: the word that *ends* with a number holds it in its top bytes, already where
    the digit arithmetic wants it, and a '-' below them is left out by counting. ``buf`` must
    have 8 bytes before the first number and 24 after the last; ``signed=False`` promises that
    no number has a '-'."""
    word_at = _word_reader(buf)
    w = word_at(ends - 8)
    if signed:
        negative = np.frombuffer(buf, np.uint8).take(ends - lengths) == ord("-")
        n = lengths - negative
    else:
        n = lengths
    n8 = np.minimum(n, 8)
    dot_unit = (~w & _TOP_DOT_BITS[n8]) >> _U64(4)  # 2 ** (8 * the byte of the '.' in the word)
    n_frac = (dot_unit * _FRACTION_INDEX) >> _U64(56)  # the bytes above the '.' (0 without one)
    has_dot = dot_unit != 0
    low = (dot_unit << _U64(8)) - has_dot  # the '.' and the bytes below it (none without a '.')
    digits = (w & ~low) | ((w << _U64(8)) & low)  # the '.' taken out: the bytes below move up
    value = _digits_value(digits & _TOP_DIGITS[n8 - has_dot]) / _POW10[n_frac]
    if signed:
        value = np.where(negative, -value, value)
    ok = n <= 8
    long = np.flatnonzero(~ok)  # rare: parse_decimals reads them
    if long.size:
        value[long], ok[long] = parse_decimals(buf, ends[long] - lengths[long], lengths[long])
    return value, ok
