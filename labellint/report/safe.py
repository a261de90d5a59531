"""Dataset strings come from strangers: show them as text, never as markup or terminal codes."""

from __future__ import annotations

import re

from rich.text import Text

# C0 and C1 controls (ANSI escapes start with \x1b or \x9b), the line and paragraph separators
# U+2028/U+2029 (a new line to editors, JavaScript and some terminals), and every bidi control:
# embeddings, overrides and isolates, and the implicit marks (LRM, RLM, ALM)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def clean(s) -> str:
    """Replace control characters (ANSI escapes, bidi controls, line separators) with visible escapes."""
    s = "" if s is None else str(s)
    s = s.replace("\n", "\\n").replace("\t", "\\t")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}" if ord(m.group(0)) < 0x100
                        else f"\\u{ord(m.group(0)):04x}", s)


def text(s, style: str = "") -> Text:
    """A rich Text that is never parsed as markup."""
    return Text(clean(s), style=style)
