"""RLE segmentations: compressed counts decoded in bulk, each mask checked against its image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labellint.geometry.polygons import _describe
from labellint.geometry.segmentation import Segmentations

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
