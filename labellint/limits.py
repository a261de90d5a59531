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
