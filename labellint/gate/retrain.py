"""``labellint gate --retrain``: the study's loop in one command, with runs cached by content.

Both annotation files are trained with the same recipe and seed, both models predict on the
fixed val file, and the gate compares them. A run is cached under
``CACHE/runs/<key>/`` where the key hashes the annotation file's bytes, the val file's bytes,
the recipe (``TrainConfig.recipe_hash``: everything that changes the model), the device type and
the torch and torchvision versions. So CI, whose baseline file did not change, trains only the
candidate. The images are not hashed (reading every picture would cost more than it saves):
clear the cache when pictures change under the same annotations.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from labellint.gate import runs
from labellint.gate.config import TrainConfig


def cache_key(annotations: Path, val: Path, config: TrainConfig, device_type: str, versions: dict) -> str:
    from labellint.gate.train import sha256_file

    parts = {"annotations": sha256_file(annotations), "val": sha256_file(val), "recipe": config.recipe_hash(),
             "device": device_type, "versions": versions}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def _say(console, message: str) -> None:
    if console is not None:
        from rich.text import Text

        console.print(Text(f"labellint: {message}"))


def cached_or_train(annotations: Path, val: Path, images: Path, config: TrainConfig, cache_dir: Path, role: str,
                    console=None) -> tuple[Path, bool]:
    """(run folder, whether it came from the cache)."""
    from labellint.gate import train as train_mod

    torch, torchvision = train_mod.require_torch()
    device = train_mod.pick_device(torch, config.device)
    key = cache_key(annotations, val, config, device.type,
                    {"torch": torch.__version__, "torchvision": torchvision.__version__})
    root = Path(cache_dir) / "runs"
    run = root / key
    if runs.is_run(run) and (run / runs.METRICS).is_file() and (run / runs.CONFIG).is_file():
        _say(console, f"{role}: cached run {run} ({annotations})")
        return run, True
    _say(console, f"{role}: training on {annotations} (run {run})")
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{key}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        train_mod.train(annotations, val, images, tmp, config, console=console)
        if run.exists():  # a concurrent job finished first: keep its run
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, run)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return run, False


def retrain_pair(base: Path, candidate: Path, val: Path, images: Path, config: TrainConfig, cache_dir: Path,
                 console=None) -> tuple[Path, Path]:
    run_a, _ = cached_or_train(Path(base), Path(val), Path(images), config, cache_dir, "baseline", console)
    run_b, _ = cached_or_train(Path(candidate), Path(val), Path(images), config, cache_dir, "candidate", console)
    return run_a, run_b
