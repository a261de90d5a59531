"""Engine: findings located, ranked and fingerprinted; rules discovered, never named."""

import json
import re
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import coco
from labellint import config, engine, registry
from labellint.coco import load, load_bytes
from labellint.findings import Finding, Severity, fingerprint, rank


def lint(path_or_doc, codes=None, options=None):
    rules = registry.by_code()
    ds = load_bytes(json.dumps(path_or_doc, indent=2).encode(), "x.json") if isinstance(path_or_doc, dict) else load(path_or_doc)
    cfg = config.Config()
    if options:
        cfg.rules = options
    settings = config.settings_for(cfg, rules, "x.json", None, codes)
    return engine.lint(ds, settings)[0]


def test_rank_orders_by_severity_then_score():
    mk = lambda sev, score: Finding("LL1", "n", sev, "m", "p", "/", 1, 1, score=score)
    ranked = rank([mk(Severity.INFO, 1.0), mk(Severity.ERROR, 0.2), mk(Severity.WARNING, 0.9), mk(Severity.ERROR, 0.9)])
    assert [(f.severity, f.score) for f in ranked] == [
        (Severity.ERROR, 0.9), (Severity.ERROR, 0.2), (Severity.WARNING, 0.9), (Severity.INFO, 1.0)]


def test_fingerprint_survives_edits_that_move_lines():
    doc = coco()
    doc["annotations"][1]["bbox"] = [60, 5, 20, 10]  # outside the 64-wide image
    before = [f for f in lint(doc, ["LL105"])]
    doc["annotations"].insert(0, {"id": 9, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "area": 4})
    after = [f for f in lint(doc, ["LL105"])]
    assert len(before) == len(after) == 1
    assert before[0].line != after[0].line and before[0].pointer != after[0].pointer
    assert before[0].fingerprint == after[0].fingerprint
    assert before[0].fingerprint == fingerprint("LL105", "x.json", "annotations:2")


def test_findings_carry_entity_ids_and_exact_positions():
    doc = coco()
    doc["annotations"][1]["category_id"] = 7
    (f,) = lint(doc, ["LL012"])
    assert (f.annotation_id, f.image_id, f.category_id) == (2, 2, 7)
    assert f.pointer == "/annotations/1"
    text = json.dumps(doc, indent=2).splitlines()
    # the line holds the opening brace of the second annotation
    assert text[f.line - 1].strip() == "{" and '"id": 2' in text[f.line]
    assert f.column == text[f.line - 1].index("{") + 1


def test_duplicate_ids_get_distinct_fingerprints():
    doc = coco(annotations=[{"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]}] * 3)
    found = lint(doc, ["LL010"])
    assert len(found) == 2 and len({f.fingerprint for f in found}) == 2


def test_minified_positions_are_line_one_with_columns(tmp_path):
    doc = coco()
    doc["annotations"][1]["bbox"] = [60, 5, 20, 10]
    raw = json.dumps(doc, separators=(",", ":"))
    p = tmp_path / "m.json"
    p.write_text(raw)
    (f,) = lint(p, ["LL105"])
    assert f.line == 1 and raw[f.column - 1:].startswith('{"id":2')


def test_rule_crash_is_one_error_finding(monkeypatch):
    rule = registry.by_code()["LL105"]
    boom = registry.Rule(rule.code, rule.name, rule.severity, rule.options, rule.fix, rule.doc,
                         lambda ds, o: 1 / 0)
    ds = load_bytes(json.dumps(coco()).encode(), "x.json")
    settings = config.FileSettings([boom], {boom.code: {}}, {boom.code: boom.severity})
    (f,) = engine.lint(ds, settings)[0]
    assert f.severity == Severity.ERROR and (f.line, f.column) == (1, 1)
    assert re.match(r"rule LL105 .* failed on this file: ZeroDivisionError", f.message)
    monkeypatch.setenv("LABELLINT_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        engine.lint(ds, settings)


def test_rules_needing_inputs_are_listed_as_skipped():
    rule = registry.by_code()["LL105"]
    needy = registry.Rule("XX900", "needs-images", Severity.WARNING, {}, "none", "Needs images.",
                          lambda ds, o: iter(()), ("images",))
    ds = load_bytes(json.dumps(coco()).encode(), "x.json")
    settings = config.FileSettings([needy, rule], {"XX900": {}, "LL105": rule.options},
                                   {"XX900": Severity.WARNING, "LL105": rule.severity})
    findings, skipped = engine.lint(ds, settings, {"images": None})
    assert skipped == ["XX900"]


def test_engine_and_registry_never_name_a_rule():
    src = Path(__file__).resolve().parents[1] / "labellint"
    for name in ("engine.py", "registry.py", "run.py", "config.py", "findings.py"):
        text = (src / name).read_text()
        for rule in registry.all_rules():
            assert rule.code not in text and f'"{rule.name}"' not in text, (name, rule.code)


def test_third_party_rule_from_entry_point(tmp_path, monkeypatch):
    """A real distribution on sys.path with an entry point in group labellint.rules."""
    pkg = tmp_path / "site"
    (pkg / "acme_rules").mkdir(parents=True)
    (pkg / "acme_rules" / "__init__.py").write_text("")
    (pkg / "acme_rules" / "tiny.py").write_text(textwrap.dedent('''
        """Boxes smaller than 3 px.

        ## What it does
        Flags tiny boxes.
        """
        from labellint.findings import Problem
        CODE = "AC001"
        NAME = "tiny-box"
        SEVERITY = "warning"
        OPTIONS = {"min_px": 3.0}
        FIX = "none"
        def check(ds, options):
            for i, (x, y, w, h) in enumerate(ds.annotations.bbox):
                if min(w, h) < options["min_px"]:
                    yield Problem("tiny", annotation=i)
    '''))
    dist = pkg / "acme_rules-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-rules\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[labellint.rules]\ntiny = acme_rules.tiny\n")
    monkeypatch.syspath_prepend(str(pkg))
    registry.discover.cache_clear()
    try:
        rules = registry.by_code()
        assert rules["AC001"].origin == "acme_rules.tiny"
        doc = coco()
        doc["annotations"][0]["bbox"] = [1, 1, 2, 2]
        found = lint(doc, ["AC001"])
        assert [f.code for f in found] == ["AC001"] and found[0].severity == Severity.WARNING
    finally:
        sys.modules.pop("acme_rules.tiny", None)
        sys.modules.pop("acme_rules", None)
        registry.discover.cache_clear()


def test_configured_severity_wins_over_a_rules_own_grading():
    rule = registry.Rule("XX901", "graded", Severity.ERROR, {}, "none", "Graded.",
                         lambda ds, o: iter([__import__("labellint.findings").findings.Problem(
                             "soft", annotation=0, severity=Severity.WARNING)]))
    ds = load_bytes(json.dumps(coco()).encode(), "x.json")
    default = config.FileSettings([rule], {"XX901": {}}, {"XX901": Severity.ERROR})
    assert [f.severity for f in engine.lint(ds, default)[0]] == [Severity.WARNING]
    configured = config.FileSettings([rule], {"XX901": {}}, {"XX901": Severity.INFO})
    assert [f.severity for f in engine.lint(ds, configured)[0]] == [Severity.INFO]


# -- the run context and the passes ---------------------------------------------------------------

def _settings(*rules):
    return config.FileSettings(list(rules), {r.code: dict(r.options) for r in rules},
                               {r.code: r.severity for r in rules})


def test_rules_get_their_documented_options_and_the_run_context_apart(monkeypatch):
    """options hold the rule's own options only; the run's inputs come as the third argument, and
    a rule written with check(ds, options) still runs."""
    from labellint.context import RunContext
    from labellint.findings import Problem

    seen = {}

    def three(ds, options, context):
        seen["three"] = (dict(options), context)
        yield Problem("x", annotation=0)

    def two(ds, options):
        seen["two"] = dict(options)
        return iter(())

    a = registry.Rule("XX910", "three", Severity.WARNING, {"k": 3}, "none", "Three.", three)
    b = registry.Rule("XX911", "two", Severity.WARNING, {"m": 1.5}, "none", "Two.", two)
    ds = load_bytes(json.dumps(coco()).encode(), "x.json")
    found, skipped = engine.lint(ds, _settings(a, b), RunContext(device="cpu", source=Path("x.json")))
    assert skipped == [] and [f.code for f in found] == ["XX910"]
    options, context = seen["three"]
    assert options == {"k": 3} and seen["two"] == {"m": 1.5}
    assert isinstance(context, RunContext) and context.device == "cpu" and context.source == Path("x.json")


def test_a_pass_runs_once_for_every_rule_that_needs_it_and_its_failure_is_each_rules_finding(monkeypatch):
    from labellint import passes
    from labellint.findings import Problem

    runs = []

    def run(ds, context):
        runs.append(1)
        return ["result"]

    monkeypatch.setitem(passes.PASSES, "toy", passes.Pass("toy", (), (), lambda ds, c: None, run))

    def reader(ds, options, context):
        yield Problem(f"got {context.result('toy')}", annotation=0)

    rules = [registry.Rule(f"XX92{i}", f"r{i}", Severity.WARNING, {}, "none", "R.", reader, passes=("toy",))
             for i in range(3)]
    ds = load_bytes(json.dumps(coco()).encode(), "x.json")
    found, _ = engine.lint(ds, _settings(*rules))
    assert runs == [1] and [f.message for f in found] == ["got ['result']"] * 3

    def broken(ds, context):
        raise OSError("disk gone")

    monkeypatch.setitem(passes.PASSES, "toy", passes.Pass("toy", (), (), lambda ds, c: None, broken))
    ds = load_bytes(json.dumps(coco()).encode(), "x.json")
    found, _ = engine.lint(ds, _settings(*rules))
    assert sorted(f.code for f in found) == ["XX920", "XX921", "XX922"]
    assert all(f.rule_failed and "OSError: disk gone" in f.message for f in found)


def test_rules_on_a_late_pass_run_after_the_others_and_report_in_registry_order(monkeypatch):
    """A late pass (work the loader finishes in the background) runs after every rule that does
    not need it; the findings come out as if the rules had run in the registry's order."""
    from labellint import passes
    from labellint.findings import Problem

    order = []

    def late_run(ds, context):
        order.append("pass")
        return "summary"

    monkeypatch.setitem(passes.PASSES, "toy_late", passes.Pass("toy_late", (), (), lambda ds, c: None, late_run,
                                                               late=True))

    def rule(name):
        def check(ds, options, context):
            order.append(name)
            yield Problem(name, annotation=0)
        return check

    late = registry.Rule("XX930", "late", Severity.WARNING, {}, "none", "L.", rule("late"), passes=("toy_late",))
    first = registry.Rule("XX931", "first", Severity.WARNING, {}, "none", "F.", rule("first"))
    second = registry.Rule("XX932", "second", Severity.WARNING, {}, "none", "S.", rule("second"))
    ds = load_bytes(json.dumps(coco()).encode(), "x.json")
    found, _ = engine.lint_file(ds, _settings(late, first, second))
    assert order == ["first", "second", "pass", "late"]
    assert [f.message for f in found] == ["late", "first", "second"]
    by = registry.by_code()
    assert all(by[c].passes == ("segmentations",) for c in ("LL106", "LL107", "LL108", "LL109", "LL110", "LL112"))


def test_requires_names_passes_and_the_inputs_behind_them():
    by = registry.by_code()
    assert by["LL501"].passes == ("images", "embeddings") and by["LL501"].requires == ("images", "backbone")
    assert by["LL403"].passes == ("images",) and by["LL403"].requires == ("images",)
    assert by["LL601"].passes == ("predictions",) and by["LL105"].passes == ()


def test_rules_import_only_the_rule_contract_and_the_toolkit():
    """A rule's labellint imports, at the top or inside a function: labellint.findings (Problem,
    Fix, ...) and labellint.toolkit, so that the subsystems behind the toolkit can change shape."""
    import ast

    allowed = {"labellint.findings", "labellint.toolkit"}
    for path in sorted((Path(__file__).resolve().parents[1] / "rules").glob("ll*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("labellint"):
                assert node.module in allowed, f"{path.name}: from {node.module} import ..."
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("labellint") for a in node.names), f"{path.name}: import labellint..."
