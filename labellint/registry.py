"""Find the rules: built-in modules in ``labellint.rules`` and the entry point group of that name.

A rule is a module (or any object) with ``CODE``, ``NAME``, ``SEVERITY``, ``OPTIONS``, ``FIX``,
a docstring with the sections below, and ``check(dataset, options, context)`` yielding
:class:`labellint.findings.Problem` (``context``: the :class:`labellint.context.RunContext`; a
``check(dataset, options)`` that needs no context works too). Optional ``REQUIRES``: the passes
(:mod:`labellint.passes`: ``"images"``, ``"embeddings"``, ``"predictions"``) or bare run inputs
the rule needs; the engine runs each pass once per file and the rule reads its result with
``context.result(name)``. Without the run inputs behind them (``--images``, a backbone,
``--predictions``) the rule is listed as skipped, never silently absent.
``FIX`` rates the automatic fix the rule attaches to its typical finding (``Problem.fix``):
``none`` (it attaches none), ``safe`` or ``unsafe``; one finding's fix may be rated riskier than
the rule's (a clip that keeps less than half of a box is unsafe).
``OPTION_RANGES`` gives each numeric option the values it accepts, as :class:`Range` or a tuple
``(low, high, ends)`` (``ends`` one of ``[]``, ``(]``, ``[)``, ``()``; None for an open end). An
option it leaves out gets the rule-wide default: any finite number for a float, 0 to 2**62 for
an int. Every value is finite; the config reader checks them all, for built-in and plugin rules
alike, and reports one out of range at its line, so no rule meets a nan or a negative count.
Optional hooks: ``prepare(dataset, options, context)``, run for every enabled rule of a file
after its passes are opened and before they run (a rule that configures a pass says so there:
a pixel limit, crops of some context), and ``check_many(datasets, options, context)``, run once
over all the files linted together, yielding ``(position in datasets, Problem)`` for problems
that span files (e.g. train/val leakage).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
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
    requires: tuple = ()  # the run inputs it needs (those behind its passes): skipped without them
    origin: str = "built-in"
    # optional hooks (see the module docstring), called with (ds or datasets, options, context)
    prepare: Callable | None = field(default=None, compare=False, repr=False)
    check_many: Callable | None = field(default=None, compare=False, repr=False)
    ranges: dict = field(default_factory=dict, compare=False, repr=False)  # option -> Range (OPTION_RANGES)
    passes: tuple | None = None  # the passes it needs, in the order they run (default: from requires)

    def __post_init__(self):
        # one calling convention for the engine, whichever of the two a rule's functions use
        for name in ("check", "prepare", "check_many"):
            fn = getattr(self, name)
            if fn is not None:
                object.__setattr__(self, name, _with_context(fn))
        if self.passes is None:
            from labellint.passes import expand

            object.__setattr__(self, "passes", expand(self.requires))

    def option_range(self, name: str) -> Range | None:
        """The values option ``name`` accepts (its rule's OPTION_RANGES, else the default)."""
        return self.ranges.get(name) or default_range(self.options.get(name))

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


def _with_context(fn: Callable) -> Callable:
    """``fn`` callable as fn(ds, options, context=None), whether it takes the context or not."""
    if getattr(fn, "_takes_context", False):
        return fn
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: assume the full one
        params = []
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    takes = not params or len(positional) >= 3 or any(p.kind == p.VAR_POSITIONAL for p in params)

    @functools.wraps(fn)  # its module and name stay the rule's
    def call(data, options, context=None):
        return fn(data, options, context) if takes else fn(data, options)

    call._takes_context = True
    return call


def doc_sections(doc: str) -> dict[str, str]:
    parts = re.split(r"^## (.+)$", doc, flags=re.M)
    return {parts[i].strip(): parts[i + 1].strip("\n") for i in range(1, len(parts) - 1, 2)}


class RuleError(Exception):
    pass


_INT_MAX = 2**62  # the default top of an int option: numpy's int64 arithmetic on it cannot wrap


@dataclass(frozen=True)
class Range:
    """The values a numeric option accepts: finite numbers from ``low`` to ``high`` (None: no
    bound), each end included or not as ``ends`` says (``"[]"``, ``"(]"``, ``"[)"``, ``"()"``)."""

    low: float | None = None
    high: float | None = None
    ends: str = "[]"

    def __post_init__(self):
        if self.ends not in ("[]", "(]", "[)", "()"):
            raise ValueError(f"range ends must be one of [], (], [), (), got {self.ends!r}")

    @classmethod
    def of(cls, spec) -> Range:
        if isinstance(spec, Range):
            return spec
        return cls(*spec)

    def __contains__(self, value) -> bool:
        try:
            x = float(value)
        except OverflowError:  # an int beyond any float
            return False
        if not math.isfinite(x):
            return False
        if self.low is not None and (x < self.low or (x == self.low and self.ends[0] == "(")):
            return False
        if self.high is not None and (x > self.high or (x == self.high and self.ends[1] == ")")):
            return False
        if isinstance(value, int) and abs(value) > 2**53:  # the float compare above rounds it
            return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)
        return True

    def __str__(self) -> str:
        low = "" if self.low is None else f"{self.low:g}"
        high = "" if self.high is None else f"{self.high:g}"
        if self.low is not None and self.high is not None:
            return f"a number in {self.ends[0]}{low}, {high}{self.ends[1]}"
        if self.low is not None:
            return f"a number {'>' if self.ends[0] == '(' else '>='} {low}"
        if self.high is not None:
            return f"a number {'<' if self.ends[1] == ')' else '<='} {high}"
        return "a finite number"


def default_range(default) -> Range | None:
    """The range of an option its rule does not give one: None for a bool (its type says it all)."""
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        return None
    return Range(0, _INT_MAX) if isinstance(default, int) else Range()


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
    ranges = {}
    for option, spec in dict(getattr(obj, "OPTION_RANGES", {})).items():
        if option not in options:
            raise RuleError(f"{name}: OPTION_RANGES names {option!r}, which is not one of its OPTIONS")
        try:
            ranges[option] = Range.of(spec)
        except (TypeError, ValueError) as exc:
            raise RuleError(f"{name}: OPTION_RANGES[{option!r}]: {exc}") from None
    from labellint.passes import expand, inputs_of

    needs = tuple(getattr(obj, "REQUIRES", ()))
    rule = Rule(code, rname, severity, options, fix, obj.__doc__ or "", check, inputs_of(needs), origin,
                getattr(obj, "prepare", None), getattr(obj, "check_many", None), ranges, expand(needs))
    for option, default in options.items():
        allowed = rule.option_range(option)
        if allowed is not None and default not in allowed:
            raise RuleError(f"{name}: the default {option} = {default!r} is not {allowed}")
    return rule


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
