"""Dataset strings come from strangers: show them as text, never as markup or terminal codes."""

from __future__ import annotations

import re

from rich.text import Text

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean(s) -> str:
    """Replace control characters (ANSI escapes, bidi overrides, newlines) with visible escapes."""
    s = "" if s is None else str(s)
    s = s.replace("\n", "\\n").replace("\t", "\\t")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}" if ord(m.group(0)) < 0x100
                        else f"\\u{ord(m.group(0)):04x}", s)


def text(s, style: str = "") -> Text:
    """A rich Text that is never parsed as markup."""
    return Text(clean(s), style=style)
