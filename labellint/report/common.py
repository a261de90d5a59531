"""What the CI report formats (gitlab, junit, markdown) read from a run the same way."""

from __future__ import annotations

import re
from dataclasses import dataclass


def described(f) -> str:
    """A finding's message with its suggestion, as one line of text (not yet cleaned)."""
    return f.message + (f" (suggestion: {f.suggestion})" if f.suggestion else "")


@dataclass(frozen=True)
class RunError:
    """An error that stopped a file (or the whole run) from being linted: exit 2."""

    text: str  # the one-line message, its path first where it has one
    path: str | None  # the file it stopped (None: the run, such as an unknown rule code)
    line: int | None  # where in that file, when the message says


def run_errors(result) -> list[RunError]:
    """One per file that could not be linted (``FileOutcome`` status "error", even where files
    share one message, such as a broken config), with the line its message names
    (``path:line:col: ...``); then ``result.errors`` about no file."""
    out = []
    for f in result.files:
        if f.status == "error":
            m = re.match(re.escape(f.path) + r":(\d+)[:\s]", f.note or "")
            out.append(RunError(f.note or "", f.path, int(m.group(1)) if m else None))
    stopped = {e.text for e in out}
    return out + [RunError(text, None, None) for text in result.errors if text not in stopped]
