"""Hostile input against the image pass, the crops, the cache and the progress bar (issue 12).

A file name the filesystem rejects, an absurd box, a file or a header too big to read, a cache that
a pull request committed, a cache that cannot be written, a file name full of terminal escapes:
each is that image's finding or a note, never a dropped file, a crash, runaway memory or a lie.
Real files, real PIL, real onnxruntime (a tiny colour backbone), real subprocesses under resource
limits where a regression would otherwise eat the machine.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import resource
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import REPO
from PIL import Image

from labellint import images, limits, progress, registry
from labellint.cli import cli
from labellint.coco import load
from labellint.config import FileSettings
from labellint import cache as cache_mod
from labellint.context import RunContext
from labellint.embed import crops
from labellint.engine import lint
from labellint.run import Options, check


def picture(path: Path, size=(64, 48), colour=(200, 40, 40), fmt=None, at=(4, 4)) -> Path:
    """A grey picture with one coloured block (its place changes the perceptual hash, its colour does not)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", size, (150, 150, 150))
    im.paste(colour, (at[0], at[1], at[0] + size[0] // 2 - 4, at[1] + size[1] // 2 - 4))
    im.save(path, format=fmt)
    return path


def doc_for(names, annotations=(), size=(64, 48)) -> dict:
    return {"images": [{"id": i + 1, "file_name": n, "width": size[0], "height": size[1]} for i, n in enumerate(names)],
            "annotations": list(annotations), "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}


def run_json(ann: Path, root: Path, *extra, select="LL4"):
    res = CliRunner().invoke(cli, ["check", str(ann), "--images", str(root), "--select", select, "-f", "json",
                                   *extra])
    assert res.exit_code in (0, 1), res.output
    return json.loads(res.stdout)


def png_header(width: int, height: int, pad_to: int = 0) -> bytes:
    """A PNG whose header claims width x height, with one tiny IDAT (PIL's open stops there)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    head = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


# -- 1. every filesystem answer about a dataset's path is a per-image finding -----------------------

def test_names_the_filesystem_rejects_are_findings_not_a_dropped_file(tmp_path):
    root = tmp_path / "images"
    picture(root / "a.jpg")
    (root / "folder.jpg").mkdir()
    names = ["a.jpg",
             "x" * 300 + ".jpg",  # over NAME_MAX: ENAMETOOLONG from stat and open
             "/".join(["d" * 200] * 25) + "/a.jpg",  # over PATH_MAX
             "folder.jpg"]
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(doc_for(names)))
    out = run_json(ann, root, "--no-cache")
    assert [f["status"] for f in out["files"]] == ["linted"] and not out["errors"]
    found = {f["image_id"]: (f["code"], f["message"]) for f in out["findings"]}
    assert 1 not in found
    assert found[2][0] == found[3][0] == "LL402"
    assert "too long for the filesystem" in found[2][1] and "too long for the filesystem" in found[3][1]
    assert found[4] == ("LL403", "image 'folder.jpg' is a folder, not a file")


def test_resolve_never_raises_on_a_name_the_filesystem_rejects(tmp_path):
    """The gallery and the training loader resolve names too; the JSON loader refuses lone
    surrogates, but a caller with another source of names must not get a traceback from them."""
    for name in ("x" * 5000, "/".join(["d" * 250] * 40)):
        path, why = images.resolve(tmp_path, name)
        assert why is None and path is not None  # not there: the read says why, as LL402
        data, failed = images.read_file(path)
        assert data is None and failed.status == images.MISSING and "too long" in failed.message
    picture(tmp_path / "a.png", fmt="PNG")
    data, failed = images.read_file(tmp_path / "a.png", max_bytes=10)
    assert data is None and failed.status == images.TOO_LARGE and "LABELLINT_MAX_IMAGE_BYTES" in failed.message
    assert images.read_file(tmp_path / "a.png")[0] == (tmp_path / "a.png").read_bytes()
    path, why = images.resolve(tmp_path, "a\ud800.jpg")
    assert path is None and "no file name can hold" in why


def test_a_folder_that_cannot_be_searched_is_an_unreadable_image(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads every folder")
    root = tmp_path / "images"
    picture(root / "locked" / "a.jpg")
    (root / "locked").chmod(0)
    try:
        ann = tmp_path / "ann.json"
        ann.write_text(json.dumps(doc_for(["locked/a.jpg"])))
        out = run_json(ann, root, "--no-cache")
    finally:
        (root / "locked").chmod(0o755)
    assert [(f["code"], f["image_id"]) for f in out["findings"]] == [("LL403", 1)]


# -- 2. a box that cannot be cropped is skipped, whatever its numbers --------------------------------

ABSURD = [[0, 0, 1.7e308, 1.7e308],  # the side overflows to inf
          [1e308, 1e308, 1e308, 1e308],  # the centre overflows
          [-1.7e308, -1.7e308, 1.7e308, 1.7e308],
          [0, 0, 1e308, 1e308],  # finite throughout, but the picture is under a pixel of the crop
          [500, 500, 10, 10],  # outside the picture
          [-30, 10, 20, 20],
          [64.3, 20, 0.1, 0.1],  # after clipping, under half a pixel of the picture is left
          [float("nan"), 0, 10, 10], [0, 0, float("inf"), 10]]


@pytest.mark.parametrize("box", ABSURD)
def test_crop_window_refuses_boxes_it_cannot_cut(box):
    im = Image.new("RGB", (64, 48), (10, 20, 30))
    assert crops.window(box, 0.1, 64, 48, (32, 32)) is None
    assert crops.cut(im, box, (32, 32), 0.1, (0, 0, 0)) is None


def test_crop_window_keeps_ordinary_boxes_within_the_output():
    im = Image.new("RGB", (64, 48), (10, 20, 30))
    for box in ([0, 0, 64, 48], [10, 10, 0.5, 0.5], [60, 40, 30, 30], [-5, -5, 20, 20], [0, 0, 500, 500]):
        (left, top, right, bottom), (px0, py0, dw, dh) = crops.window(box, 0.1, 64, 48, (32, 32))
        assert 0 <= left < right <= 64 and 0 <= top < bottom <= 48
        assert 0 <= px0 and px0 + dw <= 32 and 0 <= py0 and py0 + dh <= 32
        assert crops.cut(im, box, (32, 32), 0.1, (0, 0, 0)).shape == (32, 32, 3)


def test_an_absurd_box_is_skipped_by_ll501_not_the_end_of_the_file(tmp_path):
    pytest.importorskip("onnxruntime", reason="the embedding rules need onnxruntime (the embed extra)")
    pytest.importorskip("hnswlib", reason="the embedding rules need hnswlib (the embed extra)")
    from rule_examples import colour_backbone

    root = tmp_path / "images"
    names = []
    for i in range(6):
        picture(root / f"{i}.png", colour=(220, 30, 30) if i % 2 else (30, 30, 220))
        names.append(f"{i}.png")
    anns = [{"id": 10 + i, "image_id": i + 1, "category_id": 1 + i % 2, "bbox": [4, 4, 28, 20]} for i in range(6)]
    anns += [{"id": 100 + k, "image_id": 1, "category_id": 1, "bbox": box}
             for k, box in enumerate(b for b in ABSURD if all(np.isfinite(b)))]
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(doc_for(names, anns)))
    rules = [registry.by_code()["LL501"]]
    settings = FileSettings(rules=rules, options={"LL501": {**rules[0].options, "k": 3, "min_class_support": 2}},
                            severity={"LL501": rules[0].severity})
    ds = load(ann, "ann.json")
    found, skipped = lint(ds, settings, {"images": root, "no_cache": True, "device": "cpu",
                                         "backbone": colour_backbone(tmp_path / "colour.onnx")})
    assert skipped == [] and all(f.code == "LL501" for f in found)
    from labellint import embed

    emb = embed.request(ds, 0.1, RunContext(images=root, backbone=str(tmp_path / "colour.onnx"), device="cpu",
                                            no_cache=True))
    assert sorted(emb.vectors) == [10 + i for i in range(6)]  # only the croppable boxes were embedded


# -- 3. nothing is read past the byte limit, and an over-limit header is refused unread ---------------

def _limited(mem_bytes: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # a full disk, for the cache's writes
    return apply


def test_big_files_and_headers_are_refused_unread_and_a_full_disk_is_a_note(tmp_path):
    """One real run in a child process held to 700 MiB of address space and 4 KiB per written file.

    ``huge.jpg`` is a 1.5 GiB sparse file (over the default 1 GiB byte limit); ``claims.png`` is a
    900 MiB file whose header claims 40000x40000 pixels: reading either whole would break the memory
    limit. ``pipe.jpg`` is a FIFO: opening it to read would wait for a writer forever (hence a child
    process, with a timeout). ``a.png`` is fine, and its cache record (over 4 KiB) cannot be written:
    a note."""
    root = tmp_path / "images"
    picture(root / "a.png", fmt="PNG")
    with open(root / "huge.jpg", "wb") as fh:
        fh.truncate(3 << 29)
    with open(root / "claims.png", "wb") as fh:
        fh.write(png_header(40000, 40000))
        fh.truncate(900 << 20)
    ann = tmp_path / "ann.json"
    names = ["a.png", "huge.jpg", "claims.png"]
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / "pipe.jpg")
        names.append("pipe.jpg")
    ann.write_text(json.dumps(doc_for(names)))
    env = {**os.environ, "LABELLINT_CACHE_DIR": str(tmp_path / "cache"), "PYTHONDONTWRITEBYTECODE": "1",
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "LABELLINT_MAX_INPUT_BYTES": str(1 << 20)}  # the JSON and config readers' limit: not tested here
    env.pop("LABELLINT_MAX_IMAGE_BYTES", None)
    done = subprocess.run([sys.executable, "-m", "labellint", "check", str(ann), "--images", str(root),
                           "--select", "LL4", "-f", "json"], cwd=REPO, env=env, capture_output=True, text=True,
                          preexec_fn=_limited(700 << 20), timeout=60)
    assert done.returncode == 1, done.stderr
    out = json.loads(done.stdout)
    found = {f["image_id"]: (f["code"], f["message"]) for f in out["findings"]}
    assert sorted(found) == list(range(2, len(names) + 1)), [(f["code"], f["message"]) for f in out["findings"]]
    assert found[2][0] == "LL406" and "1,610,612,736 bytes" in found[2][1] and "LABELLINT_MAX_IMAGE_BYTES" in found[2][1]
    assert found[3][0] == "LL406" and "1600000000 pixels" in found[3][1] and "max_pixels" in found[3][1]
    if hasattr(os, "mkfifo"):
        assert found[4] == ("LL403", "image 'pipe.jpg' is not a regular file (a FIFO, a device or a socket)")
    assert [n for n in out["notes"] if "cannot be written" in n] and len(out["notes"]) == 1


def test_the_byte_limit_is_read_from_the_environment_and_the_rule_option(tmp_path, monkeypatch):
    root = tmp_path / "images"
    picture(root / "a.png", fmt="PNG")
    size = (root / "a.png").stat().st_size
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(doc_for(["a.png"])))
    assert run_json(ann, root, "--no-cache")["findings"] == []
    monkeypatch.setenv("LABELLINT_MAX_IMAGE_BYTES", str(size - 1))
    (f,) = run_json(ann, root, "--no-cache")["findings"]
    assert f["code"] == "LL406" and f"the file's {size:,} bytes are over the limit of {size - 1:,}" in f["message"]
    (tmp_path / "labellint.toml").write_text(f"[rules.LL406]\nmax_bytes = {size}\n")
    assert run_json(ann, root, "--no-cache", "--config", str(tmp_path / "labellint.toml"))["findings"] == []
    assert limits.LIMITS["max_image_bytes"].env == "LABELLINT_MAX_IMAGE_BYTES"


# -- 4. the cache: never from the linted tree, never trusted blindly, never fatal ---------------------

@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A pull request's checkout: a git work tree with annotations, a 20000x20000 bomb, a truncated
    picture, and a committed ``.labellint_cache/`` whose records say both are fine."""
    work = tmp_path / "checkout"
    root = work / "images"
    picture(root / "a.png", fmt="PNG")
    (root / "bomb.png").write_bytes(png_header(20000, 20000))
    full = io.BytesIO()
    Image.new("RGB", (64, 48), (9, 9, 9)).save(full, "JPEG")
    (root / "cut.jpg").write_bytes(full.getvalue()[: len(full.getvalue()) * 2 // 3])
    (work / ".git").mkdir()
    ann = work / "ann.json"
    ann.write_text(json.dumps(doc_for(["a.png", "bomb.png", "cut.jpg"])))
    good = images.info_from_json(_record(root / "a.png"))
    for name in ("bomb.png", "cut.jpg"):  # what the pull request claims: "64x48, decoded fine"
        digest = hashlib.sha256((root / name).read_bytes()).hexdigest()
        fake = work / ".labellint_cache" / "scan" / digest[:2] / f"{digest}.json"
        fake.parent.mkdir(parents=True, exist_ok=True)
        good.digest = digest
        fake.write_text(images.info_to_json(good))
    monkeypatch.chdir(work)
    monkeypatch.delenv("LABELLINT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    return work


def _record(path: Path) -> str:
    info, im = images.decode(path.read_bytes(), images.DEFAULT_MAX_PIXELS)
    thumb = images.thumbnail(images.to_rgb(im))
    info.phash, info.thumb = images.phash(thumb), thumb.tobytes().hex()
    return images.info_to_json(info)


def test_a_cache_committed_in_the_checkout_is_never_read(repo, tmp_path):
    out = run_json(Path("ann.json"), Path("images"))
    assert sorted((f["code"], f["image_id"]) for f in out["findings"]) == [("LL403", 3), ("LL406", 2)]
    assert (tmp_path / "user-cache" / "labellint" / "CACHEDIR.TAG").is_file()  # the user's cache, not the checkout's
    assert out["notes"] == []


def test_a_cache_folder_inside_the_checkout_is_refused_with_a_note(repo, monkeypatch):
    monkeypatch.setenv("LABELLINT_CACHE_DIR", ".labellint_cache")
    out = run_json(Path("ann.json"), Path("images"))
    assert sorted((f["code"], f["image_id"]) for f in out["findings"]) == [("LL403", 3), ("LL406", 2)]
    (note,) = out["notes"]
    assert "is not used" in note and "inside" in note and "LABELLINT_CACHE_DIR" in note


@pytest.mark.parametrize("kind", ["symlink", "other-user", "a-file"])
def test_a_cache_folder_that_is_not_our_own_is_refused_with_a_note(tmp_path, monkeypatch, kind):
    root = tmp_path / "images"
    picture(root / "a.png", fmt="PNG")
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(doc_for(["a.png"])))
    target = tmp_path / "cache"
    if kind == "symlink":
        (tmp_path / "elsewhere").mkdir()
        target.symlink_to(tmp_path / "elsewhere")
    elif kind == "other-user":
        if os.geteuid() == 0:
            target.mkdir()
            os.chown(target, 65534, 65534)
        else:
            target = Path("/")  # root's, not ours
    else:
        target.write_text("not a folder")
    monkeypatch.setenv("LABELLINT_CACHE_DIR", str(target))
    out = run_json(ann, root)
    assert out["findings"] == [] and not out["errors"]
    (note,) = out["notes"]
    assert "is not used" in note and "uncached" in note
    if kind == "symlink":
        assert not list((tmp_path / "elsewhere").iterdir())  # nothing written through the link


def test_corrupt_or_lying_cache_entries_are_one_note_and_recomputed(tmp_path, monkeypatch):
    monkeypatch.setenv("LABELLINT_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "images"
    picture(root / "a.png", fmt="PNG")
    picture(root / "b.png", fmt="PNG", at=(30, 20))
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(doc_for(["a.png", "b.png"])))
    assert run_json(ann, root)["findings"] == []
    records = sorted((tmp_path / "cache" / "scan").rglob("*.json"))
    assert len(records) == 2
    bad = json.loads(records[0].read_text())
    bad["orientation"] = "../../../etc"  # not data a record can hold: a miss, never a path
    records[0].write_text(json.dumps(bad))
    records[1].write_text('{"v": 3, "status": "ok"}')
    (tmp_path / "cache" / "stat-index.json").write_text('{"v": 1, "x": [1, 2, "../../escape"]}')
    out = run_json(ann, root)
    assert out["findings"] == [] and len(out["notes"]) == 1 and "could not be used" in out["notes"][0]
    assert json.loads(records[0].read_text())["orientation"] == 1  # recomputed and overwritten


@pytest.mark.parametrize("record", [
    {"status": "ok", "width": "64"}, {"status": "ok", "width": 0}, {"status": "ok", "orientation": 9},
    {"status": "ok", "thumb": None}, {"status": "ok", "phash": "zz" * 8}, {"status": "fine"},
    {"status": "ok", "path": "/etc/passwd"}, {"status": "ok", "extra": 1}, {"status": "ok", "truncated": 0}])
def test_scan_records_are_checked_field_by_field(tmp_path, record):
    good = json.loads(_record(picture(tmp_path / "a.png", fmt="PNG")))
    assert images.info_from_json(json.dumps(good)) is not None
    assert images.info_from_json(json.dumps({**good, **record})) is None


def test_embedding_entries_are_plain_arrays_of_the_expected_layout(tmp_path):
    cache = cache_mod.Cache(tmp_path / "cache")
    path = cache.embed_path("space", "ab" * 32, "o1")
    cache.put_embeddings(path, {cache_mod.box_key([1, 2, 3, 4]): np.ones(3, np.float32)}, 3)
    assert list(cache.get_embeddings(path, 3)) == [cache_mod.box_key([1, 2, 3, 4])]
    assert cache.get_embeddings(path, 4) == {}  # another model's width: a miss
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)  # a pickle: never loaded
    path.write_bytes(buf.getvalue())
    assert cache.get_embeddings(path, 3) == {}
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000,), }"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)  # claims 400 GB
    assert cache.get_embeddings(path, 3) == {}
    with pytest.raises(ValueError):
        cache.embed_path("space", "../" * 30, "o1")


def test_the_default_cache_is_the_users_cache_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("LABELLINT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    if sys.platform.startswith("linux"):
        assert cache_mod.default_dir() == tmp_path / "xdg" / "labellint"
        monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # invalid per the XDG spec: ignored
        assert cache_mod.default_dir() == tmp_path / "home" / ".cache" / "labellint"
    monkeypatch.setenv("LABELLINT_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_mod.default_dir() == tmp_path / "mine"


# -- 5. the progress bar shows dataset text as plain, cleaned text ------------------------------------

HOSTILE = "[bold red]evil[/] \x1b[31mred\x1b[0m \u202eabc"


def test_progress_descriptions_are_plain_text(monkeypatch):
    from rich.console import Console

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("PRE_COMMIT", raising=False)
    monkeypatch.delenv("LABELLINT_NO_PROGRESS", raising=False)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200, color_system="standard")
    with progress.bar(console) as bar:
        task = bar.add_task(HOSTILE, total=2)
        bar.update(task, advance=1, description=f"linting {HOSTILE}")
        bar.refresh()
        assert bar.tasks[0].description == "linting [bold red]evil[/] \\x1b[31mred\\x1b[0m \\u202eabc"
    text = out.getvalue()
    assert "[bold red]evil[/]" in text and "\x1b[31mred" not in text and "\u202e" not in text


def test_a_file_name_with_escapes_reaches_the_bar_only_cleaned(tmp_path, monkeypatch):
    from rich.console import Console

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("PRE_COMMIT", raising=False)
    monkeypatch.delenv("LABELLINT_NO_PROGRESS", raising=False)
    name = tmp_path / "a\x1b[31m[bold red]x.json"
    name.write_text(json.dumps(doc_for(["a.jpg"])))
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=300, color_system="standard")
    check([name], Options(select=["LL0"]), console)
    assert "\x1b[31m[bold red]" not in out.getvalue() and "a\\x1b[31m[bold red]x.json" in out.getvalue()
