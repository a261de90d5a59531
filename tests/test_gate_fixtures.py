"""Data and trained runs shared by the companion's tests (test_gate*, test_train*, test_model_rules*).

A shapes dataset the tests draw themselves (circles, squares and triangles on varied
backgrounds, with labellint.demo), and real torchvision runs on it, trained once per session:
``shared_runs()`` trains the clean baseline and a candidate whose circles and squares carry each
other's class, through ``labellint gate --retrain`` itself. Module-level caching makes every test
file that asks get the same runs, whichever fixture wrapper asked first.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from labellint.cli import cli
from labellint.demo import generate

# The recipe every shared run uses: small enough for two CPU trainings within a couple of
# minutes, big enough to land far above chance. One thread: other test processes on the machine
# make torch's two OpenMP threads wait on each other (20x slower steps were measured).
RECIPE = ["--epochs", "5", "--batch-size", "4", "--image-size", "224", "--lr", "0.02", "--seed", "0",
          "--rpn-proposals", "300", "--roi-batch", "32", "--device", "cpu", "--threads", "1"]
TINY = ["--epochs", "1", "--batch-size", "4", "--image-size", "128", "--seed", "0", "--rpn-proposals", "100",
        "--roi-batch", "16", "--device", "cpu", "--threads", "1"]

_CACHE: dict = {}


def make_shapes(folder: Path, n_train: int = 80, n_val: int = 40, seed: int = 0) -> dict:
    """train.json, flipped.json (circles and squares swapped), train_copy.json, val.json and images/."""
    folder.mkdir(parents=True, exist_ok=True)
    images = folder / "images"
    images.mkdir(exist_ok=True)
    train_pics, train = generate(n_train, seed=seed, prefix="train", max_objects=4, object_size=(28, 56))
    val_pics, val = generate(n_val, seed=seed + 1000, prefix="val", max_objects=4, object_size=(28, 56))
    for name, img in train_pics + val_pics:
        img.save(images / name)
    flipped = json.loads(json.dumps(train))
    swap = {1: 2, 2: 1}  # circle <-> square: two of the three classes carry the other's name
    for a in flipped["annotations"]:
        a["category_id"] = swap.get(a["category_id"], a["category_id"])
    paths = {"folder": folder, "images": images}
    for name, doc in (("train", train), ("flipped", flipped), ("val", val)):
        paths[name] = folder / f"{name}.json"
        paths[name].write_text(json.dumps(doc, indent=1))
    paths["train_copy"] = folder / "train_copy.json"
    shutil.copyfile(paths["train"], paths["train_copy"])
    return paths


def invoke(args, cwd: Path | None = None):
    runner = CliRunner()
    return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)


def shared_runs(tmp_path_factory) -> dict:
    """The session's two real trainings and the gate's verdict on them (trained once).

    Under pytest-xdist every worker is its own process: the first to ask trains in the session's
    shared temp folder under a file lock and writes what it got; the others wait for the lock and
    read it, so the detectors are trained once per session whatever the number of workers."""
    if "runs" in _CACHE:
        return _CACHE["runs"]
    pytest.importorskip("torch", reason="training needs torch (pip install 'labellint-coco[train]')")
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # pytest-N/, shared by this session's workers (popen-gwK/ are theirs)
    root = base / "shared-shapes"
    root.mkdir(exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = root / "runs.json"
        if not done.exists():
            data = make_shapes(root / "data")
            cache = root / "cache"
            result = invoke(["gate", "--retrain", data["train"], data["flipped"], "--val", data["val"], "--images",
                             data["images"], "--cache-dir", cache, "--classes", "all", "--output-format", "json",
                             *RECIPE])
            record = {"data": {k: str(v) for k, v in data.items()}, "cache": str(cache),
                      "exit_code": result.exit_code, "stdout": result.stdout, "stderr": result.stderr}
            tmp = root / "runs.json.tmp"
            tmp.write_text(json.dumps(record))
            tmp.replace(done)
        record = json.loads(done.read_text())
    report = json.loads(record["stdout"])
    out = {"data": {k: Path(v) for k, v in record["data"].items()}, "cache": Path(record["cache"]),
           "exit_code": record["exit_code"], "report": report, "stderr": record["stderr"],
           "baseline": Path(report["baseline"]), "candidate": Path(report["candidate"])}
    _CACHE["runs"] = out
    return out


def tiny_dataset(tmp_path_factory) -> dict:
    if "tiny" not in _CACHE:
        _CACHE["tiny"] = make_shapes(tmp_path_factory.mktemp("tiny") / "data", n_train=8, n_val=4, seed=7)
    return _CACHE["tiny"]
