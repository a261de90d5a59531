"""Progress bars only where a person is watching: a terminal, not CI, not a pre-commit hook.

A bar's description often holds a path or other dataset text (``linting {file}``): it is shown as
plain text, cleaned like the report (:func:`labellint.report.safe.clean`), never parsed as rich
markup nor written with its terminal escapes. The bar does this itself, so no caller can forget.
"""

from __future__ import annotations

import os

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from labellint.report.safe import clean


def enabled(console: Console) -> bool:
    if os.environ.get("CI") or os.environ.get("PRE_COMMIT") or os.environ.get("LABELLINT_NO_PROGRESS"):
        return False
    return console.is_terminal


class PlainProgress(Progress):
    """A rich Progress whose task descriptions are plain, cleaned text."""

    def add_task(self, description: str, *args, **kw) -> TaskID:
        return super().add_task(clean(description), *args, **kw)

    def update(self, task_id: TaskID, *, description: str | None = None, **kw) -> None:
        super().update(task_id, description=None if description is None else clean(description), **kw)

    def reset(self, task_id: TaskID, *, description: str | None = None, **kw) -> None:
        super().reset(task_id, description=None if description is None else clean(description), **kw)


def bar(console: Console, **kw) -> Progress:
    return PlainProgress(
        TextColumn("{task.description}", style="progress.description", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not enabled(console),
        **kw,
    )


class Phases:
    """One bar line for work in phases, each counted to its own total: call it with ``(phase,
    done, total)`` (the shape knn.neighbours reports in); the line goes when the work is done.
    With no bar (not a terminal, CI, pre-commit) it does nothing."""

    def __init__(self, bar: Progress | None, label: str):
        self.bar, self.label, self.task = bar, label, None

    def __call__(self, phase: str, done: int, total: int) -> None:
        if self.bar is None:
            return
        if self.task is None:
            self.task = self.bar.add_task(self.label, total=total)
        self.bar.update(self.task, description=f"{self.label}: {phase}", completed=done, total=total)

    def __enter__(self) -> "Phases":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.remove_task(self.task)
