"""The rule catalogue: every rule's documentation is well formed and its examples are its first tests.

Examples follow the pylint / sqlfluff pattern: the ```json bad``` snippet of a rule must make
that rule report, the ```json good``` snippet must not. A rule whose examples need other option
values than the defaults (distribution rules would otherwise need dozens of boxes) declares them
in ``EXAMPLE_OPTIONS`` and says so in its Example section ("The examples use `name = value`").
Rules that need more than the JSON file (images, a backbone, predictions) run their examples with
the inputs their docs describe, built once per session by ``tests/rule_examples.py`` from the
rule's ``EXAMPLE_IMAGES`` (and ``EXAMPLE_EARLIER_FILES``) and the predictions its doc gives.
"""

from __future__ import annotations

import json
import re

import pytest

from labellint import registry
from labellint.coco import load_bytes
from labellint.config import FileSettings
from labellint.engine import lint, lint_many
from labellint.errors import LabellintError
from rule_examples import ExampleInputs, constant

RULES = registry.all_rules()
STRUCTURAL = [r for r in RULES if not r.requires]  # rules that need only the JSON file
_OPTION_IN_DOC = re.compile(r"`(\w+) = ([^`]+)`")


def example_options(rule) -> dict:
    return dict(constant(rule, "EXAMPLE_OPTIONS", {}))


def findings_of(rule, text: str, options: dict | None = None, path: str = "example.json",
                context: dict | None = None, earlier: dict | None = None):
    """The findings of ``rule`` alone on a COCO document (text or dict), with the run ``context``
    (images, backbone, predictions); the ``earlier`` documents ({name: doc}) are linted first, in
    the same run, for rules that look across files."""
    data = text.encode() if isinstance(text, str) else json.dumps(text).encode()
    settings = FileSettings(rules=[rule], options={rule.code: {**rule.options, **(options or {})}},
                            severity={rule.code: rule.severity})
    items = [(load_bytes(json.dumps(doc).encode(), name), settings) for name, doc in (earlier or {}).items()]
    items.append((load_bytes(data, path), settings))
    for ds, _ in items:  # in run order: the example last
        found, skipped = lint(ds, settings, context)
        assert not skipped, f"{rule.code}: skipped for lack of {rule.requires}"
    if len(items) > 1:
        cross = lint_many(items, context)
        assert all(f.path == path for f in cross), f"{rule.code}: reported on an earlier file"
        found = found + cross
    assert all(f.code == rule.code for f in found)
    return found


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


@pytest.fixture(scope="session")
def example_inputs(tmp_path_factory) -> ExampleInputs:
    return ExampleInputs(tmp_path_factory.mktemp("rule-examples"))


def example_findings(rule, inputs: ExampleInputs, kind: str):
    """(snippet, findings) of each ``kind`` example, once per set of inputs its doc describes."""
    for context, earlier in inputs.runs(rule):
        for snippet in rule.examples()[kind]:
            path = "val.json" if earlier else "example.json"
            yield snippet, findings_of(rule, snippet, example_options(rule), path, context, earlier)


def buildable(rules, inputs: ExampleInputs):
    """The rules whose example inputs can be built here (a missing optional package skips only the
    tests of that rule, which say so, not a test that loops over every rule)."""
    for rule in rules:
        try:
            inputs.runs(rule)
        except pytest.skip.Exception:
            continue
        yield rule


# -- documentation -------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_doc_has_every_section_and_a_fix_rating(rule):
    sections = registry.doc_sections(rule.doc)
    for title in registry.DOC_SECTIONS:
        assert sections.get(title, "").strip(), f"{rule.code}: empty or missing '## {title}'"
    first_line = rule.doc.strip().splitlines()[0]
    assert first_line and not first_line.startswith("#"), f"{rule.code}: the first line must be a summary"
    assert rule.fix in registry.FIX_SAFETY


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_fix_section_states_the_declared_safety(rule):
    fix = rule.section("Fix").strip().lower()
    assert fix.startswith(rule.fix), f"{rule.code}: FIX = {rule.fix!r} but the Fix section says: {fix[:60]!r}"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_examples_are_complete_coco_documents(rule):
    examples = rule.examples()
    assert examples["bad"] and examples["good"], f"{rule.code}: needs a ```json bad``` and a ```json good``` example"
    for snippet in examples["bad"] + examples["good"]:
        doc = json.loads(snippet.replace("Infinity", "1e999"))  # LL002's example is deliberately not strict JSON
        assert {"images", "annotations", "categories"} <= set(doc), f"{rule.code}: example is not a whole COCO file"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_example_options_are_documented(rule):
    documented = dict(_OPTION_IN_DOC.findall(rule.section("Example")))
    for name, value in example_options(rule).items():
        assert name in rule.options, f"{rule.code}: EXAMPLE_OPTIONS names unknown option {name!r}"
        assert name in documented and float(documented[name]) == float(value), (
            f"{rule.code}: the Example section must say 'The examples use `{name} = {value:g}`'")


_SIZED = re.compile(r"(\d+)x(\d+)\b")


@pytest.mark.parametrize("rule", [r for r in RULES if constant(r, "EXAMPLE_IMAGES")], ids=lambda r: r.code)
def test_example_images_are_the_documented_ones(rule):
    """Every picture the examples read is named in the Example section, at the size it says."""
    section = rule.section("Example")
    listed = {}
    for snippet in rule.examples()["bad"] + rule.examples()["good"]:
        for im in json.loads(snippet)["images"]:
            listed.setdefault(im["file_name"], set()).add((im["width"], im["height"]))
    for name, specs in constant(rule, "EXAMPLE_IMAGES").items():
        assert f"`{name}`" in section or name in listed, f"{rule.code}: the Example section never names {name}"
        for spec in specs if isinstance(specs, tuple) else (specs,):
            if m := _SIZED.match(spec):
                w, h = int(m[1]), int(m[2])
                assert f"{w}x{h}" in section or (w, h) in listed.get(name, ()), (
                    f"{rule.code}: the Example section never gives {name} the size {w}x{h}")
    for name in constant(rule, "EXAMPLE_EARLIER_FILES", {}):
        assert f"`{name}`" in section, f"{rule.code}: the Example section never names {name}"


# -- examples as tests ---------------------------------------------------------------------------


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_bad_example_is_reported(rule, example_inputs):
    for _, found in example_findings(rule, example_inputs, "bad"):
        assert found, f"{rule.code}: the bad example is not reported"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_good_example_is_clean(rule, example_inputs):
    for _, found in example_findings(rule, example_inputs, "good"):
        assert not found, f"{rule.code}: the good example is reported: {[f.message for f in found]}"


def test_every_finding_has_a_score_in_range_and_a_message(example_inputs):
    for rule in buildable(RULES, example_inputs):
        for _, found in example_findings(rule, example_inputs, "bad"):
            for f in found:
                assert 0.0 <= f.score <= 1.0 and f.message.strip(), (rule.code, f)


def test_neighbour_example_reports_the_knight_as_its_doc_says(example_inputs):
    rule = registry.by_code()["LL501"]
    ((_, found),) = example_findings(rule, example_inputs, "bad")
    (f,) = found
    assert (f.annotation_id, f.suggestion, f"{f.score:.2f}") == (4, "knight", "0.84")
    assert "labelled 'pawn'" in f.message and "score 0.84" in rule.section("Example")


def test_truncated_example_opens_and_stops_at_the_cut_as_its_doc_says(example_inputs):
    rule = registry.by_code()["LL403"]
    ((_, (f,)),) = example_findings(rule, example_inputs, "bad")
    assert "`image file is truncated`" in rule.section("Example") and "image file is truncated" in f.message


def test_bomb_is_as_small_on_disk_as_its_doc_says(example_inputs):
    rule = registry.by_code()["LL406"]
    ((context, _),) = example_inputs.runs(rule)
    kb = int(re.search(r"about (\d+) KB", rule.section("Example"))[1])
    assert round((context["images"] / "bomb.png").stat().st_size / 1024, -1) == kb


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
def test_every_rule_survives_degenerate_files(name, example_inputs):
    """No rule may crash (the engine would turn that into exit 2) on odd but loadable files; rules
    that need more than the JSON file get the inputs of their examples. The one error allowed is
    the designed one of the LL6xx rules: predictions on none of the file's images (image id 1)."""
    for rule in buildable(RULES, example_inputs):
        for context, earlier in example_inputs.runs(rule):
            try:
                findings_of(rule, DEGENERATE[name], example_options(rule),
                            "val.json" if earlier else "example.json", context, earlier)
            except LabellintError as exc:
                if "predictions" not in rule.requires or "are on none of this file's images" not in str(exc):
                    raise
