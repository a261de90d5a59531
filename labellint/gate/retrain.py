"""``labellint gate --retrain``: the study's loop in one command, with runs cached by content.

Both annotation files are trained with the same recipe and seed, both models predict on the
fixed val file, and the gate compares them. A run is cached under
``CACHE/runs/<key>/`` where the key hashes the annotation file's bytes, the val file's bytes,
the recipe (``TrainConfig.recipe_hash``: everything that changes the model), the device type and
the torch and torchvision versions. So CI, whose baseline file did not change, trains only the
candidate. CACHE is the user's cache folder (``~/.cache/labellint`` on Linux, or
``$LABELLINT_CACHE_DIR``) unless ``--cache-dir`` names another; as for the lint cache
(:mod:`labellint.cache`), one inside the images or an annotation file's repository (a pull
request could commit a run there with any metrics it likes), a symlink or another user's folder
is refused. The images are not hashed (reading every picture would cost more than it saves):
clear the cache when pictures change under the same annotations.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from labellint.errors import LabellintError
from labellint.fsutil import repo_root
from labellint.gate import runs
from labellint.gate.config import TrainConfig


def cache_key(annotations: Path, val: Path, config: TrainConfig, device_type: str, versions: dict) -> str:
    from labellint.gate.train import sha256_file

    parts = {"annotations": sha256_file(annotations), "val": sha256_file(val), "recipe": config.recipe_hash(),
             "device": device_type, "versions": versions}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def say(console, message: str) -> None:
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
        say(console, f"{role}: cached run {run} ({annotations})")
        return run, True
    say(console, f"{role}: training on {annotations} (run {run})")
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


def trusted_cache(cache_dir: Path | None, images: Path, data: list[Path]) -> Path:
    """The cache folder for runs: ``cache_dir`` or the default, refused (an error) where its runs
    could have come with the data."""
    from labellint import cache as cache_mod

    root = Path(cache_dir) if cache_dir is not None else cache_mod.default_dir()
    trees = [Path(images), *(r for p in data if (r := repo_root(Path(os.path.abspath(p)).parent)) is not None)]
    why = cache_mod.refusal(root, trees)
    if why is not None:
        raise LabellintError(f"the run cache {root} is not used: {why}. Give --cache-dir a folder of your own "
                             "outside the data (or leave it out for the user's cache folder)")
    return root


def retrain_pair(base: Path, candidate: Path, val: Path, images: Path, config: TrainConfig, cache_dir: Path | None,
                 console=None) -> tuple[Path, Path]:
    cache_dir = trusted_cache(cache_dir, images, [base, candidate, val])
    run_a, _ = cached_or_train(Path(base), Path(val), Path(images), config, cache_dir, "baseline", console)
    run_b, _ = cached_or_train(Path(candidate), Path(val), Path(images), config, cache_dir, "candidate", console)
    return run_a, run_b
