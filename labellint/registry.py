"""Find the rules: built-in modules in ``labellint.rules`` and the entry point group of that name.

A rule is a module (or any object) with ``CODE``, ``NAME``, ``SEVERITY``, ``OPTIONS``, ``FIX``,
a docstring with the sections below, and ``check(dataset, options)`` yielding
:class:`labellint.findings.Problem`. Optional ``REQUIRES``: a tuple of run inputs the rule needs
(for example ``("images",)``); without them the rule is listed as skipped, never silently absent.
``FIX`` rates the automatic fix the rule attaches to its typical finding (``Problem.fix``):
``none`` (it attaches none), ``safe`` or ``unsafe``; one finding's fix may be rated riskier than
the rule's (a clip that keeps less than half of a box is unsafe).
Optional hooks: ``prepare(dataset, options)``, run for every enabled rule of a file before any
``check`` (rules that share one image pass say there what they need from it), and
``check_many(datasets, options)``, run once over all the files linted together, yielding
``(position in datasets, Problem)`` for problems that span files (e.g. train/val leakage).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Callable

from labellint.findings import Severity

DOC_SECTIONS = ("What it does", "Why it matters", "Example", "Options", "Fix")
FIX_SAFETY = ("none", "safe", "unsafe")
_CODE = re.compile(r"^[A-Z]{2,5}[0-9]{3}$")


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    severity: Severity
    options: dict
    fix: str
    doc: str
    check: Callable = field(compare=False, repr=False)
    requires: tuple = ()
    origin: str = "built-in"
    # optional hooks: prepare(ds, options) runs for every rule of a file before any check, so that
    # rules sharing work (one image decode) can say what they need; check_many(datasets, options)
    # yields (position, Problem) for problems that span the files linted together
    prepare: Callable | None = field(default=None, compare=False, repr=False)
    check_many: Callable | None = field(default=None, compare=False, repr=False)

    @property
    def summary(self) -> str:
        return self.doc.strip().splitlines()[0].strip() if self.doc.strip() else self.name

    def section(self, title: str) -> str:
        """The text under ``## title`` in the docstring."""
        return doc_sections(self.doc).get(title, "")

    def examples(self) -> dict[str, list[str]]:
        """The ```json bad``` and ```json good``` snippets of the Example section."""
        out: dict[str, list[str]] = {"bad": [], "good": []}
        for kind, body in re.findall(r"```json (bad|good)\n(.*?)```", self.section("Example"), re.S):
            out[kind].append(body)
        return out


def doc_sections(doc: str) -> dict[str, str]:
    parts = re.split(r"^## (.+)$", doc, flags=re.M)
    return {parts[i].strip(): parts[i + 1].strip("\n") for i in range(1, len(parts) - 1, 2)}


class RuleError(Exception):
    pass


def rule_from_module(obj, origin: str = "built-in") -> Rule:
    name = getattr(obj, "__name__", repr(obj))
    try:
        code, rname = obj.CODE, obj.NAME
        severity = Severity.parse(obj.SEVERITY)
        options = dict(getattr(obj, "OPTIONS", {}))
        fix = getattr(obj, "FIX", "none")
        check = obj.check
    except (AttributeError, ValueError) as exc:
        raise RuleError(f"{name}: not a valid rule ({exc})") from None
    if not _CODE.match(code):
        raise RuleError(f"{name}: code {code!r} must be 2-5 capital letters and 3 digits, like ABC001")
    if fix not in FIX_SAFETY:
        raise RuleError(f"{name}: FIX must be one of {', '.join(FIX_SAFETY)}")
    return Rule(code, rname, severity, options, fix, obj.__doc__ or "", check,
                tuple(getattr(obj, "REQUIRES", ())), origin,
                getattr(obj, "prepare", None), getattr(obj, "check_many", None))


def _builtin_modules():
    import labellint.rules as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{pkg.__name__}.{info.name}")
        if hasattr(module, "CODE"):
            yield module


@lru_cache(maxsize=1)
def discover() -> tuple[tuple[Rule, ...], tuple[str, ...]]:
    """All rules, sorted by code, and warnings about third-party rules that could not load."""
    rules: dict[str, Rule] = {}
    warnings: list[str] = []
    for module in _builtin_modules():
        rule = rule_from_module(module)
        if rule.code in rules:
            raise RuleError(f"duplicate rule code {rule.code}")
        rules[rule.code] = rule
    for ep in entry_points(group="labellint.rules"):
        try:
            rule = rule_from_module(ep.load(), origin=ep.value)
        except Exception as exc:  # a broken plugin must not take the linter down
            warnings.append(f"rule plugin {ep.name} ({ep.value}) skipped: {exc}")
            continue
        if rule.code in rules:
            warnings.append(f"rule plugin {ep.name} skipped: code {rule.code} is already taken")
            continue
        rules[rule.code] = rule
    return tuple(sorted(rules.values(), key=lambda r: r.code)), tuple(warnings)


def all_rules() -> tuple[Rule, ...]:
    return discover()[0]


def by_code() -> dict[str, Rule]:
    return {r.code: r for r in all_rules()}
