"""Hostile input files: nesting, huge integers, keys written twice, files that are not files, no
files at all, a report written over an input. Each ends in a finding or a one-line error (exit 2),
never a traceback, a hang, runaway memory or a file overwritten."""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys

import pytest
from click.testing import CliRunner

from conftest import REPO, coco
from labellint import jsonscan
from labellint.cli import cli
from labellint.coco import load, load_bytes
from labellint.errors import InputError
from labellint.fix import state
from labellint.gate import predictions

L = sys.modules["labellint.coco.load"]


def run(*args, cwd=None):
    """(exit code, stdout, stderr) of the CLI run in this process."""
    old = os.getcwd()
    if cwd:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.stdout, result.stderr


def run_bounded(*args, cwd=None, timeout=60):
    """The CLI in a child process with its address space capped (a regression reading /dev/zero
    fails with MemoryError instead of eating the machine) and a timeout (one blocking on a FIFO
    fails instead of hanging the suite)."""
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    return subprocess.run([sys.executable, "-m", "labellint", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, preexec_fn=cap,
                          env={**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(REPO)})


def one_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("labellint: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


def with_extra(extra: str, segmentation: str | None = None) -> str:
    """A small COCO file (text) whose one annotation carries ``extra`` as a field of its own."""
    seg = f', "segmentation": {segmentation}' if segmentation is not None else ""
    return ('{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}], '
            '"annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "area": 12, '
            f'"iscrowd": 0, "extra": {extra}{seg}}}], "categories": [{{"id": 1, "name": "cat"}}]}}')


# -- 1. nesting depth ---------------------------------------------------------------------------------
def test_deep_nesting_is_a_located_one_line_error(tmp_path):
    text = with_extra(nested(1000))
    path = tmp_path / "deep.json"
    path.write_text(text)
    code, _, err = run("check", path)
    assert code == 2
    line = one_error(err)
    # doc, annotations, annotation: the 510th bracket of the field is the 513th level
    column = text.index("[[[") + 510
    assert f"deep.json:1:{column}: nested deeper than 512 levels" in line and "LABELLINT_MAX_JSON_DEPTH" in line


def test_the_depth_limit_is_read_from_its_variable(monkeypatch):
    monkeypatch.setenv("LABELLINT_MAX_JSON_DEPTH", "8")
    load_bytes(with_extra(nested(5)).encode(), "x.json")  # 3 + 5 levels: at the limit
    with pytest.raises(InputError, match="deeper than 8 levels"):
        load_bytes(with_extra(nested(6)).encode(), "x.json")


def test_nan_nested_400_deep_is_a_finding_not_a_recursion_error():
    ds = load_bytes(with_extra("0", nested(400, "NaN")).encode(), "x.json")
    assert [(i.field, i.kind) for i in ds.issues] == [("segmentation", "non-finite")]
    assert L._non_finite_in(_deep_list(5000, float("nan")))
    assert not L._non_finite_in(_deep_list(5000, 1.0))


def _deep_list(depth: int, leaf):
    value = leaf
    for _ in range(depth):
        value = [value, {"k": [2.0]}]
    return value


def test_a_limit_above_what_python_decodes_is_still_a_located_error(monkeypatch):
    monkeypatch.setenv("LABELLINT_MAX_JSON_DEPTH", "1000000")
    with pytest.raises(InputError, match="deeper than this Python can decode") as info:
        load_bytes(with_extra(nested(100_000)).encode(), "x.json")
    assert info.value.line == 1 and info.value.column is not None


def test_entry_states_of_deep_entries_need_no_recursion():
    assert len(state.state_of({"a": _deep_list(500, 1.0)})) == 16  # within the default limit


def test_deep_predictions_and_ground_truths_are_located_errors(tmp_path):
    pred = tmp_path / "pred.json"
    pred.write_text('[{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5, "x": '
                    + nested(2000) + "}]")
    with pytest.raises(InputError, match="deeper than 512") as info:
        predictions.load(pred)
    assert (info.value.line, info.value.column) == (1, pred.read_text().index("[[") + 511)
    with pytest.raises(InputError, match="deeper than 512"):
        predictions.read_json(pred)


class _Reference:
    """The scan's answers, byte by byte: depth outside strings, and the top-level keys."""

    @staticmethod
    def scan(buf: bytes, limit: int):
        depth, in_string, escaped, keys = 0, False, False, []
        top_object = buf.lstrip()[:1] == b"{"
        for i, c in enumerate(buf):
            if in_string:
                if escaped:
                    escaped = False
                elif c == 0x5C:
                    escaped = True
                elif c == 0x22:
                    in_string = False
            elif c == 0x22:
                if depth == 1 and top_object:
                    m = jsonscan._STRING.match(buf, i)
                    if m and jsonscan._COLON.match(buf, m.end()):
                        keys.append((json.loads(m.group()), i))
                in_string = True
            elif c in b"[{":
                depth += 1
                if depth > limit:
                    return i, keys
            elif c in b"]}":
                depth -= 1
        return None, keys


def test_the_vectorised_scan_agrees_with_a_byte_by_byte_one(monkeypatch):
    rng = random.Random(7)
    alphabet = ["a", "[", "]", "{", "}", "\\", '"', "é", ":", ","]

    def text():  # strings full of brackets, quotes and runs of backslashes that cross word ends
        return "".join(rng.choice(alphabet) * rng.choice([1, 1, 33, 64]) for _ in range(rng.randint(0, 8)))

    def value(d):
        r = rng.random()
        if d and r < 0.3:
            return [value(d - 1) for _ in range(rng.randint(0, 4))]
        if d and r < 0.6:
            return {text(): value(d - 1) for _ in range(rng.randint(0, 4))}
        return text() if r < 0.8 else rng.randint(-5, 5)

    for _ in range(400):
        monkeypatch.setattr(jsonscan, "_CHUNK", rng.choice([64, 128, 1 << 20]))
        doc = {text(): value(rng.randint(0, 7)) for _ in range(rng.randint(0, 5))}
        buf = json.dumps(doc, ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, 1])).encode()
        limit = rng.randint(0, 8)
        found, (too_deep, keys) = jsonscan.scan(buf, limit), _Reference.scan(buf, limit)
        assert found.too_deep == too_deep, buf
        if too_deep is None:
            assert found.keys == keys, buf


# -- 2. integers longer than Python converts -------------------------------------------------------
@pytest.mark.parametrize("where", ["id", "segmentation", "unknown field", "non-strict file"])
def test_an_integer_of_5000_digits_is_a_located_error(tmp_path, where):
    big = "9" * 5000
    text = {"id": with_extra("0").replace('"id": 1, "image_id"', f'"id": {big}, "image_id"'),
            "segmentation": with_extra("0", f"[[1, 2, {big}, 4, 5, 6]]"),
            "unknown field": with_extra(big),
            "non-strict file": with_extra(big).replace('"area": 12', '"area": NaN')}[where]
    path = tmp_path / "big.json"
    path.write_text(text)
    code, _, err = run("check", path)
    assert code == 2
    line = one_error(err)
    assert f"big.json:1:{text.index(big) + 1}: an integer of more than 4300 digits" in line


def test_long_digit_runs_in_strings_and_floats_are_not_integers():
    assert jsonscan.scan(with_extra('"' + "1" * 5000 + '"').encode(), 512).long_integer is None
    assert jsonscan.scan(with_extra("1" * 5000 + ".5").encode(), 512).long_integer is None
    assert jsonscan.scan(with_extra("-" + "1" * 4301).encode(), 512).long_integer is not None


def test_an_integer_of_5000_digits_in_predictions_is_located_at_the_number(tmp_path):
    pred = tmp_path / "pred.json"
    pred.write_text('[{"image_id": ' + "9" * 5000 + ', "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}]')
    with pytest.raises(InputError, match="more than 4300 digits") as info:
        predictions.load(pred)
    assert (info.value.line, info.value.column) == (1, 15)


# -- 3. a top-level key twice -----------------------------------------------------------------------
DECOY = ('{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}], '
         '"annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "area": 12, "iscrowd": 0}], '
         '"categories": [{"id": 1, "name": "cat"}], '
         '"annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "area": NaN, "iscrowd": 0}]}')


def test_a_key_twice_is_an_ll001_error_at_the_second_key_and_findings_point_at_the_array_kept(tmp_path):
    path = tmp_path / "decoy.json"
    path.write_text(DECOY)
    code, out, _ = run("check", path, "--output-format", "json")
    assert code == 1
    findings = {f["code"]: f for f in json.loads(out)["findings"]}
    second = DECOY.rindex('"annotations"')
    assert (findings["LL001"]["line"], findings["LL001"]["column"]) == (1, second + 1)
    assert "'annotations'" not in findings["LL001"]["message"] and '"annotations" appears twice' in findings["LL001"]["message"]
    assert findings["LL001"]["pointer"] == "/annotations"
    assert (findings["LL002"]["line"], findings["LL002"]["column"]) == (1, DECOY.index("{", second) + 1)


@pytest.mark.parametrize("how", ["--fix", "--diff", "apply"])
def test_fixes_refuse_a_file_with_a_key_twice(tmp_path, how):
    path = tmp_path / "decoy.json"
    path.write_text(DECOY)
    if how == "apply":
        ds = load(path)
        decisions = tmp_path / "decisions.json"
        decisions.write_text(json.dumps({
            "format": "labellint-decisions", "version": 1, "decisions": [
                {"action": "delete", "path": "decoy.json", "annotation_id": 1,
                 "state": state.entry_state(ds, "annotations", 0)}]}))
        code, _, err = run("apply", decisions, path, cwd=tmp_path)
    else:
        code, _, err = run("check", path, how, "--select", "ALL")
    assert code == 2
    line = one_error(err)
    assert f"decoy.json:1:{DECOY.rindex(chr(34) + 'annotations') + 1}: not editing" in line
    assert path.read_text() == DECOY


def test_keys_spelt_with_escapes_are_the_same_key():
    text = DECOY.replace('"annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "area": NaN',
                         '"\\u0061nnotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], '
                         '"area": NaN')
    ds = load_bytes(text.encode(), "x.json")
    assert [(i.kind, i.field, i.offset) for i in ds.issues if i.kind == "duplicate-key"] == [
        ("duplicate-key", "annotations", text.index('"\\u0061'))]


# -- 4. files that are not regular files ----------------------------------------------------------
def test_a_fifo_given_is_an_error_not_a_hang(tmp_path):
    fifo = tmp_path / "x.json"
    os.mkfifo(fifo)
    proc = run_bounded("check", fifo, cwd=tmp_path)
    assert proc.returncode == 2
    assert "x.json: is a FIFO (named pipe), not a regular file" in one_error(proc.stderr)


def test_a_link_to_dev_zero_given_is_an_error_not_endless_memory(tmp_path):
    (tmp_path / "zero.json").symlink_to("/dev/zero")
    proc = run_bounded("check", "zero.json", "--predictions", "zero.json", cwd=tmp_path)
    assert proc.returncode == 2
    assert "zero.json: is a character device, not a regular file" in one_error(proc.stderr)


def test_a_folder_skips_fifos_and_links_that_leave_it(tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "train.json").write_text(json.dumps(coco()))
    os.mkfifo(data / "pipe.json")
    (data / "zero.json").symlink_to("/dev/zero")
    (tmp_path / "secret.json").write_text(json.dumps(coco()))
    (data / "secret.json").symlink_to(tmp_path / "secret.json")
    (data / "alias.json").symlink_to("train.json")  # stays in the folder: linted, once
    (data / "sub" / "up").symlink_to("..", target_is_directory=True)  # a loop, not walked
    proc = run_bounded("check", "data", "--output-format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    files = {f["path"]: (f["status"], f.get("note")) for f in json.loads(proc.stdout)["files"]}
    assert files == {
        "data/pipe.json": ("skipped", "a FIFO (named pipe), not a regular file: not read"),
        "data/secret.json": ("skipped", "a symbolic link out of the folder, not followed"),
        "data/zero.json": ("skipped", "a symbolic link out of the folder, not followed"),
        "data/train.json": ("linted", None),
    }


def test_input_size_is_bounded_by_its_variable(tmp_path, monkeypatch):
    path = tmp_path / "a.json"
    path.write_text(json.dumps(coco()))
    (tmp_path / "pred.json").write_text("[]")
    monkeypatch.setenv("LABELLINT_MAX_INPUT_BYTES", "100")
    for reader in (lambda: load(path), lambda: predictions.load(path), lambda: predictions.read_json(path)):
        with pytest.raises(InputError, match="larger than 100 bytes.*LABELLINT_MAX_INPUT_BYTES"):
            reader()
    (tmp_path / "labellint.toml").write_text("# " + "x" * 200 + "\n")
    code, _, err = run("check", path)
    assert code == 2 and "labellint.toml: larger than 100 bytes" in one_error(err)


# -- 5. nothing to lint ---------------------------------------------------------------------------
def test_paths_with_no_json_file_are_an_error(tmp_path):
    (tmp_path / "renamed").mkdir()
    (tmp_path / "renamed" / "notes.txt").write_text("x")
    code, _, err = run("check", tmp_path / "renamed")
    assert code == 2 and "no JSON files found in" in one_error(err)
    code, _, err = run("baseline", "create", tmp_path / "renamed", "-o", tmp_path / "b.json")
    assert code == 2 and "no JSON files found in" in one_error(err)
    assert not (tmp_path / "b.json").exists()


# -- 6. a report written over an input --------------------------------------------------------------
def test_a_report_over_an_input_is_refused_and_nothing_is_written(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    train = data / "train.json"
    train.write_text(json.dumps(coco()))
    original = train.read_bytes()
    os.link(train, tmp_path / "hard.json")
    (tmp_path / "link.json").symlink_to(train)
    for args in (["check", train, "-o", train], ["check", train, "-o", tmp_path / "hard.json"],
                 ["check", tmp_path / "link.json", "-f", "sarif", "-o", train],
                 ["check", data, "-f", "json", "-o", train],
                 ["check", tmp_path / "other.json", "--predictions", train, "-o", train],
                 ["baseline", "create", data, "-o", tmp_path / "link.json"]):
        code, _, err = run(*args)
        assert code == 2, args
        assert "the output would overwrite" in one_error(err), args
        assert train.read_bytes() == original and (tmp_path / "link.json").is_symlink()


def test_a_previous_report_or_baseline_in_a_linted_folder_may_be_replaced(tmp_path):
    (tmp_path / "train.json").write_text(json.dumps(coco()))
    for _ in range(2):
        code, _, err = run("check", ".", "-f", "json", "-o", "report.json", cwd=tmp_path)
        assert code == 0, err
        code, _, err = run("baseline", "create", ".", cwd=tmp_path)
        assert code == 0, err
    assert json.loads((tmp_path / "report.json").read_text())["files"]
