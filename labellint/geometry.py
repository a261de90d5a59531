"""Vectorised geometry that several rules share: box overlaps, polygon and RLE summaries.

Everything works on whole numpy columns. Segmentations are summarised once per Dataset and
cached, because several rules read them and reading them is the expensive part of linting a big
file. The summary is per annotation (kind, summed polygon area, extent of the points) plus the
few polygons LL106 reports: no rule needs a Python object, or even a number, per polygon. For
large files the loader's two decoding children work it out for their half of the annotations
while this process runs the first rules (labellint.coco.load), with the same code as here.

Reading polygons fast: msgspec would turn the 20 million coordinates of a train2017-sized file
into Python floats (seconds). Instead the raw JSON bytes are read with numpy: the structural
bytes ``,[]`` give rows, polygons and numbers, and the plain decimals COCO writers emit
(``-12.5``, ``239.97000000000003``) are parsed eight digits at a time (SWAR arithmetic on uint64
words), in batches small enough to stay in the CPU cache. Anything unusual (an exponent, a
string, deeper nesting, a flat list) sends that one annotation to the slow path, which decodes it
with msgspec and says what is wrong with it.
"""

from __future__ import annotations

import json
import operator
from dataclasses import dataclass
from itertools import chain

import msgspec
import numpy as np

from labellint import limits

# -- sorting -------------------------------------------------------------------------------------


def sort_by_group(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Order that sorts rows by (group, value); ``groups`` are non-negative ints such as row indexes.

    Three times faster than ``np.lexsort`` on a million rows: one argsort of the values, then
    stable argsorts of the group in 16-bit digits, which numpy does as radix sorts.
    """
    order = np.argsort(values)
    top = int(groups.max()) if len(groups) else 0
    shift = 0
    while True:
        digit = ((groups[order] >> shift) & 0xFFFF).astype(np.uint16)
        order = order[np.argsort(digit, kind="stable")]
        shift += 16
        if top >> shift == 0:
            return order


# -- boxes ---------------------------------------------------------------------------------------


def box_columns(ds) -> np.ndarray:
    """The boxes of ``ds`` as a (4, n) array: x, y, width and height, each one contiguous (computed
    once). Whole-column arithmetic on them runs about three times faster than on the strided
    columns of the (n, 4) ``annotations.bbox``."""
    return _cached(ds, "box_columns", lambda: np.ascontiguousarray(ds.annotations.bbox.T))


def finite_rows(boxes: np.ndarray) -> np.ndarray:
    """Whether each row of an (n, 4) array (boxes, extents) is all finite: ``np.isfinite(boxes)
    .all(axis=1)``, ten times faster (numpy reduces short rows slowly; here each row's four bools
    are read as one 32-bit word)."""
    finite = np.isfinite(boxes)
    if finite.ndim == 2 and finite.shape[1] == 4 and finite.flags.c_contiguous:
        return finite.view(np.uint32)[:, 0] == 0x01010101
    return finite.all(axis=1)


class Pairs(tuple):
    """(first, second, iou) row arrays of overlapping boxes, and ``capped``: the groups (images)
    whose search stopped at its budget before it had compared every candidate pair."""

    capped: np.ndarray

    def __new__(cls, first, second, iou, capped=None):
        self = super().__new__(cls, (first, second, iou))
        self.capped = np.zeros(0, np.int64) if capped is None else np.asarray(capped, np.int64)
        return self


def overlapping_pairs(group: np.ndarray, boxes: np.ndarray, min_iou: float, rows: np.ndarray | None = None,
                      pairs_per_box: int | None = None) -> Pairs:
    """Pairs of rows in the same group (say, image) whose boxes overlap with IoU >= ``min_iou``.

    ``group`` holds non-negative ints (image rows). Only ``rows`` (default: all) with finite boxes
    of positive size take part. Returns (first, second, iou) arrays, each pair once; ``first``
    is the row whose box starts further left.

    Sort-and-sweep: rows sorted by (group, x) and each row compared with the rows after it while
    they can still reach ``min_iou``. A box j starting at x_j >= x_i reaches IoU t with box i only
    if x_j <= x_i + (1 - t) * w_i (the intersection is at least t * w_i wide), so for the high
    thresholds duplicate rules use, each row meets a handful of candidates: the work grows with
    rows plus candidates, never with rows squared.

    Except for a pile: n boxes at one spot are n * (n - 1) / 2 candidates, and as many pairs to
    keep (10,000 copies of one box: 50 million). With ``pairs_per_box``, a group stops comparing
    once it has compared that many pairs per box it holds (each step compares a row with the row
    ``step`` places after it, so the nearest candidates come first: a pile is still linked from
    end to end); such groups are listed in ``Pairs.capped``. Time and memory then grow with the
    rows, whatever the layout.
    """
    if not 0 < min_iou <= 1:
        raise ValueError(f"min_iou must be in (0, 1], got {min_iou}")
    if rows is None:
        rows = np.arange(len(group))
    # whole columns (x, y, w, h) from here on, each contiguous; cheapest when ``boxes`` is the
    # transpose of a (4, n) array (box_columns), as then each is one sequential gather
    b = np.take(boxes.T, rows, axis=1)
    with np.errstate(invalid="ignore"):
        usable = np.isfinite(b).all(axis=0) & (b[2] > 0) & (b[3] > 0)
    if not usable.all():
        rows, b = rows[usable], b[:, usable]
    order = sort_by_group(group[rows], b[0])
    rows = rows[order]
    g = group[rows]
    x0, y0, bw, bh = np.take(b, order, axis=1)
    x1, y1, area = x0 + bw, y0 + bh, bw * bh
    reach = x0 + (1.0 - min_iou) * bw
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    capped: set[int] = set()
    if pairs_per_box is not None and len(rows):
        first_of_group = np.flatnonzero(np.concatenate([[True], g[1:] != g[:-1]]))
        slot = np.repeat(np.arange(len(first_of_group)), np.diff(np.append(first_of_group, len(g))))
        budget = np.diff(np.append(first_of_group, len(g))) * int(pairs_per_box)
        spent = np.zeros(len(first_of_group), np.int64)
    # x is sorted within a group: once a row is out of reach, so are all rows after it. The
    # first step compares each row with the next one (slices, no gathers).
    left = np.flatnonzero((g[1:] == g[:-1]) & (x0[1:] <= reach[:-1]))
    step = 1
    while left.size:
        right = left + step
        if step > 1:
            inside = right < len(rows)
            left, right = left[inside], right[inside]
            near = (g[right] == g[left]) & (x0[right] <= reach[left])
            left, right = left[near], right[near]
        if pairs_per_box is not None:
            spent_up = spent[slot[left]] >= budget[slot[left]]
            if spent_up.any():  # candidates left in a group that has spent its budget
                capped.update(g[left[spent_up]].tolist())
                left, right = left[~spent_up], right[~spent_up]
            spent += np.bincount(slot[left], minlength=len(spent))
        iw = np.minimum(x1[left], x1[right]) - x0[right]
        ih = np.minimum(y1[left], y1[right]) - np.maximum(y0[left], y0[right])
        inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
        iou = inter / (area[left] + area[right] - inter)
        hit = iou >= min_iou
        found.append((rows[left[hit]], rows[right[hit]], iou[hit]))
        step += 1
    capped_groups = np.array(sorted(capped), np.int64)
    if not found:
        empty = np.zeros(0, np.int64)
        return Pairs(empty, empty, np.zeros(0), capped_groups)
    first, second, iou = (np.concatenate(parts) for parts in zip(*found))
    return Pairs(first, second, iou, capped_groups)


def components(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Connected components of the graph on rows 0..n-1 with the edges (a[i], b[i]): each row's
    label is the smallest row of its component (a row without edges is its own).

    Hooking and pointer jumping on whole arrays: each round hooks every component onto the
    smallest label across its edges, then follows labels to their root; a few rounds suffice,
    even for one long chain of pairs."""
    label = np.arange(n)
    if not len(a):
        return label
    a, b = np.asarray(a), np.asarray(b)
    while True:
        la, lb = label[a], label[b]
        low = np.minimum(la, lb)
        hooked = label.copy()
        np.minimum.at(hooked, la, low)
        np.minimum.at(hooked, lb, low)
        while True:
            jumped = hooked[hooked]
            if np.array_equal(jumped, hooked):
                break
            hooked = jumped
        if np.array_equal(hooked, label):
            return label
        label = hooked


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of two (n, 4) arrays of [x, y, w, h] boxes (0 where the union is empty)."""
    ix = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    iy = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


# -- polygons ------------------------------------------------------------------------------------


def polygon_summaries(coords: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Area (shoelace) and extent [min x, min y, max x, max y] of each polygon.

    ``coords`` holds the coordinates of all polygons one after another, ``lengths`` how many
    each has. A trailing odd coordinate is ignored (the invalid-polygon rule reports it);
    polygons without a point get nan.
    """
    n = len(lengths)
    area = np.full(n, np.nan)
    extent = np.full((n, 4), np.nan)
    points = lengths // 2
    has_points = points > 0
    if not has_points.any():
        return area, extent
    if (lengths % 2 == 0).all():
        x, y = coords[0::2].copy(), coords[1::2].copy()  # contiguous: the reductions run twice as fast
    else:  # an odd polygon shifts the x/y parity of every polygon after it: gather by index
        coord_start = np.cumsum(lengths) - lengths
        point_start = np.cumsum(points) - points
        idx = np.repeat(coord_start - 2 * point_start, points) + 2 * np.arange(points.sum())
        x, y = coords[idx], coords[idx + 1]
    end = np.cumsum(points)[has_points]
    first = end - points[has_points]
    last = end - 1
    with np.errstate(invalid="ignore", over="ignore"):  # Infinity in a point (LL002's) gives nan
        # x[i] * y[i + 1] - x[i + 1] * y[i], where the point after the last is the first (the
        # edge that closes the ring)
        cross = np.empty(len(x))
        np.subtract(x[:-1] * y[1:], x[1:] * y[:-1], out=cross[:-1])
        cross[last] = x[last] * y[first] - x[first] * y[last]
        area[has_points] = 0.5 * np.abs(np.add.reduceat(cross, first))
    extent[has_points] = np.stack([np.minimum.reduceat(x, first), np.minimum.reduceat(y, first),
                                   np.maximum.reduceat(x, first), np.maximum.reduceat(y, first)], axis=1)
    return area, extent


# -- decimal numbers in JSON bytes, eight digits at a time ---------------------------------------

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


# -- segmentations -------------------------------------------------------------------------------

NONE, POLYGONS, RLE, MALFORMED = 0, 1, 2, 3

_BATCH = 4096  # annotations per batch: the byte arrays stay in cache and their memory is reused
_COMMA, _OPEN, _CLOSE = ord(","), ord("["), ord("]")


def _unusual_bytes(b: np.ndarray) -> np.ndarray:
    """Positions of bytes a list of polygons of plain decimals never holds: letters (exponents,
    literals), quotes, braces, colons. Whitespace, commas, brackets and number bytes are usual."""
    high = b > ord("9")
    quote = b == ord('"')
    brackets = (b == ord("[")) | (b == ord("]"))
    if np.count_nonzero(high) == np.count_nonzero(brackets) and not quote.any():
        return np.zeros(0, np.int64)
    return np.flatnonzero(high & ~brackets | quote)


def _describe(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def decode_raw(text) -> tuple[object, bool]:
    """One segmentation's JSON text decoded: (value, in_range). msgspec refuses a number beyond
    a float (1e999); Python's reader takes it as infinity, and ``in_range`` is then False."""
    try:
        return msgspec.json.decode(text), True
    except msgspec.DecodeError:
        return json.loads(bytes(text)), False


def classify(value) -> tuple[int, str | None, list]:
    """(kind, problem, polygons) of one decoded segmentation value: the slow, exact path."""
    if value is None or (isinstance(value, list) and not value):
        return NONE, None, []
    if isinstance(value, dict):
        return RLE, None, []
    if not isinstance(value, list):
        return MALFORMED, f"'segmentation' must be a list of polygons or an RLE object, got {_describe(value)}", []
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return MALFORMED, ("'segmentation' is a flat list of numbers; COCO wants a list of polygons, "
                           "[[x1, y1, x2, y2, ...]]"), []
    for poly in value:
        if not isinstance(poly, list):
            return MALFORMED, f"'segmentation' must be a list of polygons, but an item is {_describe(poly)}", []
        bad = next((v for v in poly if not isinstance(v, (int, float)) or isinstance(v, bool)), poly)
        if bad is not poly:
            return MALFORMED, f"a polygon must hold only numbers, but one holds {_describe(bad)}", []
    return POLYGONS, None, value


def _annotation_shapes(poly_ann: np.ndarray, poly_area: np.ndarray, poly_extent: np.ndarray, n: int):
    """Per annotation (rows 0..n-1 of ``poly_ann``, sorted): the summed area and the extent
    [x, y, w, h] of its polygons that have a finite area; nan where it has none.

    Polygon areas are summed (COCO's own area is the area of the rasterised union, which is
    the same unless polygons of one object overlap)."""
    area = np.full(n, np.nan)
    extent = np.full((n, 4), np.nan)
    usable = np.isfinite(poly_area)
    if usable.all():
        ann, poly_area, ext = poly_ann, poly_area, poly_extent
    else:
        ann, poly_area, ext = poly_ann[usable], poly_area[usable], poly_extent[usable]
    if ann.size:
        first_of = np.concatenate([[True], ann[1:] != ann[:-1]])
        if first_of.all():  # one polygon each, as most annotations have: nothing to add up
            rows, lo, hi = ann, ext[:, :2], ext[:, 2:]
            area[rows] = poly_area
        else:
            first = np.flatnonzero(first_of)
            rows = ann[first]
            area[rows] = np.add.reduceat(poly_area, first)
            lo = np.minimum.reduceat(ext[:, :2], first)
            hi = np.maximum.reduceat(ext[:, 2:], first)
        extent[rows, :2] = lo
        extent[rows, 2:] = hi - lo
    return area, extent


def _invalid_polygons(poly_ann: np.ndarray, poly_len: np.ndarray, poly_area: np.ndarray):
    """(annotation, index in it, length, area) of the polygons that have an odd number of
    coordinates, fewer than 3 points or zero area (``poly_ann`` sorted)."""
    odd = poly_len % 2 == 1
    few = poly_len // 2 < 3
    flat = ~few & (poly_area <= 1e-9)
    bad = np.flatnonzero(odd | few | flat)
    index = bad - np.searchsorted(poly_ann, poly_ann[bad])
    return poly_ann[bad], index, poly_len[bad], poly_area[bad]


def _pack(raws: list) -> tuple[bytes, np.ndarray]:
    """A batch of segmentations as one byte string (with room around: _FRONT, _PAD) and lengths."""
    return b"".join([_FRONT, *raws, _PAD]), np.fromiter(map(len, raws), np.int64, len(raws))


def pack_segmentations(items: list, attr: str = "segmentation") -> list:
    """The segmentations (``msgspec.Raw``) held by ``attr`` of each item, packed batch by batch
    for :func:`summarise`; ``items`` is emptied on the way (its entries become None), so that
    the items and their Raw views are freed batch by batch (memory)."""
    get = operator.attrgetter(attr)
    batches = []
    for i in range(0, len(items), _BATCH):
        batches.append(_pack(list(map(get, items[i:i + _BATCH]))))
        items[i:i + _BATCH] = [None] * len(batches[-1][1])
    return batches


def _fast_batch(buf: bytes, lens: np.ndarray, first_row: int, acc: dict) -> None:
    """Summarise one packed batch of raw JSON segmentations (see _pack); rows it cannot take
    go to acc["slow"], with their text (and that of RLE rows) to acc["text"].

    The rows that are plain lists of polygons of plain decimals are joined into one byte
    string (whitespace taken out: it never separates two numbers in valid JSON) and read in
    one go from its structural bytes ``,[]``: the depth of the brackets gives rows and
    polygons, the gaps between structural bytes are the numbers. A row nested deeper, with a
    number outside a polygon or a number :func:`parse_decimals` declines goes to the slow path.
    """
    n = len(lens)
    starts = np.cumsum(lens) - lens
    front = len(_FRONT)
    all_rows, lens_all = buf, lens
    b = np.frombuffer(buf, np.uint8)[front:]
    first_byte = np.where(lens > 0, b[np.minimum(starts, len(b) - 1)], 0)
    kind = np.full(n, MALFORMED, np.int8)
    kind[(lens == 0) | (first_byte == ord("n"))] = NONE  # absent or null
    kind[first_byte == _OPEN] = POLYGONS
    kind[first_byte == ord("{")] = RLE
    fast = kind == POLYGONS
    unusual = _unusual_bytes(b)
    if unusual.size:
        fast[np.searchsorted(starts, unusual, "right") - 1] = False
    rows = np.arange(n) if fast.all() else np.flatnonzero(fast)
    if len(rows) < n:
        view = memoryview(buf)
        buf = b"".join([_FRONT, *[view[front + a:front + a + k] for a, k in zip(starts[rows].tolist(), lens[rows].tolist())],
                        _PAD])
        lens = lens[rows]
    m = len(buf) - front - len(_PAD)
    b = np.frombuffer(buf, np.uint8)[front:front + m]
    space = b <= 32
    if space.any():
        kept = np.concatenate([[0], np.cumsum(~space)])
        ends = np.cumsum(lens)
        lens = kept[ends] - kept[ends - lens]
        b = b[~space]
        buf = b"".join([_FRONT, b.tobytes(), _PAD])
    # structure: the depth after each ',' '[' ']'; every row is one array at depth 1
    # (valid JSON without the unusual bytes and whitespace holds only these and '-', '.', digits)
    struct = np.flatnonzero(np.subtract(b, 45, dtype=np.uint8) > 12)
    ch = b[struct]
    opening, closing = ch == _OPEN, ch == _CLOSE
    depth = np.cumsum(opening.view(np.int8) - closing.view(np.int8), dtype=np.int32)
    row_open = np.flatnonzero(opening & (depth == 1))  # one per row (of ``rows``)
    poly_open = np.flatnonzero(opening & (depth == 2))
    poly_close = np.flatnonzero(closing & (depth == 1))
    gap = np.diff(struct) - 1  # the bytes between two structural bytes are a number
    has_number = gap > 0
    poly_row = np.searchsorted(row_open, poly_open, "right") - 1
    # in a polygon of numbers, the structural bytes are the brackets and one comma between two
    # numbers ("[]" holds none); rows where that is not so go to the slow path below
    poly_len = poly_close - poly_open
    poly_len[(poly_len == 1) & ~has_number[np.minimum(poly_open, len(gap) - 1)]] = 0
    values, ok = parse_decimal_ends(buf, struct[1:][has_number] + front, gap[has_number], bool((b == ord("-")).any()))
    odd = [np.flatnonzero(depth > 2), np.flatnonzero(has_number & (depth[:-1] != 2))]
    if not ok.all():
        odd.append(np.flatnonzero(has_number)[~ok])
    odd = np.concatenate(odd)
    slow = np.zeros(len(rows), bool)
    if odd.size:  # nested too deep, a number outside a polygon, a number parse_decimals declines
        slow[np.searchsorted(row_open, odd, "right") - 1] = True
        values = values[~slow[np.searchsorted(row_open, np.flatnonzero(has_number), "right") - 1]]
        keep = ~slow[poly_row]
        poly_row, poly_len = poly_row[keep], poly_len[keep]
    area, extent = polygon_summaries(values, poly_len)
    done = rows[~slow]
    to_slow = (kind == POLYGONS) | (kind == MALFORMED)
    to_slow[done] = False
    kind[to_slow] = MALFORMED  # decided on the slow path
    kind[done[np.bincount(poly_row, minlength=len(rows))[~slow] == 0]] = NONE  # "[]"
    ann = rows[poly_row]
    a_area, a_extent = _annotation_shapes(ann, area, extent, n)
    acc["kind"].append(kind)
    acc["area"].append(a_area)
    acc["extent"].append(a_extent)
    bad = _invalid_polygons(ann, poly_len, area)
    acc["bad"].append((bad[0] + first_row, *bad[1:]))
    if acc["poly"] is not None:
        acc["poly"].append((ann + first_row, poly_len, area, extent))
    again = np.flatnonzero(to_slow | (kind == RLE))  # read again, decoded, by summarise
    acc["slow"].extend((np.flatnonzero(to_slow) + first_row).tolist())
    acc["text"].update((first_row + row, all_rows[front + a:front + a + k])
                       for row, a, k in zip(again.tolist(), starts[again].tolist(), lens_all[again].tolist()))


def summarise(segs: list, polygons: bool = False, raw_rle: bool = False) -> dict:
    """Every annotation's segmentation, summarised. ``segs`` holds them in file order, as
    ``msgspec.Raw`` (the JSON text: an empty one when absent), as decoded values, or packed
    (:func:`pack_segmentations`: then each batch is dropped from the list once read).

    Returns a dict of plain values (it is what the loader's children send back): "kind",
    "area" and "extent" per annotation (see :class:`Segmentations`), "malformed" {row: problem},
    "rle_rows" and "rle" (their values; with ``raw_rle``, their JSON text as bytes), "bad"
    (annotation, index, length, area) of invalid polygons and, with ``polygons``, "poly"
    (annotation, length, area, extent) of every polygon, sorted by annotation.
    """
    acc: dict = {"kind": [], "area": [], "extent": [], "bad": [], "slow": [], "text": {},
                 "poly": [] if polygons else None}
    packed = bool(segs) and type(segs[0]) is tuple
    raw = packed or (len(segs) > 0 and set(map(type, segs)) == {msgspec.Raw})
    if raw:
        n = 0
        for i in range(len(segs) if packed else (len(segs) + _BATCH - 1) // _BATCH):
            if packed:
                (buf, lens), segs[i] = segs[i], None
            else:
                buf, lens = _pack(segs[i * _BATCH:(i + 1) * _BATCH])
            _fast_batch(buf, lens, n, acc)
            n += len(lens)
        segs = acc["text"]  # the rows read again: the slow path, RLE
        kind = np.concatenate(acc["kind"])
        area = np.concatenate(acc["area"])
        extent = np.concatenate(acc["extent"])
        slow = acc["slow"]
    else:  # the loader's tolerant path already decoded every value
        n = len(segs)
        kind = np.full(n, MALFORMED, np.int8)
        area = np.full(n, np.nan)
        extent = np.full((n, 4), np.nan)
        slow = list(range(n))
    malformed: dict = {}
    slow_polys: list = []
    slow_rows: list = []
    for row in slow:
        value = segs[row]
        in_range = True
        if raw:
            value, in_range = decode_raw(value)
        kind[row], problem, polys = classify(value)
        if not in_range:  # the loader's tolerant path reports these; a raw value is read here first
            kind[row], problem, polys = MALFORMED, "'segmentation' has a number out of range (read as infinity)", []
        if problem:
            malformed[row] = problem
        slow_polys.extend(polys)
        slow_rows.extend([row] * len(polys))
    if slow_polys:
        lengths = np.fromiter(map(len, slow_polys), np.int64, len(slow_polys))
        coords = np.fromiter(chain.from_iterable(slow_polys), np.float64, int(lengths.sum()))
        p_area, p_extent = polygon_summaries(coords, lengths)
        ann = np.array(slow_rows, np.int64)
        done = np.unique(ann)
        s_area, s_extent = _annotation_shapes(np.searchsorted(done, ann), p_area, p_extent, len(done))
        area[done], extent[done] = s_area, s_extent
        acc["bad"].append(_invalid_polygons(ann, lengths, p_area))
        if polygons:
            acc["poly"].append((ann, lengths, p_area, p_extent))
    bad = tuple(np.concatenate(p) for p in zip(*acc["bad"])) if acc["bad"] else _no_invalid_polygons()
    if slow_polys and len(bad[0]):  # fast rows come in file order; slow ones were appended
        order = np.lexsort((bad[1], bad[0]))
        bad = tuple(p[order] for p in bad)
    rle_rows = np.flatnonzero(kind == RLE)
    rle = [segs[r] for r in rle_rows.tolist()]  # bytes (from Raw) or values
    if raw and not raw_rle:
        rle = [decode_raw(v)[0] for v in rle]
    out = {"kind": kind, "area": area, "extent": extent, "malformed": malformed, "rle_rows": rle_rows,
           "rle": rle, "bad": bad}
    if polygons:
        parts = acc["poly"]
        if parts:
            ann, lengths, p_area, p_extent = (np.concatenate(p) for p in zip(*parts))
            if slow_polys:
                order = np.argsort(ann, kind="stable")
                ann, lengths, p_area, p_extent = ann[order], lengths[order], p_area[order], p_extent[order]
        else:
            ann, lengths, p_area, p_extent = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0),
                                              np.zeros((0, 4)))
        out["poly"] = (ann, lengths, p_area, p_extent)
    return out


def _no_invalid_polygons():
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)


class Segmentations:
    """Every annotation's segmentation, decoded and summarised.

    Per annotation: ``kind`` (NONE, POLYGONS, RLE or MALFORMED), ``area`` (summed shoelace
    area of its polygons that have points; nan without) and ``extent`` ([x, y, w, h] of those
    points; nan without). ``malformed``: annotation row -> what is wrong with its value.
    ``invalid_polygons``: (annotation, index in it, number of coordinates, area) of the
    polygons with an odd number of coordinates, fewer than 3 points or zero area, sorted.
    ``rle_rows``, ``rle_values``: the annotations whose segmentation is an object, and those
    objects. Per polygon (sorted by annotation; computed on first use, as no rule needs them):
    ``poly_ann``, ``poly_len`` (number of coordinates), ``poly_area``, ``poly_extent``
    ([min x, min y, max x, max y]; nan without points).
    """

    def __init__(self, kind, malformed, rle_rows, rle_values, area, extent, invalid_polygons, polygons=None):
        self.kind = kind
        self.malformed = malformed
        self.rle_rows = rle_rows
        self.rle_values = rle_values
        self.area = area
        self.extent = extent
        self.invalid_polygons = invalid_polygons
        self._polygons = polygons  # a tuple, or a function computing it

    def _per_polygon(self, i: int) -> np.ndarray:
        if callable(self._polygons):
            self._polygons = self._polygons()
        return self._polygons[i]

    poly_ann = property(lambda self: self._per_polygon(0))
    poly_len = property(lambda self: self._per_polygon(1))
    poly_area = property(lambda self: self._per_polygon(2))
    poly_extent = property(lambda self: self._per_polygon(3))


def _assemble(parts: list, n: int, polygons) -> Segmentations:
    """One Segmentations from the summaries of consecutive ranges of rows: (first row, summary)."""
    if len(parts) == 1 and parts[0][0] == 0:
        s = parts[0][1]
        kind, area, extent = s["kind"], s["area"], s["extent"]
    else:
        kind, area, extent = (np.concatenate([s[k] for _, s in parts]) for k in ("kind", "area", "extent"))
    if len(kind) != n:
        raise RuntimeError(f"the file changed while it was linted: {len(kind)} annotations, not {n}")
    malformed = {first + row: problem for first, s in parts for row, problem in s["malformed"].items()}
    rle_rows = np.concatenate([s["rle_rows"] + first for first, s in parts])
    rle_values = [decode_raw(v)[0] if isinstance(v, (bytes, msgspec.Raw)) else v
                  for _, s in parts for v in s["rle"]]
    bad = [(s["bad"][0] + first, *s["bad"][1:]) for first, s in parts]
    bad = tuple(np.concatenate(p) for p in zip(*bad))
    return Segmentations(kind, malformed, rle_rows, rle_values, area, extent, bad, polygons)


def _decode(ds) -> Segmentations:
    segs = ds.annotations.segmentation
    n = len(segs)

    def per_polygon():
        return summarise(list(segs), polygons=True)["poly"]

    take = getattr(segs, "take_summaries", None)
    parts = take() if take is not None else None  # worked out by the loader's children
    if parts is None:
        parts = [(0, summarise(list(segs)))]
    return _assemble(parts, n, per_polygon)


# -- RLE -----------------------------------------------------------------------------------------

# pycocotools keeps run lengths, and the running pixel count while decoding, in unsigned 32-bit
# ints: a longer run raises OverflowError in frPyObjects or silently wraps in the compressed
# reader, and a mask of more pixels gets a wrapped area and box. Such masks are LL108 findings.
RLE_MAX_RUN = 0xFFFFFFFF


_RLE_CHARS_AT_ONCE = 1 << 22  # characters decoded together: ~40 bytes of temporaries each


def compressed_rle_totals(strings: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Sum of the run lengths of each compressed RLE ``counts`` string, and whether it decodes;
    strings taken a few million characters at a time, so memory stays bounded whatever the file."""
    if not strings:
        return np.zeros(0, np.int64), np.ones(0, bool)
    unique = dict.fromkeys(strings)
    if len(unique) < len(strings):  # copies of one mask (a flood, or an export that repeats) decoded once
        keys = list(unique)
        totals, ok = compressed_rle_totals(keys)
        at = {k: i for i, k in enumerate(keys)}
        where = np.fromiter((at[s] for s in strings), np.int64, len(strings))
        return totals[where], ok[where]
    ends = np.cumsum(np.fromiter(map(len, strings), np.int64, len(strings)))
    totals, ok, first = [], [], 0
    while first < len(strings):
        # at least one string per batch, then as many as fit the budget
        last = max(first + 1, int(np.searchsorted(ends, ends[first] - len(strings[first]) + _RLE_CHARS_AT_ONCE,
                                                  "right")))
        t, k = _compressed_rle_totals(strings[first:last])
        totals.append(t)
        ok.append(k)
        first = last
    return np.concatenate(totals), np.concatenate(ok)


def _first_of_run(keys: np.ndarray) -> np.ndarray:
    """For each element of sorted ``keys``, the index of the first element equal to it (what
    ``np.searchsorted(keys, keys)`` gives, in linear time)."""
    if not len(keys):
        return np.zeros(0, np.int64)
    first = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    return np.repeat(first, np.diff(np.append(first, len(keys))))


def _compressed_rle_totals(strings: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Sum of the run lengths of each compressed RLE ``counts`` string, and whether it decodes.

    The format of pycocotools' ``rleFrString``: each count is a little-endian base-32 number,
    five bits per character (character - 48), 0x20 meaning "more characters follow", 0x10 in
    the last character meaning negative; from the third count on, each is stored as the
    difference to the count two places before it. Decoded for all strings at once.
    """
    n = len(strings)
    lens = np.fromiter(map(len, strings), np.int64, n)
    c = np.frombuffer(b"".join(strings), np.uint8).astype(np.int64) - 48
    if not len(c):
        return np.zeros(n, np.int64), np.ones(n, bool)
    owner = np.repeat(np.arange(n), lens)
    ok = np.ones(n, bool)
    ok[owner[(c < 0) | (c > 63)]] = False
    c &= 63
    ends = (c & 0x20) == 0
    last_char = (np.cumsum(lens) - 1)[lens > 0]
    ok[owner[last_char[~ends[last_char]]]] = False  # the string stops in the middle of a number
    ends[last_char] = True  # so that a broken string never runs into the next one
    value_end = np.flatnonzero(ends)
    value_start = np.concatenate([[0], value_end[:-1] + 1])
    width = value_end - value_start + 1
    ok[owner[value_end[width > 7]]] = False  # more than 35 bits: not a 32-bit run length
    char_in_value = np.arange(len(c)) - np.repeat(value_start, width)
    x = np.add.reduceat((c & 0x1F) << (5 * np.minimum(char_in_value, 11)), value_start)
    x = np.where((c[value_end] & 0x10) != 0, x - (1 << (5 * np.minimum(width, 11))), x)
    x_owner = owner[value_end]
    index = np.arange(len(x)) - _first_of_run(x_owner)  # position of the count in its string
    # counts[m] = x[m] + counts[m - 2] for m > 2: running sums over the odd and the even (>= 2) positions
    counts = x.copy()
    for parity in (1, 0):
        sel = np.flatnonzero((index % 2 == parity) & (index >= 2 - parity))
        run = np.cumsum(x[sel])
        group_first = _first_of_run(x_owner[sel])
        counts[sel] = run - np.where(group_first > 0, run[np.maximum(group_first - 1, 0)], 0)
    negative = np.bincount(x_owner, weights=counts < 0, minlength=n) > 0
    too_long = np.bincount(x_owner, weights=counts > RLE_MAX_RUN, minlength=n) > 0  # pycocotools would wrap it
    totals = np.bincount(x_owner, weights=counts, minlength=n).astype(np.int64)
    return totals, ok & ~negative & ~too_long


@dataclass
class RleSummary:
    """Per RLE annotation (rows of ``Segmentations.rle_rows``): problem, area and box."""

    rows: np.ndarray
    problem: list  # message or None
    area: np.ndarray  # nan where the RLE is invalid
    bbox: np.ndarray  # (r, 4) [x, y, w, h], nan where invalid


def _is_int(v) -> bool:
    return type(v) is int


def _uncompressed_total(counts: list) -> tuple[str | None, int]:
    """(problem or None, sum of the runs) of a list of run lengths: each an integer in [0, RLE_MAX_RUN]."""
    if not all(map(_is_int, counts)):  # before numpy sees it: a list of long strings pads them all
        return "RLE 'counts' must be a list of integers or a compressed string", 0
    arr = np.asarray(counts) if counts else np.zeros(0, np.int64)
    if arr.dtype.kind == "O":
        # integers beyond 64 bits (numpy keeps them as objects)
        if any(v < 0 for v in counts):
            return "RLE 'counts' holds a negative run length", 0
        return f"RLE 'counts' holds a run length above {RLE_MAX_RUN} pixels", 0
    if arr.dtype.kind not in "iu" or arr.ndim != 1:
        return "RLE 'counts' must be a list of integers or a compressed string", 0
    if not arr.size:
        return None, 0
    if arr.min() < 0:
        return "RLE 'counts' holds a negative run length", 0
    if arr.max() > RLE_MAX_RUN:
        return f"RLE 'counts' holds a run length above {RLE_MAX_RUN} pixels", 0
    return None, int(arr.sum(dtype=np.uint64))  # at most 2**32 each: the sum of 2**31 of them fits


def _check_rles(ds, seg: Segmentations) -> RleSummary:
    rows = seg.rle_rows
    problems: list = [None] * len(rows)
    totals: list = [0] * len(rows)
    compressed: list[tuple[int, bytes]] = []
    image_row = ds.ann_image_row[rows]
    for i, value in enumerate(seg.rle_values):
        size, counts = value.get("size"), value.get("counts")
        if size is None or counts is None:
            problems[i] = "RLE segmentation needs 'size' [height, width] and 'counts'"
        elif not (isinstance(size, list) and len(size) == 2 and all(_is_int(v) and v >= 0 for v in size)):
            problems[i] = "RLE 'size' must be [height, width], two non-negative integers"
        elif size[0] * size[1] == 0:
            problems[i] = f"RLE size [{size[0]}, {size[1]}] holds no pixels"
        elif size[0] * size[1] > RLE_MAX_RUN:
            problems[i] = (f"RLE size [{size[0]}, {size[1]}] has more pixels than pycocotools counts in 32 bits "
                           f"({RLE_MAX_RUN})")
        elif isinstance(counts, str):
            compressed.append((i, counts.encode("utf-8", "replace")))
        elif isinstance(counts, list):
            problems[i], totals[i] = _uncompressed_total(counts)
        else:
            problems[i] = f"RLE 'counts' must be a list of integers or a string, got {_describe(counts)}"
    if compressed:
        sums, ok = compressed_rle_totals([s for _, s in compressed])
        for (i, _), total, good in zip(compressed, sums.tolist(), ok.tolist()):
            if good:
                totals[i] = total
            else:
                problems[i] = ("RLE 'counts' string is not valid compressed RLE (a cut or negative run, or a run "
                               f"above {RLE_MAX_RUN} pixels)")
    for i, value in enumerate(seg.rle_values):
        if problems[i] is not None:
            continue
        h, w = value["size"]
        img = image_row[i]
        if img >= 0:
            ih, iw = ds.images.height[img], ds.images.width[img]
            if ih > 0 and iw > 0 and (h, w) != (ih, iw):
                problems[i] = f"RLE size [{h}, {w}] differs from its image's [height, width] [{ih:g}, {iw:g}]"
                continue
        if totals[i] != h * w:
            problems[i] = f"RLE counts sum to {totals[i]} pixels, but size [{h}, {w}] has {h * w}"
    area = np.full(len(rows), np.nan)
    bbox = np.full((len(rows), 4), np.nan)
    valid = [i for i, p in enumerate(problems) if p is None]
    if valid:
        from pycocotools import mask as mask_utils  # imported only for files with RLE masks

        uncompressed = [i for i in valid if isinstance(seg.rle_values[i]["counts"], list)]
        compressed_ok = [i for i in valid if isinstance(seg.rle_values[i]["counts"], str)]
        for group, rles in (
            (uncompressed, mask_utils.frPyObjects([seg.rle_values[i] for i in uncompressed], 0, 0)
             if uncompressed else []),
            (compressed_ok, [{"size": seg.rle_values[i]["size"], "counts": seg.rle_values[i]["counts"].encode()}
                             for i in compressed_ok]),
        ):
            if group:
                # pycocotools' area() makes a uint8 array of len(rles) on the way (numpy 2 raises
                # OverflowError from 256 on): 255 at a time
                area[group] = np.concatenate([mask_utils.area(rles[k:k + 255]) for k in range(0, len(rles), 255)])
                bbox[group] = mask_utils.toBbox(rles)
    return RleSummary(rows, problems, area, bbox)


# -- per-Dataset cache ---------------------------------------------------------------------------

def _cached(ds, key: str, compute):
    return ds.shared(f"geometry.{key}", compute)


def same_image_overlaps(ds, min_iou: float) -> Pairs:
    """Pairs of annotations on one image whose boxes overlap with IoU >= ``min_iou`` (crowd regions
    and annotations of unknown images left out), as (first, second, iou) row arrays; ``capped``
    lists the image rows whose search stopped at the ``max_overlap_pairs_per_box`` limit.

    Shared by the duplicate and conflicting-label rules: the pairs found for the lowest
    threshold asked so far are kept, and a higher threshold only filters them.
    """
    memo = _cached(ds, "overlaps", dict)
    per_box = limits.get("max_overlap_pairs_per_box")
    found = memo.get("pairs")
    if found is None or found[0] > min_iou or found[1] != per_box:
        ann = ds.annotations
        rows = np.flatnonzero((ann.iscrowd != 1) & (ds.ann_image_row >= 0))
        found = memo["pairs"] = (min_iou, per_box, overlapping_pairs(ds.ann_image_row, box_columns(ds).T, min_iou,
                                                                     rows, pairs_per_box=per_box))
    first, second, iou = found[2]
    keep = iou >= min_iou
    return Pairs(first[keep], second[keep], iou[keep], found[2].capped)


def segmentations(ds) -> Segmentations:
    """The decoded segmentations of ``ds`` (computed once, shared by all rules)."""
    return _cached(ds, "segmentations", lambda: _decode(ds))


def rles(ds) -> RleSummary:
    """The RLE segmentations of ``ds``, checked, with pycocotools' area and box for valid ones."""
    return _cached(ds, "rles", lambda: _check_rles(ds, segmentations(ds)))


def segmentation_shapes(ds) -> tuple[np.ndarray, np.ndarray]:
    """Per annotation: segmentation area and extent [x, y, w, h]; nan where there is none usable.

    Polygon areas are summed (COCO's own area is the area of the rasterised union, which is
    the same unless polygons of one object overlap); an RLE's are pycocotools' area and box.
    """
    def compute():
        seg = segmentations(ds)
        summary = rles(ds)
        if not len(summary.rows):
            return seg.area, seg.extent
        area, extent = seg.area.copy(), seg.extent.copy()
        area[summary.rows] = summary.area
        extent[summary.rows] = summary.bbox
        return area, extent
    return _cached(ds, "shapes", compute)


def invalid_polygons(ds) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(annotation row, index of the polygon in it, number of coordinates, area) of every polygon
    with an odd number of coordinates, fewer than 3 points or zero area, in file order."""
    return segmentations(ds).invalid_polygons
