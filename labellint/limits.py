"""The limits that bound what a hostile or broken input can cost: one table, one way to change them.

Every limit has a default generous enough for real datasets and an environment variable that
raises (or lowers) it, read when the limit is used, so a test or a CI job can set it per run. The
README's "Security" section lists them; a test keeps that list and this table in step.

Add a limit here (name, default, what it bounds) rather than a constant in the module that
enforces it, so that users find every knob in one place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from labellint.errors import ConfigError


@dataclass(frozen=True)
class Limit:
    name: str  # also the environment variable, LABELLINT_<NAME upper-cased>
    default: int
    doc: str

    @property
    def env(self) -> str:
        return f"LABELLINT_{self.name.upper()}"


LIMITS: dict[str, Limit] = {}


def _define(name: str, default: int, doc: str) -> None:
    LIMITS[name] = Limit(name, default, doc)


# Helpers of other modules add their limits below, one line each, in the order a run meets them.
_define("max_input_bytes", 4 << 30, "bytes of one input file read (a dataset, predictions, a ground truth, a config)")
_define("max_json_depth", 512, "nesting depth of arrays and objects in a JSON input")
_define("max_image_bytes", 1_073_741_824, "bytes of one image file read (LL406 option max_bytes overrides it per file)")
_define("max_overlap_pairs_per_box", 64, "box pairs compared per box of an image by the duplicate rules (LL201, LL202)")
_define("max_quoted_chars", 200, "characters of a dataset string (a class or file name) quoted in a message")
_define("max_message_chars", 2000, "characters of one finding's message, suggestion or fix title")
_define("max_model_pairs", 50_000_000, "(label, prediction) pairs of one file compared by the rules LL601-LL604")
_define("max_polygon_outline", 1_000_000, "pixels of polygon outline a fix rasterises for one area (pycocotools: 80 bytes each)")
_define("max_decisions_bytes", 268_435_456, "bytes of a decisions file that labellint apply reads")


def get(name: str) -> int:
    """The limit's value: its environment variable when set to a whole number, else the default."""
    limit = LIMITS[name]
    raw = os.environ.get(limit.env)
    if raw is None or not raw.strip():
        return limit.default
    try:
        value = int(raw.strip().replace("_", ""))
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigError(f"{limit.env}={raw[:40]!r} must be a whole number of at least 0 (default {limit.default})")
    return value
