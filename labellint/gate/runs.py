"""Run folders written by ``labellint train``: where things are, and reading them back.

A run folder holds ``model.pt`` (a state_dict, read with ``weights_only=True``), ``predictions.json``
(COCO results on the val file), ``metrics.json`` and ``config.json`` (the exact recipe, the
category mapping and the hashes of the inputs).
"""

from __future__ import annotations

import json
from pathlib import Path

from labellint.errors import InputError

CHECKPOINT = "model.pt"
PREDICTIONS = "predictions.json"
METRICS = "metrics.json"
CONFIG = "config.json"


def is_run(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / PREDICTIONS).is_file()


def predictions_path(path: str | Path) -> Path:
    """A predictions file as given, or the val predictions of a run folder."""
    p = Path(path)
    if p.is_dir():
        if not (p / PREDICTIONS).is_file():
            raise InputError(f"not a run folder of `labellint train` (no {PREDICTIONS} in it)", str(p))
        return p / PREDICTIONS
    return p


def read_config(run: str | Path) -> dict | None:
    p = Path(run) / CONFIG
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the run's config: {exc}", str(p)) from None
