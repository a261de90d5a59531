"""Vectorised geometry that several rules share: box overlaps, polygon and RLE summaries.

Everything works on whole numpy columns. Segmentations are decoded once per Dataset and cached,
because four rules read them and decoding is the expensive part of linting a big file.

Decoding polygons fast: msgspec would turn the 20 million coordinates of a train2017-sized file
into Python floats (seconds). Instead the raw JSON bytes are tokenised with numpy and the plain
decimals COCO writers emit (``-12.5``, ``239.97000000000003``) are parsed eight digits at a time
(SWAR arithmetic on uint64 words), in batches small enough to stay in the CPU cache. Anything
unusual (an exponent, a string, deeper nesting, a flat list) sends that one annotation to the
slow path, which decodes it with msgspec and says what is wrong with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import msgspec
import numpy as np

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


def overlapping_pairs(group: np.ndarray, boxes: np.ndarray, min_iou: float, rows: np.ndarray | None = None):
    """Pairs of rows in the same group (say, image) whose boxes overlap with IoU >= ``min_iou``.

    ``group`` holds non-negative ints (image rows). Only ``rows`` (default: all) with finite boxes
    of positive size take part. Returns (first, second, iou) arrays, each pair once; ``first``
    is the row whose box starts further left.

    Sort-and-sweep: rows sorted by (group, x) and each row compared with the rows after it while
    they can still reach ``min_iou``. A box j starting at x_j >= x_i reaches IoU t with box i only
    if x_j <= x_i + (1 - t) * w_i (the intersection is at least t * w_i wide), so for the high
    thresholds duplicate rules use, each row meets a handful of candidates: the work grows with
    rows plus candidates, never with rows squared.
    """
    if not 0 < min_iou <= 1:
        raise ValueError(f"min_iou must be in (0, 1], got {min_iou}")
    x, y, w, h = boxes.T
    if rows is None:
        rows = np.arange(len(group))
    b = boxes[rows]
    with np.errstate(invalid="ignore"):
        rows = rows[np.isfinite(b).all(axis=1) & (b[:, 2] > 0) & (b[:, 3] > 0)]
    rows = rows[sort_by_group(group[rows], x[rows])]
    g, x0, y0, bw, bh = group[rows], x[rows], y[rows], w[rows], h[rows]
    x1, y1, area = x0 + bw, y0 + bh, bw * bh
    reach = x0 + (1.0 - min_iou) * bw
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    left = np.arange(len(rows) - 1)
    step = 1
    while left.size:
        right = left + step
        inside = right < len(rows)
        left, right = left[inside], right[inside]
        # x is sorted within a group: once a row is out of reach, so are all rows after it
        near = (g[right] == g[left]) & (x0[right] <= reach[left])
        left, right = left[near], right[near]
        iw = np.minimum(x1[left], x1[right]) - x0[right]
        ih = np.minimum(y1[left], y1[right]) - np.maximum(y0[left], y0[right])
        inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
        iou = inter / (area[left] + area[right] - inter)
        hit = iou >= min_iou
        found.append((rows[left[hit]], rows[right[hit]], iou[hit]))
        step += 1
    if not found:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0)
    first, second, iou = (np.concatenate(parts) for parts in zip(*found))
    return first, second, iou


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
        x, y = coords[0::2], coords[1::2]
    else:  # an odd polygon shifts the x/y parity of every polygon after it: gather by index
        coord_start = np.cumsum(lengths) - lengths
        point_start = np.cumsum(points) - points
        idx = np.repeat(coord_start - 2 * point_start, points) + 2 * np.arange(points.sum())
        x, y = coords[idx], coords[idx + 1]
    first = (np.cumsum(points) - points)[has_points]
    last = first + points[has_points] - 1
    following = np.arange(1, len(x) + 1)
    following[last] = first  # the edge from the last point closes the ring
    with np.errstate(invalid="ignore", over="ignore"):  # Infinity in a point (LL002's) gives nan
        cross = x * y[following] - x[following] * y
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
_POW10 = 10.0 ** np.arange(17)
_PAD = b" " * 32  # lets every token read whole 8-byte words past its end


def _word_reader(buf):
    """A function giving the little-endian uint64 that starts at each of some byte offsets of ``buf``.

    Read as two aligned words spliced together: numpy gathers from an aligned uint64 array
    several times faster than from an unaligned view with a one-byte stride.
    """
    aligned = np.frombuffer(buf, "<u8", count=len(buf) // 8)
    if not aligned.flags.aligned:
        aligned = aligned.copy()

    def words_at(pos: np.ndarray) -> np.ndarray:
        shift = ((pos & 7) * 8).astype(np.uint64)
        low, high = aligned.take(pos >> 3), aligned.take((pos >> 3) + 1)
        return (low >> shift) | ((high << _U64(1)) << (_U64(63) - shift))  # two shifts: no shift by 64

    return words_at


def _eight_digits(w: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Value of the first ``n`` (0 to 8) ASCII digits held in each word (first digit lowest)."""
    v = (w << ((64 - 8 * n).astype(np.uint64) & _U64(63))) & _TOP_DIGITS[n]  # right-align, zero-pad
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
    negative = np.frombuffer(buf, np.uint8).take(starts) == ord("-")
    signed = negative.any()  # coordinates rarely are: skip the sign work when none is
    s = starts + negative if signed else starts
    n = lengths - negative if signed else lengths
    w = word_at(s)
    in_word = _LOW_BYTES[np.minimum(n, 8)]
    dot_bit = ~w & _DIGIT_BITS & in_word  # bit 4 of a '.' among the first eight bytes
    has_dot = dot_bit != 0
    dot_unit = dot_bit >> _U64(4)  # 2 ** (8 * position of the '.')
    dot = ((dot_unit * _BYTE_INDEX) >> _U64(56)).astype(np.int64)
    n_frac = np.where(has_dot, n - dot - 1, 0)
    # drop the '.': the bytes after it move down one place, then all digits parse as one integer
    before_dot = np.where(has_dot, dot_unit - _U64(1), in_word)
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


# -- segmentations -------------------------------------------------------------------------------

NONE, POLYGONS, RLE, MALFORMED = 0, 1, 2, 3

_BATCH = 4096  # annotations per batch: the byte arrays stay in cache and their memory is reused


def _number_bytes(b: np.ndarray) -> np.ndarray:
    """Where ``b`` holds '-', '.' or a digit (byte arithmetic: a lookup table is slower)."""
    return (np.subtract(b, 45, dtype=np.uint8) <= 12) & (b != ord("/"))


def _unusual_bytes(b: np.ndarray) -> np.ndarray:
    """Positions of bytes a list of polygons of plain decimals never holds: letters (exponents,
    literals), quotes, braces, colons. Whitespace, commas, brackets and number bytes are usual."""
    high = b > ord("9")
    quote = b == ord('"')
    brackets = (b == ord("[")) | (b == ord("]"))
    if np.count_nonzero(high) == np.count_nonzero(brackets) and not quote.any():
        return np.zeros(0, np.int64)
    return np.flatnonzero(high & ~brackets | quote)


@dataclass
class Segmentations:
    """Every annotation's segmentation, decoded and summarised. Polygons are sorted by annotation."""

    kind: np.ndarray  # per annotation: NONE, POLYGONS, RLE or MALFORMED
    malformed: dict  # annotation row -> what is wrong with its segmentation value
    poly_ann: np.ndarray  # per polygon: its annotation row
    poly_len: np.ndarray  # per polygon: number of coordinates (x and y each count)
    poly_area: np.ndarray  # per polygon: shoelace area (nan without points)
    poly_extent: np.ndarray  # per polygon: [min x, min y, max x, max y] (nan without points)
    rle_rows: np.ndarray  # annotation rows whose segmentation is an object
    rle_values: list  # their decoded values, in the same order


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


def _fast_batch(raws: list, first_row: int, out: dict) -> None:
    """Decode one batch of raw JSON segmentations; rows it cannot take go to out["slow"]."""
    lens = np.fromiter(map(len, raws), np.int64, len(raws))
    starts = np.cumsum(lens) - lens
    ends = starts + lens
    buf = b"".join(raws) + _PAD
    b = np.frombuffer(buf, np.uint8)
    first_byte = np.where(lens > 0, b[np.minimum(starts, len(b) - 1)], 0)
    kind = np.full(len(raws), MALFORMED, np.int8)
    kind[(lens == 0) | (first_byte == ord("n"))] = NONE  # absent or null
    kind[first_byte == ord("[")] = POLYGONS
    kind[first_byte == ord("{")] = RLE
    slow = kind == MALFORMED
    slow[np.searchsorted(starts, _unusual_bytes(b), "right") - 1] = True
    slow &= (kind == POLYGONS) | (kind == MALFORMED)
    while True:  # blank what the fast path cannot take; the structure may show more such rows
        keep = (kind == POLYGONS) & ~slow
        if not keep.all():
            b = np.where(np.repeat(np.append(keep, True), np.append(lens, len(_PAD))), b, np.uint8(32))
            buf = b.tobytes()
        brackets = np.flatnonzero((b == ord("[")) | (b == ord("]")))
        opening = b[brackets] == ord("[")
        depth = np.cumsum(np.where(opening, 1, -1))
        poly_open = brackets[opening & (depth == 2)]
        poly_close = brackets[~opening & (depth == 1)]
        number = _number_bytes(b)
        edges = np.flatnonzero(number[1:] != number[:-1])
        tok_start, tok_end = edges[0::2] + 1, edges[1::2] + 1
        poly_row = np.searchsorted(starts, poly_open, "right") - 1
        poly_tokens = np.searchsorted(tok_start, poly_close) - np.searchsorted(tok_start, poly_open)
        row_tokens = np.searchsorted(tok_start, ends) - np.searchsorted(tok_start, starts)
        in_polygons = np.bincount(poly_row, weights=poly_tokens, minlength=len(raws))
        odd = keep & (row_tokens != in_polygons)  # numbers outside a polygon: a flat list
        odd[np.searchsorted(starts, brackets[depth > 2], "right") - 1] = True  # nested too deep
        if not odd.any():
            break
        slow |= odd
    values, ok = parse_decimals(buf, tok_start, tok_end - tok_start)
    slow[np.searchsorted(starts, tok_start[~ok], "right") - 1] = True
    area, extent = polygon_summaries(values, poly_tokens)
    fast = ~slow[poly_row]
    kind[slow] = MALFORMED  # decided on the slow path
    kind[(kind == POLYGONS) & (np.bincount(poly_row, minlength=len(raws)) == 0)] = NONE  # "[ ]"
    out["kind"].append(kind)
    out["poly"].append((poly_row[fast] + first_row, poly_tokens[fast], area[fast], extent[fast]))
    out["slow"].extend((np.flatnonzero(slow) + first_row).tolist())


def _decode(ds) -> Segmentations:
    segs = ds.annotations.segmentation
    n = len(segs)
    out: dict = {"kind": [], "poly": [], "slow": []}
    if set(map(type, segs)) == {msgspec.Raw}:
        for i in range(0, n, _BATCH):
            _fast_batch(segs[i:i + _BATCH], i, out)
        kind = np.concatenate(out["kind"])
        slow = out["slow"]
    else:  # the loader's tolerant path already decoded every value
        kind = np.full(n, MALFORMED, np.int8)
        slow = list(range(n))
    malformed: dict = {}
    slow_polys: list = []
    slow_rows: list = []
    for row in slow:
        value = segs[row]
        if isinstance(value, msgspec.Raw):
            value = msgspec.json.decode(value)
        kind[row], problem, polys = classify(value)
        if problem:
            malformed[row] = problem
        slow_polys.extend(polys)
        slow_rows.extend([row] * len(polys))
    if slow_polys:
        lengths = np.fromiter(map(len, slow_polys), np.int64, len(slow_polys))
        coords = np.fromiter(chain.from_iterable(slow_polys), np.float64, int(lengths.sum()))
        area, extent = polygon_summaries(coords, lengths)
        out["poly"].append((np.array(slow_rows, np.int64), lengths, area, extent))
    if out["poly"]:
        ann, lengths, area, extent = (np.concatenate(p) for p in zip(*out["poly"]))
        if slow_polys:  # the fast path keeps file order; polygons from the slow path are appended
            order = np.argsort(ann, kind="stable")
            ann, lengths, area, extent = ann[order], lengths[order], area[order], extent[order]
    else:
        ann, lengths, area, extent = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0),
                                      np.zeros((0, 4)))
    rle_rows = np.flatnonzero(kind == RLE)
    rle_values = [msgspec.json.decode(segs[r]) if isinstance(segs[r], msgspec.Raw) else segs[r]
                  for r in rle_rows.tolist()]
    return Segmentations(kind, malformed, ann, lengths, area, extent, rle_rows, rle_values)


# -- RLE -----------------------------------------------------------------------------------------


def compressed_rle_totals(strings: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
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
    index = np.arange(len(x)) - np.searchsorted(x_owner, x_owner)  # position of the count in its string
    # counts[m] = x[m] + counts[m - 2] for m > 2: running sums over the odd and the even (>= 2) positions
    counts = x.copy()
    for parity in (1, 0):
        sel = np.flatnonzero((index % 2 == parity) & (index >= 2 - parity))
        run = np.cumsum(x[sel])
        group_first = np.searchsorted(x_owner[sel], x_owner[sel])
        counts[sel] = run - np.where(group_first > 0, run[np.maximum(group_first - 1, 0)], 0)
    negative = np.bincount(x_owner, weights=counts < 0, minlength=n) > 0
    totals = np.bincount(x_owner, weights=counts, minlength=n).astype(np.int64)
    return totals, ok & ~negative


@dataclass
class RleSummary:
    """Per RLE annotation (rows of ``Segmentations.rle_rows``): problem, area and box."""

    rows: np.ndarray
    problem: list  # message or None
    area: np.ndarray  # nan where the RLE is invalid
    bbox: np.ndarray  # (r, 4) [x, y, w, h], nan where invalid


def _is_int(v) -> bool:
    return type(v) is int


def _check_rles(ds, seg: Segmentations) -> RleSummary:
    from pycocotools import mask as mask_utils

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
        elif isinstance(counts, str):
            compressed.append((i, counts.encode("utf-8", "replace")))
        elif isinstance(counts, list):
            arr = np.asarray(counts) if counts else np.zeros(0, np.int64)
            if arr.dtype.kind not in "iu" or arr.ndim != 1:
                problems[i] = "RLE 'counts' must be a list of integers or a compressed string"
            elif (arr < 0).any():
                problems[i] = "RLE 'counts' holds a negative run length"
            else:
                totals[i] = int(arr.sum())
        else:
            problems[i] = f"RLE 'counts' must be a list of integers or a string, got {_describe(counts)}"
    if compressed:
        sums, ok = compressed_rle_totals([s for _, s in compressed])
        for (i, _), total, good in zip(compressed, sums.tolist(), ok.tolist()):
            if good:
                totals[i] = total
            else:
                problems[i] = "RLE 'counts' string is not valid compressed RLE"
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
        uncompressed = [i for i in valid if isinstance(seg.rle_values[i]["counts"], list)]
        compressed_ok = [i for i in valid if isinstance(seg.rle_values[i]["counts"], str)]
        for group, rles in (
            (uncompressed, mask_utils.frPyObjects([seg.rle_values[i] for i in uncompressed], 0, 0)
             if uncompressed else []),
            (compressed_ok, [{"size": seg.rle_values[i]["size"], "counts": seg.rle_values[i]["counts"].encode()}
                             for i in compressed_ok]),
        ):
            if group:
                area[group] = mask_utils.area(rles)
                bbox[group] = mask_utils.toBbox(rles)
    return RleSummary(rows, problems, area, bbox)


# -- per-Dataset cache ---------------------------------------------------------------------------

def _cached(ds, key: str, compute):
    return ds.shared(f"geometry.{key}", compute)


def same_image_overlaps(ds, min_iou: float):
    """Pairs of annotations on one image whose boxes overlap with IoU >= ``min_iou`` (crowd regions
    and annotations of unknown images left out), as (first, second, iou) row arrays.

    Shared by the duplicate and conflicting-label rules: the pairs found for the lowest
    threshold asked so far are kept, and a higher threshold only filters them.
    """
    memo = _cached(ds, "overlaps", dict)
    found = memo.get("pairs")
    if found is None or found[0] > min_iou:
        ann = ds.annotations
        rows = np.flatnonzero((ann.iscrowd != 1) & (ds.ann_image_row >= 0))
        found = memo["pairs"] = (min_iou, overlapping_pairs(ds.ann_image_row, ann.bbox, min_iou, rows))
    first, second, iou = found[1]
    keep = iou >= min_iou
    return first[keep], second[keep], iou[keep]


def segmentations(ds) -> Segmentations:
    """The decoded segmentations of ``ds`` (computed once, shared by all rules)."""
    return _cached(ds, "segmentations", lambda: _decode(ds))


def rles(ds) -> RleSummary:
    """The RLE segmentations of ``ds``, checked, with pycocotools' area and box for valid ones."""
    return _cached(ds, "rles", lambda: _check_rles(ds, segmentations(ds)))


def segmentation_shapes(ds) -> tuple[np.ndarray, np.ndarray]:
    """Per annotation: segmentation area and extent [x, y, w, h]; nan where there is none usable.

    Polygon areas are summed (COCO's own area is the area of the rasterised union, which is
    the same unless polygons of one object overlap).
    """
    def compute():
        seg = segmentations(ds)
        n = len(seg.kind)
        area = np.full(n, np.nan)
        extent = np.full((n, 4), np.nan)
        usable = np.isfinite(seg.poly_area)
        ann = seg.poly_ann[usable]
        if ann.size:
            first = np.flatnonzero(np.concatenate([[True], ann[1:] != ann[:-1]]))
            rows = ann[first]
            area[rows] = np.add.reduceat(seg.poly_area[usable], first)
            ext = seg.poly_extent[usable]
            lo = np.minimum.reduceat(ext[:, :2], first)
            hi = np.maximum.reduceat(ext[:, 2:], first)
            extent[rows] = np.concatenate([lo, hi - lo], axis=1)
        summary = rles(ds)
        area[summary.rows] = summary.area
        extent[summary.rows] = summary.bbox
        return area, extent
    return _cached(ds, "shapes", compute)
