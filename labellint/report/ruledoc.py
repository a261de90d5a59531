"""A rule's documentation sections, parsed once per rule however many reports quote them."""

from __future__ import annotations

from functools import lru_cache
from types import MappingProxyType
from typing import Mapping

from labellint.registry import doc_sections


def sections(rule) -> Mapping[str, str]:
    """``## title`` -> its text, for ``rule``'s docstring (read-only: the parse is shared)."""
    return _parsed(rule.doc)


@lru_cache(maxsize=1024)  # keyed on the text itself: what is parsed, whatever rule carries it
def _parsed(doc: str) -> Mapping[str, str]:
    return MappingProxyType(doc_sections(doc))
