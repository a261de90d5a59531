"""GitHub Actions workflow commands (::error file=...::message).

GitHub shows only 10 annotations of each level per step, so the CLI prints the text report too.
"""

from __future__ import annotations

from labellint.report.safe import clean

LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def _data(s: str) -> str:
    s = clean(s)  # also turns newlines into a visible \\n, so no data can start a new command
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(s: str) -> str:
    return _data(s).replace(":", "%3A").replace(",", "%2C")


def report(result, options) -> str:
    return render(result)


def render(result) -> str:
    lines = []
    for err in result.errors:
        lines.append(f"::error title=labellint::{_data(err)}")
    for f in result.findings:
        props = [f"file={_prop(f.path)}"]
        if f.line is not None:
            props += [f"line={f.line}", f"col={f.column or 1}"]
        props.append(f"title={_prop(f'{f.code} {f.name}')}")
        message = f.message + (f" (suggestion: {f.suggestion})" if f.suggestion else "") + f" [{f.pointer}]"
        lines.append(f"::{LEVEL[str(f.severity)]} {','.join(props)}::{_data(message)}")
    return "\n".join(lines) + ("\n" if lines else "")
