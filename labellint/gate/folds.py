"""Out-of-fold predictions: ``labellint train TRAIN.json --folds K``.

A model trained on a file's labels learns their errors too, and then agrees with them. The
model-based rules (LL6xx) need predictions from a model that did not see the image it predicts:
the images are dealt into K folds, K models are trained, each on the other K - 1 folds, and each
predicts the fold it did not see. The K held-out prediction files together cover every image once
and are merged into ``OUT/predictions.json``, the file ``labellint check --predictions`` reads.

Layout of OUT: ``folds.json`` (the source file's hash, K, the seed, the recipe, per-fold metrics),
``fold-1/`` ... ``fold-K/`` (each a run folder of ``labellint train`` with its ``train.json`` and
``heldout.json``), ``predictions.json``. A fold whose run folder is complete for the same fold
files and recipe is kept, so a killed run continues at the fold it was in.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from labellint.errors import InputError
from labellint.fsutil import atomic_write
from labellint.gate import runs
from labellint.gate.config import TrainConfig
from labellint.gate.retrain import say
from labellint.gate.train_data import read_coco

MANIFEST = "folds.json"


def assign(image_ids: list, k: int, seed: int) -> dict:
    """Fold (0..k-1) of each image id: a seeded shuffle dealt round-robin, so folds differ in
    size by at most one and the same file, k and seed always give the same folds."""
    order = np.random.default_rng(seed).permutation(len(image_ids))
    return {image_ids[i]: n % k for n, i in enumerate(order.tolist())}


def fold_files(doc: dict, k: int, seed: int) -> list[tuple[dict, dict]]:
    """(train, held-out) COCO documents per fold; ids are kept, so predictions name the source's
    images; every other top-level key (info, licenses, categories) is copied as it is."""
    images = [im for im in doc.get("images", []) if isinstance(im, dict) and "id" in im]
    fold = assign([im["id"] for im in images], k, seed)
    rest = {key: value for key, value in doc.items() if key not in ("images", "annotations")}
    out = []
    for f in range(k):
        held = {im["id"] for im in images if fold[im["id"]] == f}
        parts = []
        for inside in (False, True):
            parts.append({**rest,
                          "images": [im for im in images if (im["id"] in held) is inside],
                          "annotations": [a for a in doc.get("annotations", [])
                                          if isinstance(a, dict) and (a.get("image_id") in held) is inside]})
        out.append((parts[0], parts[1]))
    return out


def _complete(run: Path, train_bytes: bytes, config: TrainConfig) -> bool:
    """Whether ``run`` is a finished fold for these fold files and this recipe (metrics.json is
    written last)."""
    if not (run / runs.METRICS).is_file() or not (run / runs.PREDICTIONS).is_file():
        return False
    done = runs.read_config(run) or {}
    return (done.get("recipe_hash") == config.recipe_hash()
            and done.get("train", {}).get("sha256") == hashlib.sha256(train_bytes).hexdigest())


def cross_validate(train_file, images, out, config: TrainConfig, k: int, console=None) -> dict:
    """Train k models and write the merged out-of-fold predictions; returns the manifest."""
    from labellint.gate import train as train_mod

    train_file, out = Path(train_file), Path(out)
    if k < 2:
        raise InputError(f"--folds must be at least 2, got {k}", str(train_file))
    doc = read_coco(train_file)
    parts = fold_files(doc, k, config.seed)
    if any(not held["images"] for _, held in parts):
        raise InputError(f"{len(doc.get('images', []))} images cannot fill {k} folds", str(train_file))
    source = train_mod.sha256_file(train_file)
    manifest = {"source": str(train_file), "source_sha256": source, "folds": k, "seed": config.seed,
                "recipe_hash": config.recipe_hash()}
    earlier = _read_manifest(out)
    if earlier is not None and any(earlier.get(key) != manifest[key] for key in ("source_sha256", "folds", "seed")):
        raise InputError(f"{out} holds a cross-validation of another file, fold count or seed "
                         f"({earlier.get('source')}, {earlier.get('folds')} folds, seed {earlier.get('seed')}); "
                         "use another --out", str(out))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    merged, per_fold = [], []
    for f, (train_doc, held_doc) in enumerate(parts, start=1):
        run = out / f"fold-{f}"
        train_bytes = (json.dumps(train_doc) + "\n").encode()
        label = f"fold {f}/{k}"
        if _complete(run, train_bytes, config):
            say(console, f"{label}: done earlier, kept ({run})")
        else:
            run.mkdir(parents=True, exist_ok=True)
            atomic_write(run / "train.json", train_bytes)
            atomic_write(run / "heldout.json", json.dumps(held_doc) + "\n")
            train_mod.train(run / "train.json", run / "heldout.json", images, run, config, console=console,
                            label=label)
        metrics = json.loads((run / runs.METRICS).read_text(encoding="utf-8"))
        stats = metrics.get("bbox", {}).get("stats", [float("nan")] * 2)
        per_fold.append({"fold": f, "images": len(held_doc["images"]), "AP": stats[0], "AP50": stats[1]})
        merged.extend(json.loads((run / runs.PREDICTIONS).read_text(encoding="utf-8")))
    atomic_write(out / runs.PREDICTIONS, json.dumps(merged) + "\n")
    manifest["per_fold"] = per_fold
    manifest["predictions"] = len(merged)
    atomic_write(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest


def _read_manifest(out: Path) -> dict | None:
    try:
        return json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
