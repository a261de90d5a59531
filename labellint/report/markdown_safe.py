"""Untrusted strings in GitHub-flavoured Markdown (PR comments, job summaries), kept inert.

A dataset pull request comes from a stranger: a class or file name may hold ``<img src=...>``,
``[a link](https://...)``, ``@someone``, ``#123``, table pipes, backticks, newlines or megabytes.
Put such text through :func:`code` (a code span: GitHub renders it verbatim, and links, mentions,
issue references, HTML and emphasis are never recognised inside one) or :func:`cell` inside a
table. :func:`text` is for short prose of our own or of a plugin (a rule's name): it escapes
Markdown and breaks the autolinks GitHub adds (mentions, issue references, bare URLs), but code
spans are the safe default. :func:`link` makes a link only to an ``http(s)`` URL or a relative path
we built; :func:`capped` joins blocks under a byte budget, dropping the last ones for a note.

Every function first shows control characters as visible escapes (:func:`labellint.report.safe.clean`:
newlines, ANSI, bidi controls, U+2028), so no string can end a paragraph, a table row or a list
item, and cuts it to ``limit`` characters.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from itertools import accumulate
from typing import Callable, Sequence
from urllib.parse import quote, urlsplit

from labellint.findings import shorten
from labellint.report.safe import clean

#: GitHub refuses comments over 65,536 characters; this budget is in UTF-8 bytes (never fewer
#: than characters or UTF-16 units), so it holds however GitHub counts, with room to spare.
MAX_BYTES = 60_000
#: characters of one untrusted string shown (the rest is cut with an ellipsis)
LIMIT = 300

_SURROGATE = re.compile(r"[\ud800-\udfff]")  # a file name read with surrogateescape: not UTF-8
_PUNCT = re.compile(r"([!-/:-@\[-`{-~])")  # all ASCII punctuation: CommonMark lets any be escaped
_WORD_JOINER = "\u2060"  # invisible; stops GitHub's mention, issue and URL autolinks
# after @ and # (mentions, issues, e-mail), inside :// and www. (URLs), in GH-123 (issues)
_AUTOLINK = re.compile(r"(?<=[@#])|(?<=:)(?=//)|(?<=\bwww)(?=\.)|(?<=\bGH)(?=-)", re.IGNORECASE)


def _plain(s, limit: int) -> str:
    s = "" if s is None else str(s)
    return _SURROGATE.sub("\ufffd", shorten(clean(s[: limit + 1]), limit))  # a megabyte costs nothing


def code(s, limit: int = LIMIT) -> str:
    """``s`` as an inline code span, shown verbatim whatever it holds (backticks included)."""
    s = _plain(s, limit)
    longest = max((len(run) for run in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    if s.startswith("`") or s.endswith("`") or (s.startswith(" ") and s.endswith(" ") and s.strip()):
        s = f" {s} "  # CommonMark strips one space on each side
    return f"{fence}{s}{fence}" if s else "` `"


def cell(s, limit: int = LIMIT) -> str:
    """:func:`code` for a table cell: a ``|`` would end the cell even in a code span."""
    return code(s, limit).replace("|", "\\|")


def text(s, limit: int = LIMIT) -> str:
    """``s`` as literal inline text: Markdown and HTML escaped, GitHub's autolinks broken, and
    safe in a table cell."""
    return _PUNCT.sub(r"\\\1", _AUTOLINK.sub(_WORD_JOINER, _plain(s, limit)))


def link(label, url: str, limit: int = LIMIT) -> str:
    """A link showing ``label`` as code to ``url``: an ``http(s)`` URL or a relative path,
    percent-encoded; anything else (``javascript:``, ``data:``) gives the label alone."""
    parts = urlsplit(url)
    if parts.scheme not in ("", "http", "https") or (not parts.scheme and parts.netloc):
        return code(label, limit)
    return f"[{code(label, limit)}]({quote(url, safe='/:#?&=%@+,;~')})"


def capped(blocks: Sequence[str], note: Callable[[int], str], limit: int = MAX_BYTES) -> str:
    """``blocks`` joined and ``note(n)`` after them, where ``n`` is how many blocks were dropped
    from the end so that the whole is at most ``limit`` UTF-8 bytes (``note(0)`` may be "")."""
    ends = list(accumulate((len(b.encode("utf-8", "replace")) for b in blocks), initial=0))
    kept = bisect_right(ends, limit) - 1  # the most blocks that fit without the note
    while kept > 0 and ends[kept] + len(note(len(blocks) - kept).encode("utf-8", "replace")) > limit:
        kept -= 1
    return "".join(blocks[:kept]) + note(len(blocks) - kept)
