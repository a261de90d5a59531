"""labellint.geometry's segmentation summary: the fast paths give what the slow, exact ones give.

The summary is what the geometry rules (LL106-LL112) read, and what the loader's children work
out while a large file is decoded; see also tests/test_loader.py (split against serial) and
tests/test_rule_geometry.py (the rules).
"""

from __future__ import annotations

import json
import math
import random

import msgspec
import numpy as np
import pytest

from labellint import geometry


# -- numbers ---------------------------------------------------------------------------------------
def random_tokens(rng: random.Random, n: int, signed: bool) -> list[str]:
    out = []
    for _ in range(n):
        k = rng.random()
        if k < 0.3:
            t = repr(round(rng.uniform(-5000, 5000), rng.randint(0, 4)))
        elif k < 0.5:
            t = f"{rng.uniform(0, 4000):.{rng.randint(1, 16)}f}"
        elif k < 0.6:
            t = str(rng.randint(0, 10 ** rng.randint(1, 12)))
        elif k < 0.7:
            t = repr(rng.uniform(0, 1000))  # up to 17 significant digits
        elif k < 0.8:
            t = "-" + f"{rng.uniform(0, 99999999):.{rng.randint(0, 17)}f}"
        elif k < 0.9:
            t = f"{rng.randint(0, 99999999)}.{rng.randint(0, 10 ** rng.randint(1, 17))}"
        else:
            t = rng.choice(["0", "-0", "0.0", "-0.0", "1", "12345678", "123456789", "1234567.8", "12345678.9",
                            "-1", "-12345678", "-1234567.8"])
        out.append(t if signed else t.lstrip("-"))
    return out


@pytest.mark.parametrize("signed", [True, False])
def test_numbers_read_from_their_end_are_parse_decimals_bit_for_bit(signed):
    rng = random.Random(3 + signed)
    tokens = random_tokens(rng, 20000, signed)
    buf = geometry._FRONT + ",".join(tokens).encode() + geometry._PAD
    lengths = np.array([len(t) for t in tokens])
    ends = np.cumsum(lengths + 1) - 1 + len(geometry._FRONT)
    expected, expected_ok = geometry.parse_decimals(buf, ends - lengths, lengths)
    values, ok = geometry.parse_decimal_ends(buf, ends, lengths, signed)
    assert ok.tolist() == expected_ok.tolist()
    assert values[ok].tobytes() == expected[ok].tobytes()  # -0.0 included
    short = np.array([len(t.lstrip("-")) <= 8 for t in tokens])
    assert ok[short].all()
    np.testing.assert_array_equal(values[short], [float(t) for t, s in zip(tokens, short) if s])  # correctly rounded


# -- segmentations ---------------------------------------------------------------------------------
ODD = [
    [[0, 0, 10, 0, 10, 10, 0, 10]], [], None, [[1, 2, 3]], [[1.5e1, 2, 3, 4, 5, 6]], [1, 2, 3, 4, 5, 6],
    [[[1, 2, 3, 4, 5, 6]]], "polygon", 5, True, {"size": [48, 64], "counts": [3072]},
    [[0, 0, 4, 0, 4, 4], [9, 9, 20, 9, 20, 20]], [[]], [[-1.25, -2.5, 100, 0, 50, 50]], [["1", 2, 3, 4, 5, 6]],
    [[123456789, 0, 1, 1, 0, 1]], [[0.1234567890123456789, 1, 2, 3, 4, 5]], [[True, 1, 2, 3, 4, 5]],
    [[1, 2], [3, 4, 5, 6, 7, 8]], [[1e-3, 0, 5, 0, 5, 5]], [[0, 0, 10, 0, 10, 10], 3], [[1, 1, 5, 5, 9, 9]],
    [[], [0, 0, 3, 0, 3, 3]], [[0, 0, 3, 0, 3, 3], [0, 0, 3]], [[0.30000000000000004, 1, 2, 3, 4, 5]],
    {"size": [2, 2], "counts": "abc"}, [[None, 1, 2, 3, 4, 5]], [[{"x": 1}, 1, 2, 3, 4, 5]],
]


def random_segmentation(rng: random.Random):
    k = rng.random()
    if k < 0.08:
        return rng.choice(ODD)
    polygons = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        points = rng.randint(1, 9)
        poly = [round(rng.uniform(-20, 700), rng.choice([0, 1, 2, 2, 3])) for _ in range(2 * points)]
        if rng.random() < 0.05:
            poly = poly[:-1]  # odd
        if rng.random() < 0.03:
            poly = [rng.uniform(0, 100) for _ in range(2 * points)]  # 17 significant digits
        polygons.append([int(v) if float(v).is_integer() and rng.random() < 0.3 else v for v in poly])
    return polygons


def raws_of(segmentations: list, indent=None) -> list:
    """The segmentations as the loader's typed decode gives them: Raw JSON text (empty when absent)."""
    text = json.dumps([{"s": s} if s is not None or i % 2 else {} for i, s in enumerate(segmentations)], indent=indent)

    class Item(msgspec.Struct):
        s: msgspec.Raw = msgspec.Raw()

    return [item.s for item in msgspec.json.decode(text, type=list[Item])]


def reference(segmentations: list, raws: list) -> dict:
    """Per annotation, straight from the decoded values: kind, problem, summed area, extent, and
    (index, length, area) of the polygons LL106 reports."""
    out = []
    for value, raw in zip(segmentations, raws):
        if not len(raw):
            value = None
        kind, problem, polygons = geometry.classify(value)
        area, xs, ys, bad = 0.0, [], [], []
        for k, poly in enumerate(polygons):
            pts = [(float(poly[i]), float(poly[i + 1])) for i in range(0, len(poly) - 1, 2)]
            a = 0.5 * abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1]))) if pts else math.nan
            if pts:
                area += a
                xs += [p[0] for p in pts]
                ys += [p[1] for p in pts]
            if len(poly) % 2 or len(poly) // 2 < 3 or a <= 1e-9:
                bad.append((k, len(poly), a))
        if kind == geometry.POLYGONS and not polygons:
            kind = geometry.NONE
        extent = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)] if xs else [math.nan] * 4
        out.append((kind, problem, area if xs else math.nan, extent, bad))
    return out


def check_against_reference(summary: dict, ref: list):
    assert summary["kind"].tolist() == [r[0] for r in ref]
    assert summary["malformed"] == {i: r[1] for i, r in enumerate(ref) if r[1]}
    np.testing.assert_allclose(summary["area"], [r[2] for r in ref], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(summary["extent"], [r[3] for r in ref], rtol=1e-12)
    bad = [(i, k, n) for i, r in enumerate(ref) for k, n, _ in r[4]]
    ann, index, length, area = summary["bad"]
    assert list(zip(ann.tolist(), index.tolist(), length.tolist())) == bad
    assert summary["rle_rows"].tolist() == [i for i, r in enumerate(ref) if r[0] == geometry.RLE]


def same(a: dict, b: dict, exact: bool = True):
    """Equal summaries; bit for bit unless ``exact`` is False (numbers of more than eight
    characters read from the text can differ from msgspec's in the last bit)."""
    for key in ("kind", "area", "extent", "rle_rows"):
        assert a[key].dtype == b[key].dtype, key
        if exact or key in ("kind", "rle_rows"):
            assert a[key].tobytes() == b[key].tobytes(), key
        else:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-12, err_msg=key)
    assert a["malformed"] == b["malformed"] and a["rle"] == b["rle"]
    for x, y in zip(a["bad"], b["bad"]):
        assert x.tobytes() == y.tobytes() if exact or x.dtype.kind == "i" else np.allclose(x, y, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("batch", [1, 3, 64, 4096])
@pytest.mark.parametrize("indent", [None, 2])
def test_summary_matches_a_reference_in_every_form_of_input(monkeypatch, batch, indent):
    monkeypatch.setattr(geometry, "_BATCH", batch)
    rng = random.Random(batch)
    segmentations = [random_segmentation(rng) for _ in range(700)]
    raws = raws_of(segmentations, indent)
    ref = reference(segmentations, raws)
    from_raw = geometry.summarise(list(raws))
    check_against_reference(from_raw, ref)
    values = [msgspec.json.decode(r) if len(r) else None for r in raws]  # as the tolerant loader gives them
    same(from_raw, geometry.summarise(values), exact=False)

    class Holder:
        def __init__(self, s):
            self.segmentation = s

    holders = [Holder(r) for r in raws]
    packed = geometry.pack_segmentations(holders)
    assert holders == [None] * len(raws)  # freed as they were packed
    as_text = geometry.summarise(packed, raw_rle=True)
    assert packed == [None] * len(packed)  # read once
    assert all(isinstance(v, bytes) for v in as_text["rle"])
    as_text["rle"] = [msgspec.json.decode(v) for v in as_text["rle"]]
    same(from_raw, as_text)


def test_per_polygon_arrays_agree_with_the_per_annotation_summary():
    rng = random.Random(8)
    segmentations = [random_segmentation(rng) for _ in range(500)]
    raws = raws_of(segmentations)
    s = geometry.summarise(list(raws), polygons=True)
    ann, length, area, extent = s["poly"]
    assert (np.diff(ann) >= 0).all()
    shapes = geometry._annotation_shapes(ann, area, extent, len(raws))
    assert shapes[0].tobytes() == s["area"].tobytes() and shapes[1].tobytes() == s["extent"].tobytes()
    flagged = geometry._invalid_polygons(ann, length, area)
    assert all(x.tobytes() == y.tobytes() for x, y in zip(flagged, s["bad"]))


def test_one_polygon_each_needs_no_sums():
    ann = np.array([0, 2, 3])
    area = np.array([4.0, np.nan, 2.5])
    extent = np.array([[0, 0, 2, 2], [np.nan] * 4, [1, 1, 3, 4]], float)
    a, e = geometry._annotation_shapes(ann, area, extent, 5)
    np.testing.assert_array_equal(a, [4, np.nan, np.nan, 2.5, np.nan])
    np.testing.assert_array_equal(e[[0, 3]], [[0, 0, 2, 2], [1, 1, 2, 3]])
    assert np.isnan(e[[1, 2, 4]]).all()
