"""Every annotation's segmentation summarised, from the raw JSON text when it can be.

Reading polygons fast: msgspec would turn the 20 million coordinates of a train2017-sized file
into Python floats. Instead the raw JSON bytes are read with numpy: the structural bytes
``,[]`` give rows, polygons and numbers, and the numbers are parsed eight digits at a time
(labellint.geometry.decimals), in batches small enough to stay in the CPU cache. Anything
unusual (an exponent, a string, deeper nesting, a flat list) sends that one annotation to the
slow path, which decodes it with msgspec and says what is wrong with it (polygons.classify).
"""

from __future__ import annotations

import operator
from itertools import chain

import msgspec
import numpy as np

from labellint.geometry.decimals import _FRONT, _PAD, parse_decimal_ends
from labellint.geometry.polygons import (
    MALFORMED,
    NONE,
    POLYGONS,
    RLE,
    _annotation_shapes,
    _invalid_polygons,
    _no_invalid_polygons,
    classify,
    decode_raw,
    polygon_summaries,
)

_BATCH = 4096  # annotations per batch: the byte arrays stay in cache and their memory is reused
_OPEN, _CLOSE = ord("["), ord("]")


def _unusual_bytes(b: np.ndarray) -> np.ndarray:
    """Positions of bytes a list of polygons of plain decimals never holds: letters (exponents,
    literals), quotes, braces, colons. Whitespace, commas, brackets and number bytes are usual."""
    high = b > ord("9")
    quote = b == ord('"')
    brackets = (b == ord("[")) | (b == ord("]"))
    if np.count_nonzero(high) == np.count_nonzero(brackets) and not quote.any():
        return np.zeros(0, np.int64)
    return np.flatnonzero(high & ~brackets | quote)


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
