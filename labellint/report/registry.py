"""The reporters, by the name ``--output-format`` takes.

A reporter is a name, one function ``render(result, options) -> str`` and where its output goes;
``labellint check`` looks it up and follows those fields, so a new format is one ``register`` call.
The built-in ones import their module on first use: the gallery's Pillow and thumbnails cost
nothing to a run that asked for JSON.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from labellint.run import Result

# where a reporter's output goes
STDOUT = "stdout"  # stdout when there is no --output-file
FILE = "file"  # only to --output-file, which it then requires
CONSOLE = "console"  # the text report: the terminal (rich), plain text to --output-file


@dataclass(frozen=True)
class ReportOptions:
    """Everything a reporter may need beyond the run's result."""

    exit_code: int = 0  # the run's exit status (the JSON summary states it)
    limit: int = 50  # findings the text and markdown reports list (0: all)
    statistics: bool = False  # the text report: only the table of counts by rule
    images: Path | None = None  # the image root (the gallery's pictures)
    console: Console | None = None  # where a slow reporter shows progress (stderr)
    output_file: Path | None = None  # where this report goes (--output-file, --report), for files beside it


@dataclass(frozen=True)
class Reporter:
    name: str  # the --output-format value
    render: Callable[[Result, ReportOptions], str]
    output: str = STDOUT  # STDOUT, FILE or CONSOLE
    # on stdout: the text report follows it (GitHub shows only 10 annotations of each level);
    # without it stdout holds this one document, a run that failed to start included
    text_too: bool = False
    keep_datasets: bool = False  # it reads the loaded files (Options.keep_datasets)
    file_hint: str = "FILE"  # the file a FILE reporter's usage error suggests
    written: str | None = None  # what the file is, said on stderr once written ("review gallery")

    @property
    def owns_stdout(self) -> bool:
        """Whether stdout (when there is no --output-file) holds this reporter's document alone."""
        return self.output == STDOUT and not self.text_too


_REPORTERS: dict[str, Reporter] = {}


def register(reporter: Reporter) -> Reporter:
    """Add ``reporter`` (replacing one of the same name); ``--output-format`` offers it at once."""
    _REPORTERS[reporter.name] = reporter
    return reporter


def unregister(name: str) -> None:
    _REPORTERS.pop(name, None)


def get(name: str) -> Reporter:
    return _REPORTERS[name]


def names() -> tuple[str, ...]:
    """The formats, in the order they were registered (the built-in ones first)."""
    return tuple(_REPORTERS)


def _lazy(module: str) -> Callable[[Result, ReportOptions], str]:
    """``module.report``, imported on the first call."""
    def render(result: Result, options: ReportOptions) -> str:
        return importlib.import_module(module).report(result, options)

    return render


register(Reporter("text", _lazy("labellint.report.text"), output=CONSOLE))
register(Reporter("json", _lazy("labellint.report.jsonfmt")))
register(Reporter("sarif", _lazy("labellint.report.sarif")))
register(Reporter("github", _lazy("labellint.report.github"), text_too=True))
register(Reporter("html", _lazy("labellint.report.html"), output=FILE, keep_datasets=True,
                  file_hint="REVIEW.html", written="review gallery"))
register(Reporter("gitlab", _lazy("labellint.report.gitlab")))
register(Reporter("junit", _lazy("labellint.report.junit")))
register(Reporter("markdown", _lazy("labellint.report.markdown")))
register(Reporter("label-studio", _lazy("labellint.report.labelstudio"), output=FILE, keep_datasets=True,
                  file_hint="TASKS.json", written="Label Studio tasks"))
