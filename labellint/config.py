"""Configuration: ``[tool.labellint]`` in pyproject.toml or a labellint.toml, strict keys.

The nearest file walking up from a linted file wins (a ``labellint.toml`` before a
``pyproject.toml`` in the same folder; a pyproject.toml without ``[tool.labellint]`` is passed
over). Unknown keys, rule codes and option names are errors that suggest the nearest valid name.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from labellint.errors import ConfigError
from labellint.fsutil import read_regular
from labellint.findings import Severity
from labellint.registry import Rule

KEYS = ("select", "ignore", "extend-select", "per-file-ignores", "severity", "rules", "fail-on", "ray", "ray-actors",
        "ray-batch")


@dataclass
class Config:
    select: list[str] | None = None
    ignore: list[str] = field(default_factory=list)
    extend_select: list[str] = field(default_factory=list)
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    severity: dict[str, Severity] = field(default_factory=dict)
    rules: dict[str, dict] = field(default_factory=dict)
    fail_on: Severity = Severity.ERROR
    ray: str | None = None  # "auto" or a Ray cluster's address: the images and embeddings passes there
    ray_actors: int = 0  # backbone actors on the cluster (0: one per GPU, else one per CPU)
    ray_batch: int = 0  # images per batch on the cluster (0: the default)
    source: Path | None = None  # the file it came from
    root: Path | None = None  # the folder of that file: per-file-ignores are relative to it


@dataclass
class FileSettings:
    """What the engine needs for one file: enabled rules with their options and severities."""

    rules: list[Rule]
    options: dict[str, dict]
    severity: dict[str, Severity]


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _line_of(text: str, key: str, table: str | None = None) -> int | None:
    start = 0
    if table is not None:  # the key inside [rules.TABLE] ([tool.labellint.rules.TABLE], TABLE = {...}, TABLE.key)
        t = re.search(rf'^\s*\[[^\]]*\brules\.\s*"?{re.escape(table)}"?\s*\]|\b"?{re.escape(table)}"?\s*(=\s*\{{|\.)',
                      text, re.M | re.I)
        if t is not None:
            start = t.start()
    m = re.compile(rf'(^|[{{,.])\s*"?{re.escape(key)}"?\s*=', re.M).search(text, start) if table is not None else None
    if m is not None:
        return text.count("\n", 0, m.end()) + 1
    m = re.search(rf'^\s*"?{re.escape(key)}"?\s*=', text, re.M)
    if m is None:
        m = re.search(rf"^\s*\[[^\]]*{re.escape(key)}[^\]]*\]", text, re.M)
    if m is None:  # a value inside a list, such as a code in select = [...]
        m = re.search(rf"[\"']{re.escape(key)}[\"']", text)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _error(msg: str, source: Path | None, text: str = "", key: str | None = None,
           table: str | None = None) -> ConfigError:
    line = _line_of(text, key, table) if (text and key) else None
    return ConfigError(msg, str(source) if source else None, line, 1 if line else None)


def match_codes(patterns, rules: dict[str, Rule], source=None, text="", what="code") -> set[str]:
    """Codes matched by exact codes, prefixes like 'LL1' or 'ALL'."""
    out: set[str] = set()
    for pat in patterns:
        if not isinstance(pat, str):
            raise _error(f"{what} entries must be strings, got {pat!r}", source, text)
        p = pat.strip().upper()
        if p == "ALL":
            out.update(rules)
            continue
        hits = {c for c in rules if c.startswith(p)}
        if not hits:
            raise _error(f"unknown rule code '{pat}' in {what}{_suggest(p, rules)}", source, text, pat)
        out.update(hits)
    return out


def check_cli_codes(rules: dict[str, Rule], select=None, ignore=(), extend_select=()) -> None:
    """Rule codes given on the command line, checked once before any file is read: a wrong one
    is one error that names its option (``unknown rule code 'LL9' in --select``)."""
    for option, codes in (("--select", select or ()), ("--ignore", ignore), ("--extend-select", extend_select)):
        match_codes(codes, rules, what=option)


def parse(table: dict, rules: dict[str, Rule], source: Path | None = None, text: str = "") -> Config:
    cfg = Config(source=source, root=source.parent if source else None)
    for key, value in table.items():
        if key not in KEYS:
            raise _error(f"unknown key '{key}'{_suggest(key, KEYS)}", source, text, key)
    def code_list(key):
        value = table.get(key, [])
        if not isinstance(value, list):
            raise _error(f"'{key}' must be a list of rule codes", source, text, key)
        match_codes(value, rules, source, text, key)  # validates
        return [str(v) for v in value]
    if "select" in table:
        cfg.select = code_list("select")
    cfg.ignore = code_list("ignore")
    cfg.extend_select = code_list("extend-select")
    pfi = table.get("per-file-ignores", {})
    if not isinstance(pfi, dict):
        raise _error("'per-file-ignores' must be a table of glob = [codes]", source, text, "per-file-ignores")
    for glob, codes in pfi.items():
        if not isinstance(codes, list):
            raise _error(f"per-file-ignores '{glob}' must be a list of codes", source, text, glob)
        match_codes(codes, rules, source, text, "per-file-ignores")
        cfg.per_file_ignores[glob] = codes
    sev = table.get("severity", {})
    if not isinstance(sev, dict):
        raise _error("'severity' must be a table of CODE = level", source, text, "severity")
    for code, level in sev.items():
        for c in match_codes([code], rules, source, text, "severity"):
            try:
                cfg.severity[c] = Severity.parse(level)
            except ValueError as exc:
                raise _error(str(exc), source, text, code) from None
    rule_opts = table.get("rules", {})
    if not isinstance(rule_opts, dict):
        raise _error("'rules' must be a table of [rules.CODE] tables", source, text, "rules")
    for code, opts in rule_opts.items():
        rule = rules.get(str(code).upper())
        if rule is None:
            raise _error(f"unknown rule code '{code}' in rules{_suggest(str(code).upper(), rules)}", source, text, code)
        if not isinstance(opts, dict):
            raise _error(f"rules.{code} must be a table of options", source, text, code)
        cfg.rules[rule.code] = validate_options(rule, opts, source, text, table=str(code))
    if "ray" in table:
        value = table["ray"]
        if not isinstance(value, str) or not value.strip():
            raise _error("'ray' must be \"auto\" or a Ray cluster's address (HOST:PORT)", source, text, "ray")
        cfg.ray = value.strip()
    for key in ("ray-actors", "ray-batch"):
        if key in table:
            value = table[key]
            if type(value) is not int or not 0 < value <= 100_000:
                raise _error(f"'{key}' must be a whole number from 1 to 100000, got {_shown(value)}", source, text, key)
            setattr(cfg, key.replace("-", "_"), value)
    if "fail-on" in table:
        try:
            cfg.fail_on = Severity.parse(table["fail-on"])
        except ValueError as exc:
            raise _error(str(exc), source, text, "fail-on") from None
    return cfg


def validate_options(rule: Rule, opts: dict, source=None, text="", table: str | None = None) -> dict:
    """The options of ``rule`` from a config table, each of its default's type and within the
    rule's range for it (``OPTION_RANGES``; by default any finite float, an int from 0): a value a
    rule cannot work with (nan, a negative count) is an error at its line, never a crash or a
    silently disabled rule."""
    out = {}
    for name, value in opts.items():
        if name not in rule.options:
            valid = ", ".join(rule.options) or "none"
            raise _error(f"unknown option '{name}' for {rule.code}{_suggest(name, rule.options)}; options: {valid}",
                         source, text, name, table)
        default = rule.options[name]
        ok = isinstance(value, type(default)) or (isinstance(default, float) and isinstance(value, int))
        if isinstance(value, bool) != isinstance(default, bool):
            ok = False
        if default is not None and not ok:
            raise _error(f"option '{name}' of {rule.code} must be {type(default).__name__}, got {_shown(value)}",
                         source, text, name, table)
        allowed = rule.option_range(name)
        if allowed is not None and value not in allowed:
            raise _error(f"option '{name}' of {rule.code} must be {allowed}, got {_shown(value)}",
                         source, text, name, table)
        out[name] = float(value) if isinstance(default, float) else value
    return out


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "\u2026"


def _read(path: Path) -> tuple[dict | None, str]:
    # a regular file of bounded size only (fsutil.read_regular), newlines read as read_text reads them
    raw = read_regular(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[:exc.start]
        line = before.count(b"\n") + 1
        col = len(before) - (before.rfind(b"\n") + 1) + 1
        raise ConfigError("not UTF-8 text (TOML files are UTF-8)", str(path), line, col) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise ConfigError("arrays or tables nested too deep", str(path), 1, 1) from None
    except ValueError as exc:  # e.g. Python's limit on the digits of an integer literal
        if not isinstance(exc, tomllib.TOMLDecodeError):
            long = re.search(r"[0-9_]{%d,}" % sys.get_int_max_str_digits(), text)
            at = long.start() if long else 0
            line = text.count("\n", 0, at) + 1
            col = at - (text.rfind("\n", 0, at) + 1) + 1
            raise ConfigError("a number too long to read", str(path), line, col) from None
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        msg = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(exc))
        if m:
            line, col = int(m.group(1)), int(m.group(2))
        else:  # "at end of document"
            lines = text.split("\n")
            line, col = len(lines), len(lines[-1]) + 1
        raise ConfigError(f"invalid TOML: {msg}", str(path), line, col) from None
    if path.name == "pyproject.toml":
        tool = data.get("tool", {})
        return (tool.get("labellint") if isinstance(tool, dict) else None), text
    return data, text


@lru_cache(maxsize=256)
def find(directory: Path) -> tuple[Path, dict, str] | None:
    """The nearest configuration at or above ``directory``: (file, table, text)."""
    for folder in (directory, *directory.parents):
        for name in ("labellint.toml", "pyproject.toml"):
            candidate = folder / name
            if candidate.is_file():
                table, text = _read(candidate)
                if table is not None:
                    return candidate, table, text
    return None


def load_for(path: Path, rules: dict[str, Rule], explicit: Path | None = None) -> Config:
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError("no such config file", str(explicit))
        table, text = _read(explicit)
        return parse(table or {}, rules, explicit, text)
    found = find(path.resolve().parent)
    if found is None:
        return Config()
    source, table, text = found
    return parse(table, rules, source, text)


def settings_for(cfg: Config, rules: dict[str, Rule], relpath: str, abspath: Path | None,
                 cli_select=None, cli_ignore=(), cli_extend_select=()) -> FileSettings:
    # codes from the config file were checked (with file and line) when it was parsed, those of
    # the command line by check_cli_codes: ``what`` only names the option should one slip through
    if cli_select is not None:
        enabled = match_codes(cli_select, rules, what="--select")
    else:
        enabled = match_codes(cfg.select, rules, what="select") if cfg.select is not None else set(rules)
    enabled |= match_codes(cfg.extend_select, rules, what="extend-select")
    enabled |= match_codes(cli_extend_select, rules, what="--extend-select")
    enabled -= match_codes(cfg.ignore, rules, what="ignore")
    enabled -= match_codes(cli_ignore, rules, what="--ignore")
    for glob, codes in cfg.per_file_ignores.items():
        target = relpath
        if cfg.root is not None and abspath is not None:
            try:
                target = abspath.resolve().relative_to(cfg.root.resolve()).as_posix()
            except ValueError:
                pass
        if fnmatch.fnmatch(target, glob) or fnmatch.fnmatch(Path(target).name, glob):
            enabled -= match_codes(codes, rules, what="per-file-ignores")
    chosen = [rules[c] for c in sorted(enabled)]
    return FileSettings(
        rules=chosen,
        options={r.code: {**r.options, **cfg.rules.get(r.code, {})} for r in chosen},
        severity={r.code: cfg.severity.get(r.code, r.severity) for r in chosen},
    )
