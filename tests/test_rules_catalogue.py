"""The rule catalogue: every rule's documentation is well formed and its examples are its first tests.

Examples follow the pylint / sqlfluff pattern: the ```json bad``` snippet of a rule must make
that rule report, the ```json good``` snippet must not. A rule whose examples need other option
values than the defaults (distribution rules would otherwise need dozens of boxes) declares them
in ``EXAMPLE_OPTIONS`` and says so in its Example section ("The examples use `name = value`").
"""

from __future__ import annotations

import json
import re
import sys

import pytest

from labellint import registry
from labellint.coco import load_bytes
from labellint.config import FileSettings
from labellint.engine import lint

RULES = registry.all_rules()
STRUCTURAL = [r for r in RULES if not r.requires]  # rules that need only the JSON file
_OPTION_IN_DOC = re.compile(r"`(\w+) = ([^`]+)`")


def example_options(rule) -> dict:
    return dict(getattr(sys.modules[rule.check.__module__], "EXAMPLE_OPTIONS", {}))


def findings_of(rule, text: str, options: dict | None = None, path: str = "example.json"):
    """The findings of ``rule`` alone on a COCO document (text or dict)."""
    data = text.encode() if isinstance(text, str) else json.dumps(text).encode()
    ds = load_bytes(data, path)
    settings = FileSettings(rules=[rule], options={rule.code: {**rule.options, **(options or {})}},
                            severity={rule.code: rule.severity})
    found, skipped = lint(ds, settings)
    assert not skipped
    return [f for f in found if f.code == rule.code]


def lint_doc(doc, *codes, **options):
    """Ranked findings of the rules ``codes`` on a document (dict or JSON text); each option goes to
    the rules that have it. Shared by the tests/test_rule_*.py files."""
    data = doc.encode() if isinstance(doc, str) else json.dumps(doc).encode()
    rules = [registry.by_code()[c] for c in codes]
    settings = FileSettings(rules=rules,
                            options={r.code: {**r.options, **{k: v for k, v in options.items() if k in r.options}}
                                     for r in rules},
                            severity={r.code: r.severity for r in rules})
    return lint(load_bytes(data, "ann.json"), settings)[0]


# -- documentation -------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_doc_has_every_section_and_a_fix_rating(rule):
    sections = registry.doc_sections(rule.doc)
    for title in registry.DOC_SECTIONS:
        assert sections.get(title, "").strip(), f"{rule.code}: empty or missing '## {title}'"
    first_line = rule.doc.strip().splitlines()[0]
    assert first_line and not first_line.startswith("#"), f"{rule.code}: the first line must be a summary"
    assert rule.fix in registry.FIX_SAFETY


@pytest.mark.parametrize("rule", STRUCTURAL, ids=lambda r: r.code)
def test_fix_section_states_the_declared_safety(rule):
    fix = rule.section("Fix").strip().lower()
    assert fix.startswith(rule.fix), f"{rule.code}: FIX = {rule.fix!r} but the Fix section says: {fix[:60]!r}"


@pytest.mark.parametrize("rule", STRUCTURAL, ids=lambda r: r.code)
def test_examples_are_complete_coco_documents(rule):
    examples = rule.examples()
    assert examples["bad"] and examples["good"], f"{rule.code}: needs a ```json bad``` and a ```json good``` example"
    for snippet in examples["bad"] + examples["good"]:
        doc = json.loads(snippet.replace("Infinity", "1e999"))  # LL002's example is deliberately not strict JSON
        assert {"images", "annotations", "categories"} <= set(doc), f"{rule.code}: example is not a whole COCO file"


@pytest.mark.parametrize("rule", STRUCTURAL, ids=lambda r: r.code)
def test_example_options_are_documented(rule):
    documented = dict(_OPTION_IN_DOC.findall(rule.section("Example")))
    for name, value in example_options(rule).items():
        assert name in rule.options, f"{rule.code}: EXAMPLE_OPTIONS names unknown option {name!r}"
        assert name in documented and float(documented[name]) == float(value), (
            f"{rule.code}: the Example section must say 'The examples use `{name} = {value:g}`'")


# -- examples as tests ---------------------------------------------------------------------------


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_bad_example_is_reported(rule):
    if rule.requires:
        pytest.skip(f"{rule.code} needs {', '.join(rule.requires)}, not only the JSON file")
    for snippet in rule.examples()["bad"]:
        assert findings_of(rule, snippet, example_options(rule)), f"{rule.code}: the bad example is not reported"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_good_example_is_clean(rule):
    if rule.requires:
        pytest.skip(f"{rule.code} needs {', '.join(rule.requires)}, not only the JSON file")
    for snippet in rule.examples()["good"]:
        found = findings_of(rule, snippet, example_options(rule))
        assert not found, f"{rule.code}: the good example is reported: {[f.message for f in found]}"


def test_every_finding_has_a_score_in_range_and_a_message():
    for rule in STRUCTURAL:
        for snippet in rule.examples()["bad"]:
            for f in findings_of(rule, snippet, example_options(rule)):
                assert 0.0 <= f.score <= 1.0 and f.message.strip(), (rule.code, f)


DEGENERATE = {
    "empty": '{"images": [], "annotations": [], "categories": []}',
    "images only": '{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}]}',
    "dangling references": '{"images": [], "annotations": [{"id": 1, "image_id": 5, "category_id": 9, '
                           '"bbox": [1, 2, 3, 4], "segmentation": [[1, 2, 3, 4, 5, 6]]}], "categories": []}',
    "wrong types everywhere": '{"images": [7, {"id": "x", "width": "64", "height": null}], '
                              '"annotations": [null, {"id": 1.5, "image_id": [], "category_id": {}, "bbox": "box", '
                              '"area": "big", "iscrowd": "no", "segmentation": {"counts": 3}}], '
                              '"categories": [{"id": 1, "name": 5}, "cat"]}',
    "non-finite numbers": '{"images": [{"id": 1, "file_name": "a.jpg", "width": Infinity, "height": NaN}], '
                          '"annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [NaN, 1, 2, 3], '
                          '"area": Infinity, "segmentation": [[NaN, 1, 2, 3, 4, 5]]}], '
                          '"categories": [{"id": 1, "name": "cat"}]}',
}


@pytest.mark.parametrize("name", DEGENERATE)
def test_every_rule_survives_degenerate_files(name):
    """No structural rule may crash (the engine would turn that into exit 2) on odd but loadable files."""
    for rule in STRUCTURAL:
        findings_of(rule, DEGENERATE[name], example_options(rule))
