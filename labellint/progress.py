"""Progress bars only where a person is watching: a terminal, not CI, not a pre-commit hook."""

from __future__ import annotations

import os

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def enabled(console: Console) -> bool:
    if os.environ.get("CI") or os.environ.get("PRE_COMMIT") or os.environ.get("LABELLINT_NO_PROGRESS"):
        return False
    return console.is_terminal


def bar(console: Console, **kw) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not enabled(console),
        **kw,
    )
