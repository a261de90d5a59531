"""Per-rule fixture files, sqlfluff style: ``tests/fixtures/rules/LLNNN.toml`` holds the cases of
rule LLNNN, each run through the real CLI (``labellint check ann.json --select LLNNN -f json``)
and compared with the findings it expects, and, for a fixable rule, the exact bytes ``--fix``
writes.

A case::

    [[case]]
    name = "later-duplicate-gets-a-fresh-id"   # unique in the file; names the test
    doc = '''{"images": [...], "annotations": [...], "categories": [...]}'''   # byte for byte
    options = {min_iou = 0.8}          # optional: [rules.LLNNN] of the run's labellint.toml
    fix_str = '''...'''                # optional: the file after `check --fix`, byte for byte
    fix_mode = "unsafe"                # optional: --unsafe-fixes or plain --fix; default the rule's FIX

    [[case.expect]]                    # each finding the run must report, and no other
    pointer = "/annotations/1"
    annotation_id = 7
    message = "annotation id 7 is already used by /annotations/0"

A case that must pass says ``expect = []``; a short finding may also be written inline,
``expect = [{pointer = "/images/1", image_id = 2, message = "..."}]``.

An expected finding gives its ``pointer`` and a ``message`` fragment, the id of the entry the
pointer leads into (``annotation_id``, ``image_id`` or ``category_id``), and may add the other
ids, ``severity``, ``suggestion``, ``fix`` (the finding's fix safety, or "none") and ``path``
(default the case's file); TOML has no null, so ``image_id = "null"`` expects JSON's null (an id
the loader could not take). A ``doc`` given as a TOML table is written as compact JSON.

Cases that read more than the JSON file declare it:

* ``images = {"a.jpg" = "64x48", "cut.jpg" = "a.jpg cut at 60%"}``: the image root
  (``--images data/images``), built by ``tests/rule_examples.py`` from the same specs the rules'
  ``EXAMPLE_IMAGES`` use;
* ``predictions = '''[...]'''``: the ``--predictions`` file;
* ``[case.earlier]`` with ``"train.json" = '''...'''``: COCO files linted before the case's, in
  the same run (for the rules that compare files).

TOML puts every key after a ``[[case.expect]]`` or ``[case.earlier]`` header into that table, so
a case's own keys come first. The loader rejects unknown keys, so a misplaced one fails loudly.
"""

from __future__ import annotations

import difflib

import pytest

from fixture_support import FIXTURES, FILE_NAME, Case, all_cases, mismatch, prepare, report, run
from labellint import registry

RULES = registry.by_code()
CASES = all_cases()
ALL = [case for cases in CASES.values() for case in cases]

#: Built-in rules without a fixture file yet, and why. Their docstring examples still run
#: (tests/test_rules_catalogue.py); everything else must have a file.
SKIPPED = {
    "LL501": "its board picture must show the true classes while the linted file holds a wrong one (a layout "
             "the fixture format does not carry), and it needs the ONNX colour backbone; its docstring "
             "examples run in tests/test_rules_catalogue.py",
}
#: the rules that read only the JSON file: each needs the fuller set of cases
STRUCTURAL_PREFIXES = ("LL0", "LL1", "LL2", "LL3")
MIN_STRUCTURAL_CASES = 3


def _ids(case: Case) -> str:
    return case.id


# -- the fixture set itself ------------------------------------------------------------------------


def test_every_built_in_rule_has_a_fixture_file_or_a_reason():
    built_in = {code for code, rule in RULES.items() if rule.origin == "built-in"}
    missing = sorted(built_in - set(CASES) - set(SKIPPED))
    assert not missing, f"rules without tests/fixtures/rules/CODE.toml (add one, or a reason to SKIPPED): {missing}"
    assert not set(CASES) & set(SKIPPED), f"in SKIPPED but have fixtures: {sorted(set(CASES) & set(SKIPPED))}"
    assert set(SKIPPED) <= built_in, "SKIPPED names a rule that does not exist"


def test_every_fixture_file_names_a_rule():
    unknown = sorted(set(CASES) - set(RULES))
    assert not unknown, f"fixture files for no rule in {FIXTURES}: {unknown}"


@pytest.mark.parametrize("code", sorted(CASES))
def test_every_fixable_rule_pins_a_fix_that_changes_the_file(code):
    if RULES[code].fix == "none":
        assert all(c.fix_str is None for c in CASES[code]), f"{code} has no fix, but a case gives fix_str"
        return
    fixed = [c for c in CASES[code] if c.fix_str is not None]
    assert any(c.fix_str != c.doc for c in fixed), f"{code} (FIX = {RULES[code].fix!r}) needs a case whose fix_str " \
                                                   "shows the fix at work"


@pytest.mark.parametrize("code", sorted(c for c in CASES if c.startswith(STRUCTURAL_PREFIXES)))
def test_structural_rules_have_bad_near_miss_and_more(code):
    cases = CASES[code]
    assert len(cases) >= MIN_STRUCTURAL_CASES, f"{code}: {len(cases)} cases, want at least {MIN_STRUCTURAL_CASES}"
    assert any(c.expect for c in cases), f"{code}: no case that the rule reports"
    assert any(not c.expect for c in cases), f"{code}: no case that must pass"


# -- the cases -------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ALL, ids=_ids)
def test_findings(case, tmp_path):
    found = report(case, prepare(case, tmp_path), tmp_path)["findings"]
    assert all(f["code"] == case.code for f in found), f"{case.id}: another rule reported"
    diff = mismatch(case.expect, found)
    if diff is not None:
        pytest.fail(f"{case.id}:\n{diff}", pytrace=False)


@pytest.mark.parametrize("case", [c for c in ALL if c.fix_str is not None], ids=_ids)
def test_fix_output(case, tmp_path):
    args = prepare(case, tmp_path)
    mode = case.fix_mode or RULES[case.code].fix
    code, _, err = run([*args, "--unsafe-fixes" if mode == "unsafe" else "--fix", "--exit-zero"], tmp_path)
    assert code == 0, f"{case.id}: exit {code}\n{err}"
    fixed = (tmp_path / FILE_NAME).read_bytes()
    if fixed != case.fix_str.encode("utf-8"):
        diff = difflib.unified_diff(case.fix_str.splitlines(keepends=True),
                                    fixed.decode("utf-8", "replace").splitlines(keepends=True), "fix_str", "after --fix")
        pytest.fail(f"{case.id} ({mode} fixes):\n{''.join(diff)}", pytrace=False)
