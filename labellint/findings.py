"""Findings: what rules report, how they rank and how they are fingerprinted."""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from labellint import limits


class Severity(enum.IntEnum):
    """Ordered so that ``max()`` and comparisons with ``fail-on`` work."""

    INFO = 1
    WARNING = 2
    ERROR = 3

    @classmethod
    def parse(cls, value: str | Severity) -> Severity:
        if isinstance(value, Severity):
            return value
        try:
            return cls[str(value).strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {value!r} (use error, warning or info)") from None

    def __str__(self) -> str:
        return self._name_.lower()  # not .name: a descriptor, slow on tens of thousands of findings


@dataclass(frozen=True)
class Edit:
    """One change to the file: set a field of an entry, delete the entry, or append a new one.

    ``section``/``index`` name the entry by its position (``/annotations/12``), as Problems do;
    ``value`` is plain JSON (numbers, strings, lists). An appended entry (``index`` -1, ``value``
    its fields) gets the next unused id when the edits are applied."""

    section: str  # "images", "annotations" or "categories"
    index: int
    op: str  # "set", "delete" or "append"
    field: str | None = None
    value: Any = None


@dataclass(frozen=True)
class Fix:
    """What a rule proposes: a title for the summary, the edits, and how safe they are.

    ``safe``: applied by ``check --fix``; ``unsafe``: only with ``--unsafe-fixes`` (it may change
    what the data means, such as a class)."""

    title: str
    edits: tuple[Edit, ...] | Callable[[], tuple[Edit, ...]]  # a callable is run only when needed
    safety: str = "safe"

    def resolved(self) -> tuple[Edit, ...]:
        """The edits (computed on first use when the rule gave a callable: costly fixes, such as
        rasterising a polygon, cost nothing in a run that does not fix)."""
        if callable(self.edits):
            object.__setattr__(self, "edits", tuple(self.edits()))
        return self.edits

    def entities(self) -> set[tuple[str, int]]:
        """The existing entries it edits (an appended entry is no existing one)."""
        return {(e.section, e.index) for e in self.resolved() if e.op != "append"}


def set_field(section: str, index: int, name: str, value: Any) -> Edit:
    return Edit(section, int(index), "set", name, value)


def delete(section: str, index: int) -> Edit:
    return Edit(section, int(index), "delete")


def append(section: str, fields: dict) -> Edit:
    """A new entry at the end of ``section``, with ``fields`` and the next unused id."""
    return Edit(section, -1, "append", None, dict(fields))


@dataclass
class Problem:
    """What a rule yields: a message about entities, located by their index in the file.

    Rules know array positions (``annotation=12`` is ``/annotations/12``), never lines or files;
    the engine turns a Problem into a located, fingerprinted :class:`Finding`.
    ``pointer`` overrides the entity's JSON pointer (for file-level problems, or a field).
    ``key`` disambiguates two problems of one rule on the same entity id (e.g. duplicate ids).
    """

    message: str
    annotation: int | None = None
    image: int | None = None
    category: int | None = None
    score: float = 1.0
    suggestion: str | None = None
    pointer: str | None = None
    key: str | None = None
    severity: Severity | None = None
    fix: Fix | None = None
    extra: dict | None = None  # rule-specific facts for reporters (e.g. a box's nearest neighbours)
    offset: int | None = None  # byte offset that locates a problem about no entry (a key written twice)


@dataclass
class Finding:
    code: str
    name: str
    severity: Severity
    message: str
    path: str  # path relative to the repository root, forward slashes
    pointer: str
    line: int | None
    column: int | None
    image_id: Any = None
    annotation_id: Any = None
    category_id: Any = None
    score: float = 1.0
    suggestion: str | None = None
    fingerprint: str = ""
    extra: dict = field(default_factory=dict)
    fix: Fix | None = None
    # the entry the pointer leads to, as a row of its section ("annotations", "images",
    # "categories"), so that no reporter parses pointers back; None for a finding about the file
    section: str | None = None
    row: int | None = None

    def __post_init__(self):
        if self.section is None and self.pointer:  # made by hand (a plugin, a test): from its pointer
            self.section, self.row = entry_of(self.pointer)

    def sort_key(self):
        # severity first, then the most confident; the rest only makes the order stable
        return (-int(self.severity), -self.score, self.path, self.line or 0, self.column or 0, self.code)

    @property
    def rule_failed(self) -> bool:
        """This finding stands for a rule that raised (engine.rule_failed): the check is
        incomplete, so no baseline entry or git base ever hides it."""
        return bool(self.extra.get("rule_failed"))

    def location(self) -> str:
        if self.line is None:
            return self.path
        return f"{self.path}:{self.line}:{self.column or 1}"

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "name": self.name,
            "severity": str(self.severity),
            "message": self.message,
            "path": self.path,
            "pointer": self.pointer,
            "line": self.line,
            "column": self.column,
            "image_id": self.image_id,
            "annotation_id": self.annotation_id,
            "category_id": self.category_id,
            "score": round(float(self.score), 6),
            "suggestion": self.suggestion,
            "fingerprint": self.fingerprint,
            "fix": None if self.fix is None else {"safety": self.fix.safety, "title": self.fix.title},
        }


_ENTRY = re.compile(r"^/(annotations|images|categories)/(\d+)(?:/|$)")


def entry_of(pointer: str | None) -> tuple[str | None, int | None]:
    """(section, row) of the entry a JSON pointer leads into (``/images/2/id`` -> images, 2)."""
    m = _ENTRY.match(pointer or "")
    return (m.group(1), int(m.group(2))) if m else (None, None)


def fingerprint(code: str, relpath: str, entity: str) -> str:
    """Stable identity of a finding: never depends on a line number, so edits elsewhere keep it."""
    h = hashlib.sha256(f"{code}\0{relpath}\0{entity}".encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:32]


def fingerprints(code: str, relpath: str, entities: list[str]) -> list[str]:
    """:func:`fingerprint` of many entities of one rule and file."""
    prefix = f"{code}\0{relpath}\0".encode("utf-8", "surrogatepass")
    sha256 = hashlib.sha256
    return [sha256(prefix + e.encode("utf-8", "surrogatepass")).hexdigest()[:32] for e in entities]


def shorten(text: str, limit: int | None = None) -> str:
    """A dataset string as a message quotes it: at most ``limit`` characters (default the
    ``max_quoted_chars`` limit) and an ellipsis. The whole value stays in the file, where the
    finding's pointer leads; repeating a megabyte-long class name in each of its findings would
    multiply the report's size, and nobody reads past the first line of it."""
    if limit is None:
        limit = limits.get("max_quoted_chars")
    return text if len(text) <= limit else text[:limit] + "\u2026"


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters in the middle, keeping its start (what is wrong) and
    its end (often why it matters): the backstop for a message that quotes a dataset string a rule
    did not :func:`shorten`."""
    if len(text) <= limit:
        return text
    tail = limit // 4
    return text[: max(limit - tail - 1, 0)] + "\u2026" + (text[-tail:] if tail else "")


def rank(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=Finding.sort_key)


_ENTITY_ARG = {"annotations": "annotation", "images": "image", "categories": "category"}


def entity_problem(section: str | None, index: int | None, message: str, **kw) -> Problem:
    """A Problem about the entry at ``/section/index`` (no entity when section is None)."""
    if section in _ENTITY_ARG and index is not None:
        kw[_ENTITY_ARG[section]] = index
    return Problem(message, **kw)
