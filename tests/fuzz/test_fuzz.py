"""The fuzzer in CI: a fixed number of cases with a fixed seed must all pass, and the harness
itself must see every kind of failure it claims to (planted.py stands in for labellint there).

``test_fuzz_ci`` is the one to watch (``pytest -m fuzz tests/fuzz``); FUZZ_SEED, FUZZ_CASES and
FUZZ_JOBS change its seed, size and parallelism, FUZZ_OUT keeps its failures in a folder.
For long runs with a random seed: ``python benchmarks/fuzz.py --seed random --cases 100000``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import pytest

from . import corpus, harness
from .values import BigInt, Deep, HugeStr, Pairs, Raw, dump_json, dump_toml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.fuzz

CI_SEED = int(os.environ.get("FUZZ_SEED", "20240612"))
CI_CASES = int(os.environ.get("FUZZ_CASES", "500"))
CI_JOBS = int(os.environ.get("FUZZ_JOBS", "2"))
CI_TIMEOUT = 20.0
PLANTED = str(Path(__file__).with_name("planted.py")) + ":main"


def test_fuzz_ci(tmp_path):
    """CI_CASES cases of seed CI_SEED (about a minute on two cores): no failure of any kind."""
    report = harness.fuzz(CI_SEED, CI_CASES, jobs=CI_JOBS, timeout=CI_TIMEOUT,
                          use_shared=corpus.shared_available(), workdir=tmp_path / "work")
    assert report.cases == CI_CASES
    if report.failing:
        out = Path(os.environ.get("FUZZ_OUT") or tmp_path / "failures")
        template = tmp_path / "work" / "template"
        saved = {sig: harness.save(found, out, template, sig) for sig, (found, _) in report.by_signature.items()}
        pytest.fail(report.summary(saved), pytrace=False)


# -- the harness sees what it must ----------------------------------------------------------------

def _planted_case(images: bool) -> harness.Case:
    doc = corpus.gen_doc(__import__("random").Random(1))
    return harness.Case(seed="t", index=0, name="plain", argv=["check"], images=images,
                        files={harness.DATASET: harness.FileSpec("json", doc)})


@pytest.fixture(scope="module")
def planted_worker():
    worker = harness.Worker(timeout=1.0, mem=256 << 20, entry=PLANTED)
    yield worker
    worker.remove()


@pytest.fixture
def planted(planted_worker, tmp_path):
    return planted_worker, tmp_path


def _judged(worker, tmp_path, plant):
    images = plant == "peek"
    worker.env = {"FUZZ_PLANT": plant}
    template = corpus.make_image_template(tmp_path / "template") if images else None
    return harness.run_case(_planted_case(images), worker, tmp_path, template)


@pytest.mark.parametrize("plant, cls, where", [
    ("raise", "traceback", "traceback ValueError @ planted.py:main"),
    ("hang", "hang", "hang @ planted.py:_spin"),
    ("alloc", "memory", None),
    ("exit3", "bad-exit", "bad-exit plain exit"),
    ("escape", "escape-leak", None),
    ("segv", "crash", "crash SIGSEGV @ planted.py:main"),
    ("silent2", "silent-exit-2", None),
    ("peek", "image-root-escape", None),
])
def test_oracle_sees_planted_failures(planted, plant, cls, where):
    worker, tmp_path = planted
    started = time.monotonic()
    found = _judged(worker, tmp_path, plant)
    assert found is not None, plant
    assert cls in {f.cls for f in found.failures}, [(f.cls, f.detail) for f in found.failures]
    if where:
        assert where in found.signatures, found.signatures
    assert time.monotonic() - started < 5  # the timeout and the memory limit hold


def test_oracle_passes_a_clean_run(planted):
    worker, tmp_path = planted
    assert _judged(worker, tmp_path, "ok") is None


def test_shrink_save_replay(planted):
    """A failure that needs one value in a big document shrinks to little more than that value,
    is saved with a one-line reproduction, and replays to the same signature."""
    worker, tmp_path = planted
    worker.env = {"FUZZ_PLANT": "boom"}
    doc = corpus.gen_doc(__import__("random").Random(3))
    doc["annotations"] = [{"id": i, "bbox": [i, i, 3, 3]} for i in range(200)]
    doc["annotations"][137]["note"] = "BOOM" + "x" * 500
    case = harness.Case(seed="t", index=1, name="plain", argv=["check"],
                        files={harness.DATASET: harness.FileSpec("json", doc, indent=2)})
    found = harness.run_case(case, worker, tmp_path / "w", None)
    assert found.signatures == ["traceback KeyError @ planted.py:main"]
    small = harness.shrink(found, worker, tmp_path / "w", None, budget=200)
    assert small.signatures == found.signatures
    written = small.case.files[harness.DATASET].render()
    assert b"BOOM" in written and len(written) < 60, written
    command = harness.save(small, tmp_path / "out", None)
    folder = tmp_path / "out" / harness.slug(found.signatures[0])
    assert command.startswith(f"cd {folder} && ulimit -v 2097152 && ") and command.endswith(
        "python -m labellint check ann.json")
    assert (folder / "repro.sh").read_text().count("\n") == 2
    assert json.loads((folder / "failure.json").read_text())["signature"] == found.signatures[0]
    fails, _ = harness.replay(folder, worker)
    assert [f.signature for f in fails] == found.signatures


def test_subprocess_mode_judges_like_fork_mode(tmp_path):
    """The real ``python -m labellint`` and the fork server agree on a case (whatever labellint
    makes of it today)."""
    case = harness.make_case(CI_SEED, 0, harness.Seeds(use_shared=False))
    verdicts = []
    for mode in ("fork", "subprocess"):
        worker = harness.Worker(mode=mode, timeout=CI_TIMEOUT)
        try:
            found = harness.run_case(case, worker, tmp_path / mode, corpus.make_image_template(tmp_path / "t"))
        finally:
            worker.remove()
        verdicts.append(found.signatures if found else [])
    assert verdicts[0] == verdicts[1]


# -- cases and what they are written as -----------------------------------------------------------

def test_cases_are_reproducible():
    seeds = harness.Seeds(use_shared=False)
    a = [harness.make_case(7, i, seeds) for i in range(30)]
    b = [harness.make_case(7, i, seeds) for i in reversed(range(30))][::-1]
    for x, y in zip(a, b):
        assert x.full_argv == y.full_argv and x.log == y.log
        assert {k: v.render() for k, v in x.files.items()} == {k: v.render() for k, v in y.files.items()}
    assert len({c.files[harness.DATASET].render() for c in a}) > 25
    assert len({c.name for c in a}) > 8  # the option sets are all drawn


def test_writers():
    doc = {"a": Pairs([("k", 1), ("k", 2)]), "n": [math.nan, math.inf, -0.0, 2**70], "raw": Raw("1e999"),
           "deep": Deep(3), "big": BigInt(30), "s": HugeStr(5, "\u202e"), "u": "\u2028"}
    text = dump_json(doc, indent=2)
    back = json.loads(text)
    assert back["a"] == {"k": 2} and '"k": 1' in text
    assert math.isnan(back["n"][0]) and back["n"][1:] == [math.inf, 0.0, 2**70]
    assert back["raw"] == math.inf and back["deep"] == [[[]]] and back["big"] == int("9" * 30)
    assert back["s"] == "\u202e" * 5 and back["u"] == "\u2028"
    assert json.loads(dump_json(Deep(4, "{"))) == {"a": {"a": {"a": {"a": 1}}}}
    table = {"select": ["LL1"], "fail-on": "warning", "rules": {"LL103": {"min_area": 4.0}},
             "per-file-ignores": {"*.json": ["LL3"]}, "x": math.inf}
    assert tomllib.loads(dump_toml(table)) == table


def test_rle_string_matches_pycocotools():
    mask_api = pytest.importorskip("pycocotools.mask")
    import numpy as np

    counts = corpus.box_rle(7, 5, 1, 2, 3, 4)
    mask = np.zeros((7, 5), dtype=np.uint8, order="F")
    mask[2:6, 1:4] = 1
    assert mask_api.encode(mask)["counts"].decode() == corpus.rle_string(counts)


def test_shared_seeds_are_small_real_files():
    if not corpus.shared_available():
        pytest.skip(f"needs the read-only shared data folder, not found at {corpus.SHARED} (set LABELLINT_SHARED)")
    seeds = {name: (doc, preds) for name, doc, preds in corpus.shared_seeds()}
    assert {"chess-valid", "cocoeval", "taco", "taco-unofficial"} <= set(seeds)
    for doc, _ in seeds.values():
        assert 0 < len(doc["images"]) <= 24
        ids = {im["id"] for im in doc["images"]}
        assert all(a["image_id"] in ids for a in doc["annotations"])
    assert any(a.get("iscrowd") for a in seeds["cocoeval"][0]["annotations"])
    assert seeds["cocoeval"][1]
    assert "Infinity" in dump_json(seeds["taco-unofficial"][0])
