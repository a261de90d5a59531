"""The catalogue on real files from ../shared/data: the chess README's defects and TACO's.

Skipped, with the reason, when the shared data folder is absent.
"""

from __future__ import annotations

from labellint import registry
from labellint.coco import load
from labellint.config import FileSettings
from labellint.engine import lint
from labellint.findings import Severity

STRUCTURAL = [r for r in registry.all_rules() if not r.requires]


def lint_file(path):
    settings = FileSettings(rules=STRUCTURAL, options={r.code: dict(r.options) for r in STRUCTURAL},
                            severity={r.code: r.severity for r in STRUCTURAL})
    return lint(load(path), settings)[0]


def by_code(findings):
    out: dict[str, list] = {}
    for f in findings:
        out.setdefault(f.code, []).append(f)
    return out


def test_chess_readme_defects_are_found(shared):
    chess = shared / "data" / "chess_pieces"
    train = by_code(lint_file(chess / "train" / "_annotations.coco.json"))
    (stray,) = train["LL301"]  # the colourless `bishop`, category 1, with one annotation
    assert stray.category_id == 1 and "'bishop'" in stray.message
    assert stray.suggestion in ("black-bishop or white-bishop", "white-bishop or black-bishop")
    (duplicate,) = train["LL201"]  # the two identical white-rook boxes
    assert {duplicate.annotation_id, int(duplicate.message.split("annotation id ")[1].split()[0])} == {1324, 1325}
    assert "'white-rook'" in duplicate.message and "identical box" in duplicate.message
    for split in ("train", "valid", "test"):
        found = by_code(lint_file(chess / split / "_annotations.coco.json"))
        assert [f.annotation_id for f in found["LL014"]] == [0], split  # ids start at 0
        assert 0 in {f.category_id for f in found["LL016"]}, split  # 'pieces' is never used
    test = by_code(lint_file(chess / "test" / "_annotations.coco.json"))
    (empty,) = test["LL305"]
    assert empty.severity == Severity.INFO
    test_ds = load(chess / "test" / "_annotations.coco.json")
    assert test_ds.images.file_name[list(test_ds.images.id).index(empty.image_id)].startswith("e0d38d15")


def test_chess_output_is_led_by_the_real_errors(shared):
    found = lint_file(shared / "data" / "chess_pieces" / "train" / "_annotations.coco.json")
    assert [f.code for f in found] == ["LL014", "LL201", "LL301", "LL016", "LL302"]


def test_taco_unofficial_non_strict_numbers_and_broken_boxes(shared):
    found = by_code(lint_file(shared / "data" / "taco" / "annotations_unofficial.json"))
    assert len(found["LL002"]) == 15  # Infinity in boxes, which strict JSON cannot hold
    assert "LL102" not in found  # those boxes are LL002's alone
    assert found["LL014"][0].annotation_id == 0
    assert len(found["LL107"]) >= 8  # polygons shifted far outside their image, like their boxes (LL105)


def test_taco_errors_outrank_every_warning_and_info(shared):
    found = lint_file(shared / "data" / "taco" / "annotations.json")
    severities = [f.severity for f in found]
    assert severities == sorted(severities, reverse=True)
    assert {f.code for f in found if f.severity == Severity.ERROR} == {"LL010", "LL105"}
