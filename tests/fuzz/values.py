"""Values a fuzz case is made of, and the writers that turn them into JSON or TOML bytes.

A case is a tree of plain JSON values (dict, list, str, int, float, bool, None) plus a few tokens
for what Python's own writers cannot produce: an object with a repeated key (:class:`Pairs`),
verbatim text (:class:`Raw`: ``1e999``, ``-0``, an escaped lone surrogate), nesting thousands deep
(:class:`Deep`), integers of thousands of digits (:class:`BigInt`, beyond what ``str(int)`` writes)
and strings of megabytes (:class:`HugeStr`). Each token knows a smaller version of itself, so
that the shrinker can make a failing case small without losing what makes it fail.
"""

from __future__ import annotations

import json
import math
import re


class Token:
    """A value written verbatim; ``smaller()`` is a smaller token of the same kind, or None."""

    def json_text(self) -> str:
        raise NotImplementedError

    def toml_text(self) -> str:
        return self.json_text()

    def smaller(self):
        return None

    def __repr__(self) -> str:
        text = self.json_text()
        return text if len(text) <= 60 else f"{text[:40]}...({len(text)} chars)"


class Raw(Token):
    def __init__(self, text: str):
        self.text = text

    def json_text(self) -> str:
        return self.text


class Deep(Token):
    """``n`` nested arrays (``[[[...]]]``) or objects (``{"a":{"a":...}}``)."""

    def __init__(self, n: int, kind: str = "["):
        self.n, self.kind = n, kind

    def json_text(self) -> str:
        if self.kind == "[":
            return "[" * self.n + "]" * self.n
        return '{"a":' * self.n + "1" + "}" * self.n

    def toml_text(self) -> str:
        if self.kind == "[":
            return self.json_text()
        return "{a = " * self.n + "1" + " }" * self.n

    def smaller(self):
        return Deep(self.n // 2, self.kind) if self.n > 1 else None

    def __repr__(self) -> str:
        return f"<{self.n} nested {'arrays' if self.kind == '[' else 'objects'}>"


class BigInt(Token):
    """A whole number of ``digits`` digits (Python refuses to print more than 4300)."""

    def __init__(self, digits: int, negative: bool = False):
        self.digits, self.negative = digits, negative

    def json_text(self) -> str:
        return ("-" if self.negative else "") + "9" * self.digits

    def smaller(self):
        return BigInt(self.digits // 2, self.negative) if self.digits > 1 else None

    def __repr__(self) -> str:
        return f"<{'-' if self.negative else ''}{self.digits}-digit int>"


class HugeStr(Token):
    def __init__(self, n: int, unit: str = "a"):
        self.n, self.unit = n, unit

    def value(self) -> str:
        return self.unit * self.n

    def json_text(self) -> str:
        return json.dumps(self.value(), ensure_ascii=False)

    def smaller(self):
        return HugeStr(self.n // 2, self.unit) if self.n > 1 else None

    def __repr__(self) -> str:
        return f"<{self.n} x {self.unit!r}>"


class Pairs:
    """A JSON object that may repeat a key: its (key, value) pairs in order."""

    def __init__(self, items):
        self.items = list(items)

    def __repr__(self) -> str:
        return "Pairs(" + ", ".join(f"{k!r}: {v!r}" for k, v in self.items)[:80] + ")"


# -- the catalogue of hostile values --------------------------------------------------------------

def extreme_numbers():
    return [0, -1, 1, -0.0, 0.5, 1e-320, 5e-324, 1e308, -1e308, 1.7976931348623157e308, math.nan, math.inf,
            -math.inf, 2**31 - 1, 2**31, 2**32, 2**32 + 1, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 2**70, -2**63 - 1,
            -2**70, Raw("1e999"), Raw("-1e999"), Raw("-0"), Raw("1E400"), Raw("0.0000000000000000000000001"),
            Raw("1" + "0" * 400 + ".5"), BigInt(5000), BigInt(5000, negative=True), BigInt(25), True, False, None]


def hostile_strings():
    return ["", " ", "\x00", "a\x00b", "\x1b[31mred\x1b[0m", "\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\",
            "\x9b31m", "\x07bell", "\u202eevil\u202c", "\u2066isolate", "\u200f", "line\u2028sep", "para\u2029sep",
            "cr\rreturn", "new\nline", "tab\there", "[bold red]markup[/]", "[/]", "[link=file:///etc/passwd]x[/link]",
            ":smile:", "%0A::error::injected", "\n::error file=x::injected", "::warning::x",
            "</script><fuzz-xss onerror=1>", "<img src=x onerror=fuzz()>", "{{7*7}}", "${HOME}", "%s%n%x",
            "../../../etc/passwd", "/etc/passwd", "..\\..\\windows\\win.ini", "C:\\x.jpg", "~/.ssh/id_rsa",
            "a/../../b.jpg", "images/../../x.jpg", "./a.jpg", "a//b.jpg", "file:///etc/passwd", "\\\\server\\share\\x.jpg",
            "/dev/zero", "/proc/self/environ", "CON", "nul.jpg", "a" * 300 + ".jpg", "d/" * 2000 + "x.jpg",
            Raw('"\\ud800"'), Raw('"\\udfff\\ud800"'), Raw('"\\u0000"'), "\ufeffbom", "\ufffd", "🙂", "e\u0301", "ｉｍｇ.jpg",
            "1", "1e5", "NaN", "true", "null", "-", "'; DROP TABLE x; --", HugeStr(200_000), HugeStr(2_000_000),
            HugeStr(50_000, "\u202e"), HugeStr(50_000, "\x1b")]


def odd_containers():
    return [[], {}, [[]], [{}], [1, 2], {"a": 1}, [0] * 10_000, Deep(100), Deep(5_000), Deep(100_000),
            Deep(5_000, "{"), Deep(100_000, "{"), [None], ["x"], Pairs([("a", 1), ("a", 2)])]


# -- writers ------------------------------------------------------------------------------------

def _number(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return repr(v)


def dump_json(value, indent=None, ensure_ascii: bool = False) -> str:
    """JSON text of a case tree (NaN and Infinity as Python writes them; tokens verbatim)."""
    out: list[str] = []
    item_sep, key_sep = (",", ":") if indent is None else (",", ": ")
    pad = "" if indent is None else (indent if isinstance(indent, str) else " " * indent)

    def emit(v, level):
        nl = "" if indent is None else "\n" + pad * (level + 1)
        end = "" if indent is None else "\n" + pad * level
        if isinstance(v, Token):
            out.append(v.json_text())
        elif v is None:
            out.append("null")
        elif isinstance(v, str):
            out.append(json.dumps(v, ensure_ascii=ensure_ascii))
        elif isinstance(v, (bool, int, float)):
            out.append(_number(v))
        elif isinstance(v, (dict, Pairs)):
            items = v.items if isinstance(v, Pairs) else list(v.items())
            if not items:
                out.append("{}")
                return
            out.append("{")
            for i, (k, x) in enumerate(items):
                out.append((item_sep if i else "") + nl + json.dumps(str(k), ensure_ascii=ensure_ascii) + key_sep)
                emit(x, level + 1)
            out.append(end + "}")
        elif isinstance(v, (list, tuple)):
            if not v:
                out.append("[]")
                return
            out.append("[")
            for i, x in enumerate(v):
                out.append((item_sep if i else "") + nl)
                emit(x, level + 1)
            out.append(end + "]")
        else:
            raise TypeError(f"not a case value: {type(v).__name__}")

    emit(value, 0)
    return "".join(out)


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(k) -> str:
    k = str(k)
    return k if _BARE_KEY.match(k) else json.dumps(k)


def _toml_value(v) -> str:
    if isinstance(v, Token):
        return v.toml_text()
    if v is None:  # TOML has no null: the nearest thing a hand-written file holds
        return '""'
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, (dict, Pairs)):
        items = v.items if isinstance(v, Pairs) else list(v.items())
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in items) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"not a case value: {type(v).__name__}")


def dump_toml(table) -> str:
    """TOML text of a case tree whose root is a table: nested tables as [sections]."""
    lines: list[str] = []

    def section(items, header):
        nested = []
        if header:
            lines.append(f"[{'.'.join(_toml_key(h) for h in header)}]")
        for k, v in items:
            if isinstance(v, (dict, Pairs)):
                nested.append((k, v))
            else:
                lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        for k, v in nested:
            section(v.items if isinstance(v, Pairs) else list(v.items()), header + [k])

    if isinstance(table, (dict, Pairs)):
        section(table.items if isinstance(table, Pairs) else list(table.items()), [])
    else:  # a mutation replaced the whole table: write the value as a key's, as a typo would
        lines.append(f"select = {_toml_value(table)}")
    return "\n".join(lines) + "\n"
