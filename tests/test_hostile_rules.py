"""Hostile input against the engine, the rules' options and the rules themselves (issue 12).

One bad entry or one odd option value must never cost more than itself: a rule that raises is one
finding and the file's other findings stay; an option out of range is a located config error, never
a crash inside a rule; a pile of identical boxes is one finding per box, in bounded memory; a
megabyte-long class name is quoted short.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, coco
from rule_examples import ExampleInputs, constant

from labellint import config, engine, geometry, registry
from labellint.config import tomllib  # tomli before Python 3.11
from labellint.coco import load, load_bytes
from labellint.errors import ConfigError, LabellintError
from labellint.findings import Problem

RULES = registry.all_rules()
BY_CODE = registry.by_code()


def crashed(findings) -> list[str]:
    return [f.message for f in findings if f.extra.get("rule_failed")]


# -- option ranges -------------------------------------------------------------------------------

#: TOML literals of the values a config fuzz tries on every option
FUZZ = {"nan": "nan", "inf": "inf", "-inf": "-inf", "-1": "-1", "0": "0", "1e308": "1e308",
        "2**70": str(2**70), "true": "true"}


@pytest.fixture(scope="module")
def example_inputs(tmp_path_factory) -> ExampleInputs:
    return ExampleInputs(tmp_path_factory.mktemp("hostile-rule-inputs"))


def _lint_with(rule, cfg_path: Path, example: Path, context: dict, earlier: dict) -> list:
    """The rule's findings on its bad example, with the options of the config file at ``cfg_path``
    read by the real reader (a ConfigError propagates)."""
    cfg = config.load_for(example, BY_CODE, cfg_path)
    settings = config.settings_for(cfg, BY_CODE, example.name, example, cli_select=[rule.code])
    items = [(load_bytes(json.dumps(doc).encode(), name), settings) for name, doc in earlier.items()]
    items.append((load(example), settings))
    found: list = []
    for ds, _ in items:
        found, skipped = engine.lint(ds, settings, context)
        assert not skipped
    if len(items) > 1:
        found = found + engine.lint_many(items, context)
    return found


@pytest.mark.filterwarnings("error::RuntimeWarning")  # an overflow a rule did not expect is a crash too
@pytest.mark.parametrize("rule", [r for r in RULES if r.options], ids=lambda r: r.code)
def test_every_option_value_is_a_located_config_error_or_a_clean_lint(rule, example_inputs, tmp_path):
    (context, earlier), *_ = example_inputs.runs(rule)
    example = tmp_path / "example.json"
    example.write_text(rule.examples()["bad"][0])
    defaults = dict(constant(rule, "EXAMPLE_OPTIONS", {}))
    for name in rule.options:
        for label, literal in FUZZ.items():
            lines = [f"[rules.{rule.code}]", *(f"{k} = {json.dumps(v)}" for k, v in defaults.items() if k != name),
                     f"{name} = {literal}"]
            cfg_path = tmp_path / "labellint.toml"
            cfg_path.write_text("\n".join(lines) + "\n")
            try:
                found = _lint_with(rule, cfg_path, example, context, earlier)
            except ConfigError as exc:
                assert exc.path == str(cfg_path) and exc.line == len(lines), (rule.code, name, label, str(exc))
                assert f"'{name}'" in exc.message, str(exc)
                continue
            except LabellintError as exc:  # the designed errors of a rule, never one about the option
                pytest.fail(f"{rule.code} {name} = {label}: {exc}")
            assert not crashed(found), (rule.code, name, label, crashed(found))


def test_every_built_in_numeric_option_declares_its_range():
    for rule in RULES:
        numeric = {k for k, v in rule.options.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        assert set(rule.ranges) == numeric, f"{rule.code}: OPTION_RANGES must cover {sorted(numeric)}"
        for name in numeric:
            assert rule.options[name] in rule.option_range(name), (rule.code, name)


def test_a_plugin_rule_without_ranges_gets_finite_floats_and_non_negative_ints(tmp_path):
    class Plugin:
        CODE, NAME, SEVERITY, FIX = "XX001", "plugin", "warning", "none"
        OPTIONS = {"ratio": 0.5, "count": 3, "strict": False}
        __doc__ = "A plugin."

        @staticmethod
        def check(ds, options):
            return iter(())

    rule = registry.rule_from_module(Plugin, origin="test")
    rules = {rule.code: rule}
    for text, ok in (("ratio = nan", False), ("ratio = -1e300", True), ("count = -1", False),
                     ("count = 3", True), (f"count = {2**70}", False), ("strict = 1", False)):
        with pytest.raises(ConfigError) if not ok else _nothing():
            config.parse({"rules": {"XX001": dict([_toml_pair(text)])}}, rules, tmp_path / "labellint.toml",
                         f"[rules.XX001]\n{text}\n")
    Plugin.OPTION_RANGES = {"ratio": (0, 1, "(]")}
    assert registry.rule_from_module(Plugin).option_range("ratio") == registry.Range(0, 1, "(]")
    Plugin.OPTION_RANGES = {"ratio": (0.6, 1)}  # its own default outside: the plugin is refused
    with pytest.raises(registry.RuleError, match="default ratio = 0.5"):
        registry.rule_from_module(Plugin)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _toml_pair(text: str):
    return next(iter(tomllib.loads(text).items()))


def test_an_option_out_of_range_is_one_located_error_and_exit_2(tmp_path):
    from click.testing import CliRunner

    from labellint.cli import cli

    data = tmp_path / "ann.json"
    data.write_text(json.dumps(coco()))
    # the same option name in two tables: the error is at the line of the table that is wrong
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent("""\
        [project]
        name = "x"

        [tool.labellint.rules.LL201]
        min_iou = 0.5

        [tool.labellint.rules.LL202]
        min_iou = 0
        """))
    config.find.cache_clear()
    result = CliRunner().invoke(cli, ["check", str(data)], catch_exceptions=False)
    config.find.cache_clear()
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"labellint: error: {tmp_path / 'pyproject.toml'}:8:1: option 'min_iou' of LL202 must be a number in "
        "(0, 1], got 0"]


# -- a rule that fails costs only itself ---------------------------------------------------------


def _rle_doc(**segmentations) -> dict:
    """One image 4x3 (and one 65537x65536), an annotation per RLE given, and a box LL102 reports."""
    images = [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 3},
              {"id": 2, "file_name": "b.jpg", "width": 65537, "height": 65536}]
    anns = [{"id": 100, "image_id": 1, "category_id": 1, "bbox": [1, 0, 0, 3], "area": 0, "iscrowd": 0}]
    for k, (image_id, seg) in enumerate(segmentations.values()):
        anns.append({"id": k + 1, "image_id": image_id, "category_id": 1, "bbox": [1, 0, 2, 3], "area": 6,
                     "iscrowd": 1, "segmentation": seg})
    return coco(images=images, annotations=anns, categories=[{"id": 1, "name": "cat"}])


HOSTILE_RLES = {
    "run above 32 bits, sum right": (2, {"size": [65536, 65537], "counts": [4295032832]}),
    "run above 32 bits": (1, {"size": [3, 4], "counts": [3, 2**40, 3]}),
    "run beyond 64 bits": (1, {"size": [3, 4], "counts": [3, 2**70, 3]}),
    "negative beyond 64 bits": (1, {"size": [3, 4], "counts": [3, -(2**70), 3]}),
    "ragged nesting": (1, {"size": [3, 4], "counts": [[1], [1, 2]]}),
    "no pixels": (7, {"size": [0, 5], "counts": [0, 0]}),
    "more pixels than 32 bits": (7, {"size": [2**20, 2**20], "counts": [2**40]}),
    "compressed run above 32 bits": (1, {"size": [3, 4], "counts": "0" + "o" * 6 + "?"}),
}


def test_out_of_range_rle_counts_are_invalid_rle_findings_and_every_other_finding_stays():
    doc = _rle_doc(**HOSTILE_RLES)
    ds = load_bytes(json.dumps(doc).encode(), "rle.json")
    codes = [r for r in RULES if not r.requires]
    settings = config.FileSettings(codes, {r.code: dict(r.options) for r in codes}, {r.code: r.severity for r in codes})
    found, _ = engine.lint(ds, settings)
    assert not crashed(found)
    invalid = {f.annotation_id: f.message for f in found if f.code == "LL108"}
    assert sorted(invalid) == list(range(1, len(HOSTILE_RLES) + 1)), invalid
    assert "above 4294967295" in invalid[2] and "holds no pixels" in invalid[6]
    assert any(f.code == "LL102" and f.annotation_id == 100 for f in found)


def test_a_rule_that_raises_is_one_error_finding_and_the_others_still_report(tmp_path, monkeypatch):
    from labellint import run

    calls = []

    def explode(ds, options):
        yield from registry.by_code()["LL102"].check(ds, options)  # what it found before failing stays
        calls.append(1)
        raise OverflowError("Python integer 4295032832 out of bounds for uint32")

    real = BY_CODE["LL107"]
    broken = registry.Rule(real.code, real.name, real.severity, real.options, real.fix, real.doc, explode)
    monkeypatch.setitem(BY_CODE, "LL107", broken)
    monkeypatch.setattr(registry, "by_code", lambda: BY_CODE)
    data = tmp_path / "ann.json"
    data.write_text(json.dumps(_rle_doc()))
    (tmp_path / "labellint.toml").write_text('[severity]\nLL107 = "info"\n')
    config.find.cache_clear()
    result = run.check([data], run.Options(select=["LL102", "LL107", "LL113"]))
    config.find.cache_clear()
    assert result.errors == [] and calls == [1]
    failure = [f for f in result.findings if f.extra.get("rule_failed")]
    assert [(f.code, str(f.severity), f.line, f.column, f.pointer) for f in failure] == [("LL107", "error", 1, 1, "")]
    assert failure[0].message.startswith("rule LL107 (polygon-outside-image) failed on this file: OverflowError: ")
    assert "LABELLINT_DEBUG=1" in failure[0].message
    assert {(f.code, f.annotation_id) for f in result.findings if not f.extra.get("rule_failed")} == {
        ("LL102", 100), ("LL107", 100)}  # LL102's own, and the one LL107 yielded before it failed
    assert result.exit_code() == 1  # a failing check, but the file was read: not exit 2
    monkeypatch.setenv("LABELLINT_DEBUG", "1")
    with pytest.raises(OverflowError):
        run.check([data], run.Options(select=["LL107"]))


def test_a_cross_file_rule_that_raises_is_reported_on_each_file():
    def boom(datasets, options):
        raise ValueError("broken")

    rule = registry.Rule("XX002", "across", registry.Severity.WARNING, {}, "none", "Across.", lambda ds, o: iter(()),
                         check_many=boom)
    settings = config.FileSettings([rule], {"XX002": {}}, {"XX002": rule.severity})
    items = [(load_bytes(json.dumps(coco()).encode(), name), settings) for name in ("a.json", "b.json")]
    found = engine.lint_many(items)
    assert [(f.path, f.code, str(f.severity)) for f in found] == [("a.json", "XX002", "error"), ("b.json", "XX002", "error")]
    assert "failed on the files linted together: ValueError: broken" in found[0].message


# -- piles of boxes ------------------------------------------------------------------------------

_PILE = textwrap.dedent("""\
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (300 << 20, 300 << 20))
    from labellint import registry
    from labellint.coco import load_bytes
    from labellint.config import FileSettings
    from labellint.engine import lint
    n = 10_000
    anns = [{"id": i + 1, "image_id": 1, "category_id": 1 + i % 2, "bbox": [10, 10, 20, 20], "area": 400,
             "iscrowd": 0} for i in range(n)]
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}], "annotations": anns,
           "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
    rules = [registry.by_code()[c] for c in ("LL201", "LL202")]
    settings = FileSettings(rules, {r.code: dict(r.options) for r in rules}, {r.code: r.severity for r in rules})
    found, _ = lint(load_bytes(json.dumps(doc).encode(), "pile.json"), settings)
    print(json.dumps([[f.code, f.annotation_id, f.image_id, f.message] for f in found]))
    """)


def test_ten_thousand_identical_boxes_are_one_finding_each_in_bounded_memory():
    env = {"PATH": "", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "LABELLINT_NO_PROGRESS": "1"}
    out = subprocess.run([sys.executable, "-c", _PILE], capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    found = json.loads(out.stdout)
    by_code: dict = {}
    for code, ann_id, image_id, message in found:
        by_code.setdefault(code, []).append((ann_id, message))
    # every copy but the first of its class is a duplicate; every box but the first is in a
    # two-class pile; and each rule says once that the search on the image stopped early
    stopped = [m for code, _, _, m in found if "LABELLINT_MAX_OVERLAP_PAIRS_PER_BOX" in m]
    assert len(stopped) == 2
    assert len(by_code["LL201"]) == 9_998 + 1 and len(by_code["LL202"]) == 9_999 + 1
    assert any("one of 5000 such boxes piled from annotation id 1 " in m for _, m in by_code["LL201"])
    assert all("one of 10000 boxes on one spot" in m and "from annotation id 1 " in m
               for _, m in by_code["LL202"] if "LABELLINT_" not in m)


def test_a_small_pile_names_its_first_box_and_a_lone_pair_is_reported_as_before():
    anns = [{"id": k + 1, "image_id": 1, "category_id": cat, "bbox": [10, 10, 20, 20], "iscrowd": 0}
            for k, cat in enumerate((1, 2, 2, 1))]
    anns += [{"id": 10, "image_id": 2, "category_id": 1, "bbox": [5, 5, 20, 20], "iscrowd": 0},
             {"id": 11, "image_id": 2, "category_id": 2, "bbox": [5, 5, 20, 20], "iscrowd": 0}]
    ds = load_bytes(json.dumps(coco(annotations=anns)).encode(), "ann.json")
    rule = BY_CODE["LL202"]
    found, _ = engine.lint(ds, config.FileSettings([rule], {rule.code: dict(rule.options)}, {rule.code: rule.severity}))
    messages = {f.annotation_id: f.message for f in found}
    assert sorted(messages) == [2, 3, 4, 11]
    assert messages[11] == "labelled 'dog', but overlaps annotation id 10 labelled 'cat' with IoU 1.00: one object, two classes?"
    assert "one of 4 boxes on one spot" in messages[4] and "labelled 2 ways, from annotation id 1 labelled 'cat'" in messages[4]


def test_components_link_a_long_chain_and_leave_lone_rows_alone():
    n = 100_001
    chain = np.arange(0, n - 2, dtype=np.int64)  # 0-1, 1-2, ... given backwards: the worst order for hooking
    labels = geometry.components(chain[::-1] + 1, chain[::-1], n)
    assert (labels[:-1] == 0).all() and labels[-1] == n - 1


# -- output amplification ------------------------------------------------------------------------


def test_a_megabyte_class_name_is_quoted_short_in_every_report(tmp_path):
    from click.testing import CliRunner

    from labellint.cli import cli

    name = "\u00e9" * 1_000_000
    anns = [{"id": k + 1, "image_id": 1, "category_id": 1, "bbox": [k // 2 * 30, 1, 10, 10], "area": 100, "iscrowd": 0}
            for k in range(400)]  # 200 pairs of copies: 200 duplicates, each quoting the class name
    images = [{"id": 1, "file_name": "a.jpg", "width": 6000, "height": 48}]
    data = tmp_path / "ann.json"
    data.write_text(json.dumps(coco(images=images, annotations=anns, categories=[{"id": 1, "name": name}])))
    for fmt in ("json", "github"):
        report = tmp_path / f"out.{fmt}"
        result = CliRunner().invoke(cli, ["check", str(data), "--select", "LL201", "-f", fmt, "-o", str(report)],
                                    catch_exceptions=False)
        assert result.exit_code == 1
        assert report.stat().st_size < 200 * 2048, (fmt, report.stat().st_size)  # 2 KB a finding, not 1 MB
    findings = json.loads((tmp_path / "out.json").read_text())["findings"]
    assert len(findings) == 200 and all(len(f["message"]) < 400 for f in findings)
    assert "\u00e9" * 200 + "\u2026'" in findings[0]["message"]


def test_a_message_that_quotes_a_string_whole_is_clipped_by_the_engine(monkeypatch):
    long_name = "f" * 100_000

    def quote(ds, options):
        yield Problem(f"file '{long_name}' is odd: look at it", image=0, suggestion=long_name)

    rule = registry.Rule("XX003", "quoter", registry.Severity.WARNING, {}, "none", "Quotes.", quote)
    ds = load_bytes(json.dumps(coco()).encode(), "ann.json")
    settings = config.FileSettings([rule], {"XX003": {}}, {"XX003": rule.severity})
    (f,) = engine.lint(ds, settings)[0]
    assert len(f.message) == 2000 and f.message.endswith("is odd: look at it") and len(f.suggestion) == 2000
    monkeypatch.setenv("LABELLINT_MAX_MESSAGE_CHARS", "100")
    monkeypatch.setenv("LABELLINT_MAX_QUOTED_CHARS", "3")
    (f,) = engine.lint(ds, settings)[0]
    assert len(f.message) == 100
    assert ds.category_name(0) == "cat" and load_bytes(json.dumps(coco(categories=[{"id": 1, "name": "tiger"}])).encode(),
                                                        "t.json").category_name(0) == "tig\u2026"
