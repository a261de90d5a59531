"""Rule fixtures (``tests/fixtures/rules/LLNNN.toml``): reading them, and running one case through
the real CLI. ``tests/test_rule_fixtures.py`` holds the tests; the format is described there.

Everything here goes through ``labellint check ... -f json`` and the bytes ``--fix`` writes: no
engine API, so the fixtures pin what a user sees.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from click.testing import CliRunner

from labellint.cli import cli

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "rules"
FILE_NAME = "ann.json"  # the case's document, as the CLI sees it (relative to the temp folder)

CASE_KEYS = {"name", "doc", "options", "expect", "fix_str", "fix_mode", "images", "predictions", "earlier"}
# what an expected finding may say; "pointer" and "message" are required
FINDING_KEYS = {"pointer", "message", "annotation_id", "image_id", "category_id", "severity", "suggestion",
                "fix", "path"}
_ENTITY_ID = {"annotations": "annotation_id", "images": "image_id", "categories": "category_id"}
_ENTRY = re.compile(r"^/(annotations|images|categories)/\d+(?:/|$)")


@dataclass(frozen=True)
class Case:
    code: str
    name: str
    doc: str  # the COCO file's exact text
    expect: list[dict]
    options: dict = field(default_factory=dict)
    fix_str: str | None = None
    fix_mode: str | None = None  # "safe" (--fix) or "unsafe" (--unsafe-fixes); default: the rule's FIX
    images: dict = field(default_factory=dict)  # {file name under the image root: spec of rule_examples.py}
    predictions: str | None = None  # the --predictions file's text
    earlier: dict = field(default_factory=dict)  # {file name: COCO text} linted before the case's file

    @property
    def id(self) -> str:
        return f"{self.code}/{self.name}"


def _text(value) -> str:
    """A document given as a string is taken byte for byte; as a table, as compact JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _check_expected(code: str, name: str, finding: dict) -> None:
    where = f"{code} case {name!r}"
    unknown = set(finding) - FINDING_KEYS
    assert not unknown, f"{where}: unknown keys {sorted(unknown)} in an expected finding"
    assert {"pointer", "message"} <= set(finding), f"{where}: an expected finding needs 'pointer' and 'message'"
    m = _ENTRY.match(finding["pointer"])
    if m:  # the id of the entry the finding is about is part of every expectation
        key = _ENTITY_ID[m.group(1)]
        assert key in finding, f"{where}: a finding at {finding['pointer']} must give its {key}"


def load_cases(path: Path) -> list[Case]:
    """The cases of one fixture file, strictly checked (a misspelt key fails here, not silently)."""
    code = path.stem
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise AssertionError(f"{path}: {exc}") from None
    assert set(data) == {"case"}, f"{path.name}: only [[case]] tables, got {sorted(data)}"
    cases = []
    for raw in data["case"]:
        unknown = set(raw) - CASE_KEYS
        assert not unknown, f"{path.name}: unknown case keys {sorted(unknown)}"
        name = raw.get("name")
        assert name and {"doc", "expect"} <= set(raw), (
            f"{path.name}: case {name!r} has {sorted(raw)}; every case needs name, doc and expect before its "
            "[[case.expect]] or [case.earlier] tables")
        for finding in raw["expect"]:
            _check_expected(code, name, finding)
        assert raw.get("fix_mode") in (None, "safe", "unsafe"), f"{code} {name}: fix_mode is safe or unsafe"
        cases.append(Case(code=code, name=name, doc=_text(raw["doc"]), expect=raw["expect"],
                          options=raw.get("options", {}), fix_str=raw.get("fix_str"), fix_mode=raw.get("fix_mode"),
                          images=raw.get("images", {}),
                          predictions=_text(raw["predictions"]) if "predictions" in raw else None,
                          earlier={k: _text(v) for k, v in raw.get("earlier", {}).items()}))
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), f"{path.name}: case names must be unique"
    return cases


def all_cases() -> dict[str, list[Case]]:
    return {p.stem: load_cases(p) for p in sorted(FIXTURES.glob("*.toml"))}


# -- writing a case out and running the CLI on it --------------------------------------------------


def toml_value(value) -> str:
    """A rule option as TOML (the few types options have)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        assert math.isfinite(value), value
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"option value {value!r} has no TOML form here")


def config_text(code: str, options: dict) -> str:
    if not options:
        return "# no options: the rule's defaults\n"
    return f"[rules.{code}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in options.items())


def prepare(case: Case, folder: Path) -> list[str]:
    """Write the case's files into ``folder`` (the CLI's working directory) and return the arguments
    that follow ``check``: the files, the selection, the config and the run inputs."""
    (folder / "labellint.toml").write_text(config_text(case.code, case.options), encoding="utf-8")
    for name, text in case.earlier.items():
        (folder / name).write_text(text, encoding="utf-8")
    (folder / FILE_NAME).write_bytes(case.doc.encode("utf-8"))
    args = [*case.earlier, FILE_NAME, "--select", case.code, "--config", "labellint.toml"]
    if case.images:
        from rule_examples import build_images  # PIL and the picture builders only when a case needs them

        try:
            layout = json.loads(case.doc)
        except ValueError:  # a deliberately broken file: only a board needs the layout
            layout = {}
        root = build_images(folder, case.images, layout)
        args += ["--images", str(root.relative_to(folder)), "--no-cache"]
    if case.predictions is not None:
        (folder / "predictions.json").write_text(case.predictions, encoding="utf-8")
        args += ["--predictions", "predictions.json"]
    return args


def run(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of the CLI run in this process, in ``cwd``."""
    old = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(cli, ["check", *args], catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.stdout, result.stderr


def report(case: Case, args: list[str], cwd: Path) -> dict:
    """The JSON report of a run, checked to be a real one: no input error, and the rule not skipped
    (a skipped rule reports nothing, and a pass case would pass without it having run)."""
    code, out, err = run([*args, "-f", "json"], cwd)
    assert code in (0, 1), f"{case.id}: exit {code}\n{err}"
    doc = json.loads(out)
    assert not doc["errors"], f"{case.id}: {doc['errors']}"
    assert not doc["skipped_rules"], f"{case.id}: the rule did not run: {doc['skipped_rules']}"
    return doc


# -- comparing findings ----------------------------------------------------------------------------


NULL = "null"  # TOML has no null: an expected id or suggestion of "null" is JSON's null


def _matches(expected: dict, found: dict) -> bool:
    for key, want in expected.items():
        if want == NULL and key != "message":
            want = None
        if key == "message":
            if want not in found["message"]:
                return False
        elif key == "fix":
            got = found["fix"]["safety"] if found["fix"] else "none"
            if got != want:
                return False
        elif found.get(key) != want:
            return False
    return True


def _shown(found: dict) -> str:
    ids = ", ".join(f"{k}={found[k]}" for k in ("annotation_id", "image_id", "category_id") if found[k] is not None)
    fix = found["fix"]["safety"] if found["fix"] else "none"
    return f"{found['path']} {found['pointer'] or '(file)'} [{ids}] fix={fix}: {found['message']}"


def mismatch(expected: list[dict], findings: list[dict]) -> str | None:
    """None when ``findings`` are exactly the ``expected`` ones (each matched once, in any order;
    ``path`` defaults to the case's file); else what differs, for the failure message."""
    left = list(findings)
    missing = []
    for want in expected:
        want = {"path": FILE_NAME, **want}
        hit = next((f for f in left if _matches(want, f)), None)
        if hit is None:
            missing.append(want)
        else:
            left.remove(hit)
    if not missing and not left:
        return None
    lines = ["expected but not reported:"] + [f"  {w}" for w in missing]
    lines += ["reported but not expected:"] + [f"  {_shown(f)}" for f in left]
    return "\n".join(lines)
