"""``labellint train``: a torchvision detector on a COCO split, evaluated on a fixed val file.

A run folder gets ``model.pt`` (``torch.save`` of the state_dict; :func:`load_model` reads it
with ``weights_only=True``), ``predictions.json`` (COCO results on the val file),
``metrics.json`` and ``config.json`` (the exact recipe, the category mapping, the inputs'
hashes, where the backbone weights came from).

Deterministic for a seed (and thread count) on the CPU: seeded shuffling, seeded flips decided in the training
process (not in loader workers), no non-deterministic kernels. On CUDA the RoI-align backward
pass adds atomically, so GPU runs are close but not bit-identical.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labellint.errors import InputError, LabellintError
from labellint.fsutil import atomic_write
from labellint.gate import runs
from labellint.gate.config import MASK_MODELS, MODELS, TrainConfig
from labellint.gate.train_data import (
    CategoryMap,
    Sample,
    _collate,
    _hflip,
    _Images,
    _masks,
    load_rgb,
    read_coco,
    samples,
)

# the training data, under the names callers and tests reach it by
__all__ = ["INSTALL_HINT", "CategoryMap", "Run", "Sample", "evaluate_run", "load_model", "load_rgb", "pick_device",
           "predict", "read_coco", "require_torch", "samples", "seed_everything", "sha256_file", "train", "_masks"]

INSTALL_HINT = "training needs torch and torchvision: pip install 'labellint-coco[train]'"


def require_torch():
    try:
        import torch
        import torchvision
    except ImportError:
        raise LabellintError(INSTALL_HINT) from None
    return torch, torchvision


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pick_device(torch, wanted: str):
    if wanted in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(wanted)
    except RuntimeError:
        raise LabellintError(f"unknown device {wanted!r} (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise LabellintError(f"--device {wanted}: torch sees no CUDA device here (use --device cpu or auto)")
    return device


def seed_everything(torch, seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def _schedule(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return 0.001 + (1 - 0.001) * step / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@dataclass
class Run:
    out: Path
    config: dict
    metrics: dict
    seconds: float


def _warn(console, message: str) -> None:
    if console is not None:
        from rich.text import Text

        console.print(Text(f"labellint: warning: {message}", style="yellow"))


def train(train_file, val_file, images, out, config: TrainConfig, console=None, predict_files=(), label="") -> Run:
    """Train, predict on ``val_file`` and evaluate; ``label`` starts the progress bar's line (the
    fold of a cross-validation)."""
    torch, _ = require_torch()
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _train(train_file, val_file, images, out, config, console, predict_files, label)
    finally:
        torch.set_num_threads(threads)


def _train(train_file, val_file, images, out, config: TrainConfig, console, predict_files, label="") -> Run:
    torch, torchvision = require_torch()
    from labellint import progress
    from labellint.gate import models

    start = time.perf_counter()
    if config.model not in MODELS:
        raise LabellintError(f"unknown model {config.model!r} (use one of: {', '.join(MODELS)})")
    train_file, val_file, images, out = Path(train_file), Path(val_file), Path(images), Path(out)
    if not images.is_dir():
        raise InputError("image root is not a folder", str(images))
    masks = config.model in MASK_MODELS
    train_doc, val_doc = read_coco(train_file), read_coco(val_file)
    cmap = CategoryMap.from_coco(train_doc, str(train_file))
    _check_val_categories(cmap, val_doc, str(val_file), console)
    train_items, skipped = samples(train_doc, str(train_file), images, cmap, need_masks=masks)
    if skipped:
        _warn(console, f"{train_file}: left out of training: " +
              ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items())))
    if not any(len(s.labels) for s in train_items):
        raise InputError("no usable boxes to train on", str(train_file))
    val_items, _ = samples(val_doc, str(val_file), images, cmap, for_training=False)

    device = pick_device(torch, config.device)
    seed_everything(torch, config.seed)
    model = models.build(config.model, len(cmap.ids) + 1, config)
    weights_path, weights_note = models.find_backbone_weights(config.model, config.backbone_weights,
                                                              config.download_weights)
    if weights_path is not None:
        models.load_backbone(model, config.model, weights_path)
    else:
        _warn(console, weights_note)
    model.to(device)

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(train_items) / config.batch_size)
    total = steps_per_epoch * config.epochs
    warmup = int(config.warmup_fraction * total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _schedule(s, total, warmup))
    generator = torch.Generator().manual_seed(config.seed)
    flips = torch.Generator().manual_seed(config.seed + 1)
    loader = torch.utils.data.DataLoader(
        _Images(train_items, masks), batch_size=config.batch_size, shuffle=True, generator=generator,
        num_workers=config.workers, collate_fn=_collate, persistent_workers=config.workers > 0)

    history = []
    step = 0
    with progress.bar(console or _null_console()) as bar:
        lead = f"{label} · " if label else ""
        task = bar.add_task(f"{lead}training {config.model}", total=total)
        for epoch in range(1, config.epochs + 1):
            model.train()
            running, count = 0.0, 0
            for batch in loader:
                xs, targets = [], []
                for x, t in batch:
                    if config.hflip > 0 and float(torch.rand((), generator=flips)) < config.hflip:
                        x, t = _hflip(x, t)
                    xs.append(x.to(device))
                    targets.append({k: v.to(device) for k, v in t.items()})
                losses = model(xs, targets)
                loss = sum(losses.values())
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise LabellintError(f"training diverged: the loss is {value} at epoch {epoch}, step {step + 1} "
                                         f"(lower --lr, now {config.lr:g})")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                step += 1
                running += value
                count += 1
                bar.update(task, advance=1,
                           description=f"{lead}epoch {epoch}/{config.epochs} · loss {running / count:.3f}")
            history.append({"epoch": epoch, "loss": running / max(count, 1), "lr": optimizer.param_groups[0]["lr"]})
        bar.update(task, description=f"{lead}predicting on the {'held-out' if label else 'val'} images")
        predictions = predict(model, val_items, cmap, config, device, masks)

    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    atomic_write(out / runs.CHECKPOINT, buf.getvalue())
    atomic_write(out / runs.PREDICTIONS, json.dumps(predictions) + "\n")
    for extra in predict_files:
        doc = read_coco(extra)
        items, _ = samples(doc, str(extra), images, cmap, for_training=False)
        preds = predict(model, items, cmap, config, device, masks)
        atomic_write(out / f"predictions-{Path(extra).stem}.json", json.dumps(preds) + "\n")

    resolved = {
        **config.to_dict(),
        "device_used": str(device),
        "backbone": weights_note if weights_path is not None else "none (trained from scratch)",
        "backbone_pretrained": weights_path is not None,
        "categories": cmap.to_json(),
        "train": {"path": str(train_file), "sha256": sha256_file(train_file), "images": len(train_items),
                  "boxes": int(sum(len(s.labels) for s in train_items)), "skipped": skipped},
        "val": {"path": str(val_file), "sha256": sha256_file(val_file), "images": len(val_items)},
        "images": str(images),
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                     "labellint": _version()},
        "recipe_hash": config.recipe_hash(),
    }
    atomic_write(out / runs.CONFIG, json.dumps(resolved, indent=2) + "\n")
    metrics = evaluate_run(val_file, out / runs.PREDICTIONS, masks)
    metrics["train_loss"] = history
    metrics["seconds"] = round(time.perf_counter() - start, 2)
    atomic_write(out / runs.METRICS, json.dumps(metrics, indent=2) + "\n")
    return Run(out, resolved, metrics, time.perf_counter() - start)


def _version() -> str:
    from labellint import __version__

    return __version__


def _null_console():
    from rich.console import Console

    return Console(file=open(os.devnull, "w"))


def _check_val_categories(cmap: CategoryMap, val_doc: dict, path: str, console) -> None:
    train_names = dict(zip(cmap.ids, cmap.names))
    unknown = []
    for c in val_doc["categories"]:
        if not isinstance(c, dict):
            continue
        cid = c.get("id")
        if cid in train_names:
            if str(c.get("name", cid)) != train_names[cid]:
                raise InputError(f"category id {cid} is '{c.get('name')}' here but '{train_names[cid]}' in the "
                                 "training file: the two files must use one category list", path)
        else:
            unknown.append(cid)
    if unknown:
        _warn(console, f"{path}: {len(unknown)} categories are not in the training file (ids "
              f"{', '.join(map(str, unknown[:5]))}); the model cannot predict them")


def predict(model, items: list[Sample], cmap: CategoryMap, config: TrainConfig, device, masks: bool) -> list[dict]:
    """COCO results (xywh boxes, dataset category ids, scores; RLE masks for Mask R-CNN)."""
    import torch

    model.eval()
    results = []
    with torch.no_grad():
        for i in range(0, len(items), config.batch_size):
            chunk = items[i:i + config.batch_size]
            xs = [torch.from_numpy(np.array(load_rgb(s), np.uint8)).permute(2, 0, 1).float().div_(255).to(device)
                  for s in chunk]
            for s, o in zip(chunk, model(xs)):
                boxes = o["boxes"].cpu().numpy().astype(np.float64)
                scores = o["scores"].cpu().numpy().astype(np.float64)
                labels = o["labels"].cpu().numpy()
                rles = _encode_masks(o["masks"]) if masks and "masks" in o else None
                for k in range(len(scores)):
                    x1, y1, x2, y2 = boxes[k]
                    det = {"image_id": s.image_id, "category_id": int(cmap.category(int(labels[k]))),
                           "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                           "score": round(float(scores[k]), 5)}
                    if rles is not None:
                        det["segmentation"] = rles[k]
                    results.append(det)
    return results


def _encode_masks(mask_probs) -> list[dict]:
    from pycocotools import mask as mask_utils

    binary = (mask_probs[:, 0] > 0.5).cpu().numpy().astype(np.uint8)
    out = []
    for m in binary:
        rle = mask_utils.encode(np.asfortranarray(m))
        out.append({"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")})
    return out


def evaluate_run(val_file: Path, predictions: Path, masks: bool) -> dict:
    from labellint.gate import evaluate as ev

    try:
        backend = "hotcoco"
        ev._hotcoco()
    except LabellintError:
        backend = "pycocotools"
    out = {"bbox": ev.evaluate(val_file, predictions, "bbox", backend).to_dict()}
    if masks:
        out["segm"] = ev.evaluate(val_file, predictions, "segm", backend).to_dict()
    return out


def load_model(run: str | Path, device: str = "cpu"):
    """The trained detector of a run folder. The checkpoint is read with ``weights_only=True``."""
    torch, _ = require_torch()
    from labellint.gate import models

    run = Path(run)
    cfg = runs.read_config(run)
    if cfg is None:
        raise InputError(f"not a run folder (no {runs.CONFIG})", str(run))
    config = TrainConfig.from_dict(cfg)
    model = models.build(config.model, len(cfg["categories"]) + 1, config)
    if cfg.get("backbone_pretrained") and models.frozen_batch_norm(config.model):
        models._freeze_batch_norm(model.backbone.body)
    state = torch.load(str(run / runs.CHECKPOINT), map_location=device, weights_only=True)
    model.load_state_dict(state)
    return model.to(device).eval(), CategoryMap([c["category_id"] for c in cfg["categories"]],
                                                [c["name"] for c in cfg["categories"]])
