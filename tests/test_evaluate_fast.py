"""The fast road of `labellint evaluate`: same numbers and same errors as the general one.

* predictions of boxes only are decoded with a Struct that has no optional field, and large files
  in two processes (the array cut at a detection boundary, a forked child decoding the first part);
  anything that road does not take goes to the general decode, which names what is wrong;
* `python -m labellint evaluate` runs the command without importing the whole command line.

SPLIT_MIN_BYTES is lowered here so that small files take the two-process road too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from labellint.errors import InputError
from labellint.gate import evaluate as ev
from labellint.gate import predictions as pm

needs_fork = pytest.mark.skipif(not pm._can_fork(), reason="the split decode needs fork and a second core")


def _gt_doc(n_images=20, n_classes=3):
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 640, "height": 480} for i in range(1, n_images + 1)]
    anns = [{"id": k + 1, "image_id": k % n_images + 1, "category_id": k % n_classes + 1,
             "bbox": [10 + k % 50, 20, 100, 80], "area": 8000, "iscrowd": 0} for k in range(3 * n_images)]
    cats = [{"id": c, "name": f"c{c}"} for c in range(1, n_classes + 1)]
    return {"images": images, "annotations": anns, "categories": cats}


def _dets(n=400, n_images=20, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return [{"image_id": int(rng.integers(1, n_images + 1)), "category_id": int(rng.integers(1, n_classes + 1)),
             "bbox": [round(float(v), 2) for v in rng.uniform([0, 0, 5, 5], [500, 380, 120, 90])],
             "score": round(float(rng.random()), 4)} for _ in range(n)]


@pytest.fixture
def small_split(monkeypatch):
    """Every file large enough for the two-process decode."""
    monkeypatch.setattr(pm, "SPLIT_MIN_BYTES", 1)


def _general(data: bytes, path="p.json"):
    return pm._load_general(data, path)


def _same(a: pm.Predictions, b: pm.Predictions):
    for name in ("image_id", "category_id", "score", "bbox"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y, equal_nan=True), name
    assert np.array_equal(a.as_array(), b.as_array(), equal_nan=True)
    assert (a.segmentation is None) == (b.segmentation is None)


def _column_stack(p: pm.Predictions):
    return np.column_stack([p.image_id.astype(np.float64), p.bbox, p.score, p.category_id.astype(np.float64)])


# -- same columns -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dump", [
    lambda d: json.dumps(d),
    lambda d: json.dumps(d, indent=2),
    lambda d: json.dumps(d, separators=(",", ":")),
    lambda d: json.dumps([{k: x[k] for k in reversed(list(x))} for x in d]),  # other key order
    lambda d: json.dumps([dict(x, id=i, area=1.5, extra={"a": [1, {"b": "}, {"}]}) for i, x in enumerate(d)]),
    lambda d: json.dumps([dict(x, bbox=[int(v) for v in x["bbox"]]) for x in d]),  # integers in boxes
])
@pytest.mark.parametrize("split", [False, True])
def test_fast_decode_gives_the_general_decode_columns(monkeypatch, tmp_path, dump, split):
    if split and not pm._can_fork():
        pytest.skip("needs fork")
    monkeypatch.setattr(pm, "SPLIT_MIN_BYTES", 1 if split else 1 << 40)
    data = dump(_dets()).encode()
    path = tmp_path / "p.json"
    path.write_bytes(data)
    fast = pm.load(path)
    assert fast._rows is not None  # the box road was taken
    _same(fast, _general(data))
    assert np.array_equal(fast.as_array(), _column_stack(fast))
    _same(pm.load_bytes(data, "p.json"), fast)  # bytes (the parts are copied, not cut in place)
    buf = bytearray(data)
    _same(pm.load_bytes(buf, "p.json"), fast)  # a writable buffer is cut in place ...
    assert buf == data  # ... and restored


@needs_fork
def test_a_cut_inside_a_string_is_never_taken(small_split, tmp_path):
    """Every detection holds '}, {' in a string: the byte search finds those first; the child's
    decode of the first part then fails, and the serial decode reads the file."""
    dets = [dict(d, note="x" * 40 + "}, {" + "y" * 40) for d in _dets(200)]
    data = json.dumps(dets).encode()
    for share in (0.3, 0.5, 0.7):
        loading = pm.Loading.from_bytes(bytearray(data), "p.json", share=share)
        _same(loading.result(), _general(data))


@needs_fork
def test_masks_go_the_general_way_and_keep_their_segmentation(small_split):
    dets = _dets(50)
    dets[40]["segmentation"] = {"size": [480, 640], "counts": "abc"}  # in the second part only
    data = json.dumps(dets).encode()
    got = pm.load_bytes(bytearray(data), "p.json")
    assert got.segmentation is not None and got.segmentation[40] and not got.segmentation[0]
    _same(got, _general(data))


def test_empty_and_tiny_files(small_split):
    for data in (b"[]", b" [ ] ", b'[{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}]'):
        _same(pm.load_bytes(data, "p.json"), _general(data))


@needs_fork
def test_the_child_is_reaped_whatever_happens(small_split):
    data = json.dumps(_dets()).encode()
    loading = pm.Loading.from_bytes(bytearray(data), "p.json")
    child = loading._child
    assert child is not None
    loading.cancel()
    with pytest.raises(ChildProcessError):
        os.waitpid(child.pid, os.WNOHANG)
    loading = pm.Loading.from_bytes(bytearray(data), "p.json")
    pid = loading._child.pid
    loading.result()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


# -- same errors ------------------------------------------------------------------------------------
def _error(fn):
    with pytest.raises(InputError) as info:
        fn()
    return info.value.one_line()


BAD = {
    "unknown image id": lambda d: d.__setitem__(-3, dict(d[-3], image_id=999)),
    "unknown category": lambda d: d.__setitem__(-3, dict(d[-3], category_id=77)),
    "missing score": lambda d: d[-3].pop("score"),
    "bbox of three": lambda d: d[-3].__setitem__("bbox", [1, 2, 3]),
    "bbox as string": lambda d: d[-3].__setitem__("bbox", "1, 2, 3, 4"),
    "bbox as object": lambda d: d[-3].__setitem__("bbox", {"x": 1, "y": 2, "w": 3, "h": 4}),
    "no bbox": lambda d: d[-3].pop("bbox"),
    "string image id": lambda d: d[-3].__setitem__("image_id", "1"),
    "negative width": lambda d: d[-3].__setitem__("bbox", [50, 50, -10, 10]),
    "NaN score": lambda d: d[-3].__setitem__("score", float("nan")),
    "infinite score": lambda d: d[-3].__setitem__("score", float("inf")),
    "huge image id": lambda d: d[-3].__setitem__("image_id", 1 << 70),
}


@pytest.mark.parametrize("where", [2, -3])  # in the child's part, in this process's part
@pytest.mark.parametrize("kind", list(BAD))
def test_bad_files_give_the_general_decodes_error(monkeypatch, tmp_path, kind, where):
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(_gt_doc()))
    dets = _dets()
    if where != -3:
        dets[where], dets[-3] = dets[-3], dets[where]
    BAD[kind](dets)
    if where != -3:
        dets[where], dets[-3] = dets[-3], dets[where]
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(dets))  # NaN and Infinity as Python writes them: not JSON

    def run():
        return _error(lambda: ev.evaluate(gt, pred))

    monkeypatch.setattr(pm, "SPLIT_MIN_BYTES", 1)
    fast = run()
    monkeypatch.setattr(pm, "SPLIT_MIN_BYTES", 1 << 40)
    serial = run()
    monkeypatch.setenv("LABELLINT_NO_FORK", "1")
    monkeypatch.setattr(pm, "_decode_boxes", lambda data: None)  # the general decode alone
    general = run()
    assert fast == serial == general
    assert fast.startswith(str(pred) + ":")
    i = where % len(dets)
    if kind in ("NaN score", "infinite score"):
        line, col = (int(v) for v in fast.split(":")[1:3])  # file:line:column
        assert line == 1 and pred.read_text()[col - 1:].startswith(("NaN", "Infinity"))
        assert "NaN and Infinity are not JSON numbers" in fast
    elif kind == "unknown image id":
        assert f"detection {i} is on image_id 999" in fast
    elif kind == "unknown category":
        assert f"detection {i} has category_id 77" in fast
    elif kind == "missing score":
        assert f'detection {i} (image_id {dets[i]["image_id"]}) has no "score"' in fast
    elif kind == "bbox of three":
        assert '"bbox" must be four numbers' in fast and f"detection {i}" in fast
    elif kind == "bbox as string":
        assert '"bbox" must be four numbers' in fast and "'1, 2, 3, 4'" in fast
    elif kind == "bbox as object":
        assert "not an object with keys" in fast
    elif kind == "no bbox":
        assert f"detection {i}" in fast and 'has neither "bbox" nor "segmentation"' in fast
    elif kind == "string image id":
        assert '"image_id" must be an integer' in fast
    elif kind == "negative width":
        assert f"detection {i}" in fast and "negative width or height" in fast
    elif kind == "huge image id":
        assert "out of range" in fast and f"detection {i}" in fast


@pytest.mark.parametrize("text, line", [
    ('[{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5},\n {"image_id": 1,', 2),
    ('[{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}\n {"image_id": 2}]', 2),
    ('[{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": .5}]', 1),
])
def test_broken_json_names_line_and_column_on_every_road(monkeypatch, tmp_path, text, line):
    p = tmp_path / "pred.json"
    p.write_text(text)
    got = set()
    for threshold in (1, 1 << 40):
        monkeypatch.setattr(pm, "SPLIT_MIN_BYTES", threshold)
        got.add(_error(lambda: pm.load(p)))
    got.add(_error(lambda: _general(text.encode(), str(p))))
    assert len(got) == 1, got
    msg = got.pop()
    assert msg.startswith(f"{p}:{line}:") and ": not valid JSON" in msg, msg
    assert int(msg[len(str(p)) + 1:].split(":")[1]) >= 1  # a column


@needs_fork
def test_broken_json_in_a_large_file_names_line_and_column(small_split, tmp_path):
    dets = _dets(300)
    text = json.dumps(dets, indent=1)
    cut = text.index('"score"', len(text) * 3 // 4)
    broken = text[:cut] + '"score" 0.5' + text[cut + len('"score":'):]
    p = tmp_path / "pred.json"
    p.write_text(broken)
    msg = _error(lambda: pm.load(p))
    line = broken[:cut].count("\n") + 1
    assert msg.startswith(f"{p}:{line}:") and "not valid JSON" in msg


# -- the same numbers -------------------------------------------------------------------------------
@pytest.mark.parametrize("split", [False, True])
def test_stats_match_pycocotools(monkeypatch, tmp_path, split):
    if split and not pm._can_fork():
        pytest.skip("needs fork")
    monkeypatch.setattr(pm, "SPLIT_MIN_BYTES", 1 if split else 1 << 40)
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(_gt_doc()))
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(_dets(1500)))
    hot = ev.evaluate(gt, pred, "bbox", "hotcoco")
    ref = ev.evaluate(gt, pred, "bbox", "pycocotools")
    assert hot.stats == ref.stats
    assert hot.per_class == ref.per_class
    assert sum(c["detections"] for c in hot.per_class) == 1500


def test_detections_per_class_counts_sparse_and_dense_ids():
    ids = np.array([5, 3, 5, 1 << 40, 3, 5], np.int64)
    assert ev._detections_per_class(ids) == {3: 2, 5: 3, 1 << 40: 1}
    assert ev._detections_per_class(ids[:3]) == {3: 1, 5: 2}
    assert ev._detections_per_class(np.array([], np.int64)) == {}


# -- `python -m labellint evaluate`: the command alone, as the full command line runs it --------------
def _cli(args, cwd, alone: bool):
    code = ("import sys; from labellint.__main__ import main; sys.argv = ['labellint'] + sys.argv[1:]; main()" if alone
            else "import sys; from labellint.cli import main; sys.argv = ['labellint'] + sys.argv[1:]; main()")
    env = {**os.environ, "LABELLINT_NO_PROGRESS": "1", "COLUMNS": "100"}
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd)
    return done.returncode, done.stdout, done.stderr


def test_evaluate_alone_does_not_import_the_whole_command_line(tmp_path):
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(_gt_doc()))
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(_dets()))
    code = ("import sys; from labellint.__main__ import main; sys.argv = ['labellint'] + sys.argv[1:]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "bad = sorted(m for m in ('labellint.cli', 'labellint.run', 'labellint.engine', 'labellint.registry', "
            "'rich', 'pycocotools') if m in sys.modules)\nprint('IMPORTED', bad, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, "evaluate", str(gt), str(pred), "-f", "json"],
                          capture_output=True, text=True)
    assert json.loads(done.stdout)["detections"] == 400
    assert "IMPORTED []" in done.stderr, done.stderr


@pytest.mark.parametrize("case", ["json", "text", "help", "no args", "bad option", "missing file", "bad file"])
def test_evaluate_alone_answers_as_the_full_command_line(tmp_path, case):
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(_gt_doc()))
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(_dets()))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3]}]))
    args = {"json": ["evaluate", gt, pred, "-f", "json"], "text": ["evaluate", gt, pred],
            "help": ["evaluate", "-h"], "no args": ["evaluate"], "bad option": ["evaluate", gt, pred, "--nope"],
            "missing file": ["evaluate", gt, tmp_path / "nope.json"], "bad file": ["evaluate", gt, bad]}[case]
    alone = _cli(args, tmp_path, alone=True)
    full = _cli(args, tmp_path, alone=False)
    if case == "json":
        a, b = json.loads(alone[1]), json.loads(full[1])
        a.pop("seconds"), b.pop("seconds")
        assert alone[0] == full[0] == 0 and a == b
    elif case == "text":
        strip = [line for line in alone[1].splitlines()[1:]]  # the first line holds the time taken
        assert alone[0] == full[0] == 0 and strip == full[1].splitlines()[1:]
    else:
        assert alone == full
        assert alone[0] in (0, 2)
