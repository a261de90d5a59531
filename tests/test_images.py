"""Image access (LL4xx): hostile paths, broken files, sizes, EXIF, bombs, modes, duplicates.

Every picture is generated here with PIL (a few dozen pixels); the rules run through the CLI or
the engine exactly as in a real run.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from labellint import images, registry
from labellint.cli import cli
from labellint.coco import load
from labellint.config import FileSettings
from labellint.engine import lint


def picture(path: Path, size=(64, 48), mode="RGB", fmt=None, seed=0, exif_orientation=None, block=8) -> Path:
    """A small picture of random coloured blocks (different seeds: different perceptual hashes)."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = (rng.random((h // block + 1, w // block + 1, 3)) * 255).astype(np.uint8)
    arr = np.kron(base, np.ones((block, block, 1), np.uint8))[:h, :w]
    im = Image.fromarray(arr, "RGB")
    if mode == "I;16":
        im = Image.fromarray(arr[..., 0].astype("<u2") * 257)
        assert im.mode == "I;16"
    elif mode != "RGB":
        im = im.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    kw = {}
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kw["exif"] = exif.tobytes()
    im.save(path, format=fmt, **kw)
    return path


def doc_for(names, sizes=None, annotations=None) -> dict:
    sizes = sizes or [(64, 48)] * len(names)
    return {"images": [{"id": i + 1, "file_name": n, "width": w, "height": h}
                       for i, (n, (w, h)) in enumerate(zip(names, sizes))],
            "annotations": annotations or [], "categories": [{"id": 1, "name": "cat"}]}


def run_codes(tmp_path, doc, root, *extra, select="LL4"):
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(doc))
    res = CliRunner().invoke(cli, ["check", str(path), "--images", str(root), "--select", select,
                                   "-f", "json", "--no-cache", *extra])
    assert res.exit_code in (0, 1), res.output
    out = json.loads(res.stdout)
    return [(f["code"], f["image_id"], f["message"]) for f in out["findings"]], out


@pytest.fixture
def root(tmp_path) -> Path:
    r = tmp_path / "images"
    picture(r / "a.jpg")
    return r


def test_clean_image_has_no_findings(tmp_path, root):
    found, _ = run_codes(tmp_path, doc_for(["a.jpg"]), root)
    assert found == []


@pytest.mark.parametrize("name", ["../outside.jpg", "sub/../../outside.jpg", "/etc/hostname", "C:\\x.jpg",
                                  "..\\outside.jpg"])
def test_paths_that_escape_the_root_are_refused_not_opened(tmp_path, root, name, monkeypatch):
    picture(tmp_path / "outside.jpg")
    opened = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda p, *a, **k: (opened.append(str(p)), real_open(p, *a, **k))[1])
    found, _ = run_codes(tmp_path, doc_for([name]), root)
    assert [c for c, _, _ in found] == ["LL401"]
    assert not any("outside.jpg" in p for p in opened)


def test_symlink_pointing_outside_is_refused(tmp_path, root):
    secret = picture(tmp_path / "secret.jpg")
    os.symlink(secret, root / "link.jpg")
    os.symlink(tmp_path, root / "linkdir")
    found, _ = run_codes(tmp_path, doc_for(["link.jpg", "linkdir/secret.jpg"]), root)
    assert [c for c, _, _ in found] == ["LL401", "LL401"]
    assert all("symlink" in m for _, _, m in found)


def test_symlink_inside_the_root_is_fine(tmp_path, root):
    os.symlink(root / "a.jpg", root / "alias.jpg")
    found, _ = run_codes(tmp_path, doc_for(["alias.jpg"]), root)
    assert found == []


def test_missing_file(tmp_path, root):
    found, _ = run_codes(tmp_path, doc_for(["a.jpg", "gone.jpg"]), root)
    assert [(c, i) for c, i, _ in found] == [("LL402", 2)]


def test_truncated_jpeg_and_junk_are_unreadable(tmp_path, root):
    data = (root / "a.jpg").read_bytes()
    (root / "cut.jpg").write_bytes(data[: int(len(data) * 0.6)])
    (root / "junk.jpg").write_bytes(b"not a picture at all")
    (root / "folder.jpg").mkdir()
    found, _ = run_codes(tmp_path, doc_for(["cut.jpg", "junk.jpg", "folder.jpg"]), root)
    assert [c for c, _, _ in found] == ["LL403"] * 3
    messages = {i: m for _, i, m in found}
    assert "truncated" in messages[1]


def test_wrong_size(tmp_path, root):
    found, _ = run_codes(tmp_path, doc_for(["a.jpg"], sizes=[(640, 480)]), root)
    assert [c for c, _, _ in found] == ["LL404"]
    assert "64x48" in found[0][2] and "640x480" in found[0][2]


def test_exif_orientation_6(tmp_path, root):
    picture(root / "rot.jpg", size=(64, 48), exif_orientation=6)
    # drawn on the rotated view: the JSON has the displayed (swapped) size, which is not a size error
    found, _ = run_codes(tmp_path, doc_for(["rot.jpg"], sizes=[(48, 64)]), root)
    assert [c for c, _, _ in found] == ["LL405"]
    assert "orientation 6" in found[0][2] and "rotated view" in found[0][2]
    found, _ = run_codes(tmp_path, doc_for(["rot.jpg"], sizes=[(64, 48)]), root)
    assert [c for c, _, _ in found] == ["LL405"] and "stored" in found[0][2]


def test_decompression_bomb_is_stopped_at_the_header(tmp_path, root, monkeypatch):
    picture(root / "big.png", size=(400, 300), fmt="PNG")
    (tmp_path / "labellint.toml").write_text("[rules.LL406]\nmax_pixels = 5000\n")
    loads = []
    real_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: (loads.append(self.size), real_load(self))[1])
    found, _ = run_codes(tmp_path, doc_for(["big.png", "a.jpg"], sizes=[(400, 300), (64, 48)]), root,
                         "--config", str(tmp_path / "labellint.toml"))
    assert [(c, i) for c, i, _ in found] == [("LL406", 1)]
    assert (400, 300) not in loads  # refused before decompressing
    assert Image.MAX_IMAGE_PIXELS != 5000  # PIL's global limit is restored after the pass


def test_pil_refusal_over_twice_its_limit_is_reported_too():
    im = Image.new("L", (200, 200))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 1000  # PIL raises DecompressionBombError at open above twice this
    try:
        info, decoded = images.decode(buf.getvalue(), max_pixels=10**9)
    finally:
        Image.MAX_IMAGE_PIXELS = old
    assert info.status == images.TOO_LARGE and decoded is None


@pytest.mark.parametrize("mode,fmt", [("CMYK", "JPEG"), ("P", "PNG"), ("RGBA", "PNG"), ("I;16", "PNG"),
                                      ("L", "PNG"), ("LA", "PNG"), ("1", "PNG")])
def test_every_mode_decodes_and_becomes_rgb(tmp_path, root, mode, fmt):
    name = f"m.{fmt.lower()}"
    picture(root / name, mode=mode, fmt=fmt)
    found, _ = run_codes(tmp_path, doc_for([name]), root)
    assert found == []
    info, im = images.decode((root / name).read_bytes(), images.DEFAULT_MAX_PIXELS)
    rgb = images.to_rgb(im)
    assert rgb.mode == "RGB" and rgb.size == (64, 48)
    if mode == "I;16":
        assert np.asarray(rgb).max() > 100  # 16-bit values are scaled, not clipped to white or black


def test_json_folder_is_searched_when_inside_the_root(tmp_path):
    root = tmp_path / "data"
    picture(root / "train" / "x.jpg")
    ann = root / "train" / "_annotations.coco.json"
    ann.write_text(json.dumps(doc_for(["x.jpg"])))
    res = CliRunner().invoke(cli, ["check", str(ann), "--images", str(root), "--select", "LL4", "-f", "json",
                                   "--no-cache"])
    assert json.loads(res.stdout)["findings"] == []


def test_image_rules_are_listed_as_skipped_without_images(tmp_path, monkeypatch):
    monkeypatch.delenv("LABELLINT_BACKBONE", raising=False)
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(doc_for(["a.jpg"])))
    res = CliRunner().invoke(cli, ["check", str(path), "--select", "LL4,LL5"])
    skipped = [line for line in res.output.splitlines() if re.search(r"\bskipped\b", line)]
    assert len(skipped) == 1, res.output  # one line for them all, codes grouped into ranges
    assert "LL401-LL411 need --images;" in skipped[0] and "LL501 needs --images and --backbone" in skipped[0]
    res = CliRunner().invoke(cli, ["check", str(path), "--select", "LL4,LL5", "-f", "json"])
    reasons = {r["code"]: r["reason"] for r in json.loads(res.stdout)["skipped_rules"]}
    for code in ("LL401", "LL402", "LL406", "LL410", "LL411"):
        assert reasons[code] == "needs --images DIR"
    assert reasons["LL501"].startswith("needs --images DIR and --backbone")


def test_near_pairs_pigeonhole_matches_brute_force():
    rng = np.random.default_rng(1)
    base = rng.integers(0, 2**63, size=40, dtype=np.uint64)
    flips = np.array([np.uint64(1) << np.uint64(b) for b in rng.integers(0, 64, size=40)], np.uint64)
    hashes = np.concatenate([base, base ^ flips, base[:10] ^ flips[:10] ^ (flips[10:20])])
    for d in (0, 1, 2, 5):
        got = {(i, j) for i, j, _ in images.near_pairs(hashes, d)}
        want = {(i, j) for i in range(len(hashes)) for j in range(i + 1, len(hashes))
                if images.hamming(hashes[i], hashes[j]) <= d}
        assert got == want


def test_duplicates_identical_and_reencoded_but_not_moved_objects(tmp_path, root):
    (root / "copy.jpg").write_bytes((root / "a.jpg").read_bytes())
    picture(root / "big.png", size=(512, 384), seed=3, fmt="PNG", block=64)
    Image.open(root / "big.png").convert("RGB").resize((256, 192)).save(root / "small.jpg", quality=80)
    moved = np.asarray(Image.open(root / "big.png").convert("RGB")).copy()
    moved[40:120, 40:100] = 255  # an object put on the scene
    Image.fromarray(moved).save(root / "moved.png")
    names = ["a.jpg", "copy.jpg", "big.png", "small.jpg", "moved.png"]
    found, _ = run_codes(tmp_path, doc_for(names, sizes=[(64, 48), (64, 48), (512, 384), (256, 192), (512, 384)]),
                         root)
    dup = {(i, m) for c, i, m in found if c == "LL410"}
    assert {i for i, _ in dup} == {2, 4}
    assert any("identical bytes" in m for i, m in dup if i == 2)


def test_leakage_across_files_linted_together(tmp_path, root):
    picture(root / "b.jpg", seed=5)
    Image.open(root / "a.jpg").save(root / "a_again.png")
    train = tmp_path / "train.json"
    val = tmp_path / "val.json"
    train.write_text(json.dumps(doc_for(["a.jpg"])))
    val.write_text(json.dumps(doc_for(["b.jpg", "a_again.png"])))
    res = CliRunner().invoke(cli, ["check", str(train), str(val), "--images", str(root), "--select", "LL411",
                                   "-f", "json", "--no-cache"])
    out = json.loads(res.stdout)["findings"]
    assert [(f["code"], f["path"].endswith("val.json"), f["image_id"]) for f in out] == [("LL411", True, 2)]
    assert "train.json" in out[0]["message"]
    # one file alone cannot leak
    res = CliRunner().invoke(cli, ["check", str(val), "--images", str(root), "--select", "LL411", "-f", "json",
                                   "--no-cache"])
    assert json.loads(res.stdout)["findings"] == []


def test_each_image_is_decoded_once_for_all_image_rules(tmp_path, root, monkeypatch):
    picture(root / "b.jpg", seed=2)
    calls = []
    real = images.decode
    monkeypatch.setattr(images.scanning, "decode", lambda data, limit: (calls.append(1), real(data, limit))[1])
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(doc_for(["a.jpg", "b.jpg"])))
    rules = [r for r in registry.all_rules() if r.code.startswith("LL4")]
    settings = FileSettings(rules=rules, options={r.code: dict(r.options) for r in rules},
                            severity={r.code: r.severity for r in rules})
    ds = load(path, "ann.json")
    lint(ds, settings, {"images": root, "no_cache": True})
    assert len(calls) == 2


def test_scan_cache_spares_the_decode_on_a_second_run(tmp_path, root, monkeypatch):
    monkeypatch.setenv("LABELLINT_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(doc_for(["a.jpg"], sizes=[(640, 480)])))
    args = ["check", str(path), "--images", str(root), "--select", "LL4", "-f", "json"]
    first = json.loads(CliRunner().invoke(cli, args).stdout)["findings"]
    assert (tmp_path / "cache" / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    calls = []
    real = images.decode
    monkeypatch.setattr(images.scanning, "decode", lambda data, limit: (calls.append(1), real(data, limit))[1])
    second = json.loads(CliRunner().invoke(cli, args).stdout)["findings"]
    assert calls == [] and [f["message"] for f in first] == [f["message"] for f in second]
    # a corrupt scan record is a miss, not a crash
    for rec in (tmp_path / "cache" / "scan").rglob("*.json"):
        rec.write_text("{not json")
    third = json.loads(CliRunner().invoke(cli, args).stdout)["findings"]
    assert len(calls) == 1 and [f["message"] for f in third] == [f["message"] for f in first]


def test_a_changed_file_is_read_again_despite_the_stat_index(tmp_path, root, monkeypatch):
    monkeypatch.setenv("LABELLINT_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(doc_for(["a.jpg"])))
    args = ["check", str(path), "--images", str(root), "--select", "LL4", "-f", "json"]
    assert json.loads(CliRunner().invoke(cli, args).stdout)["findings"] == []
    assert (tmp_path / "cache" / "stat-index.json").is_file()
    picture(root / "a.jpg", size=(80, 60), seed=9)  # replaced in place: new size and mtime
    os.utime(root / "a.jpg", ns=(1, 1))
    found = json.loads(CliRunner().invoke(cli, args).stdout)["findings"]
    assert [f["code"] for f in found] == ["LL404"]


def test_diff_base_also_filters_cross_file_findings(tmp_path, root):
    """Leakage already present at the base ref is not new; leakage the change adds is."""
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    for args in (["init", "-q", "-b", "main"], ["config", "user.email", "t@e.x"], ["config", "user.name", "t"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    picture(root / "b.jpg", seed=5)
    picture(root / "c.jpg", seed=9)
    Image.open(root / "a.jpg").save(root / "a_again.png")
    Image.open(root / "c.jpg").save(root / "c_again.png")
    (repo / "train.json").write_text(json.dumps(doc_for(["a.jpg", "c.jpg"])))
    (repo / "val.json").write_text(json.dumps(doc_for(["b.jpg", "a_again.png"])))
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "base"], cwd=repo, check=True)
    (repo / "val.json").write_text(json.dumps(doc_for(["b.jpg", "a_again.png", "c_again.png"])))
    args = ["check", str(repo / "train.json"), str(repo / "val.json"), "--images", str(root), "--select",
            "LL411", "-f", "json", "--no-cache"]
    everything = json.loads(CliRunner().invoke(cli, args).stdout)["findings"]
    assert sorted(f["image_id"] for f in everything) == [2, 3]
    old = os.getcwd()
    os.chdir(repo)
    try:
        report = json.loads(CliRunner().invoke(cli, args + ["--diff-base", "main"]).stdout)
    finally:
        os.chdir(old)
    assert [f["image_id"] for f in report["findings"]] == [3]
    assert report["summary"]["hidden"] == 1


def test_a_measurement_is_computed_once_per_picture_and_cached(tmp_path, root, monkeypatch):
    """A per-image measurement is one Measurement (no edit of the pass or its cache record): it
    gets each decoded picture once, and a warm run reads its values without decoding anything."""
    from labellint.context import RunContext

    monkeypatch.setenv("LABELLINT_CACHE_DIR", str(tmp_path / "cache"))
    picture(root / "b.jpg", seed=2)
    (root / "junk.jpg").write_bytes(b"not a picture")
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(doc_for(["a.jpg", "b.jpg", "junk.jpg"])))
    calls = []
    real = images.scanning.decode
    monkeypatch.setattr(images.scanning, "decode", lambda data, limit: (calls.append(1), real(data, limit))[1])

    def run():
        m = images.Measurement("brightness-test", lambda rgb: round(float(np.asarray(rgb).mean()), 3))
        ds = load(path, "ann.json")
        context = RunContext(images=root, source=path)
        images.prepare(ds, context, visitor=m)
        images.scan(ds, context)
        return m

    cold = run()
    assert cold.measured == 2 and sorted(cold.values) == [0, 1]  # the junk file has no picture to measure
    assert cold.values[0] != cold.values[1]
    decoded = len(calls)
    warm = run()
    assert warm.measured == 0 and warm.values == cold.values and len(calls) == decoded  # nothing decoded again
    renamed = images.Measurement("brightness-test-v2", lambda rgb: 1.0)  # a new version: measured again
    ds = load(path, "ann.json")
    images.prepare(ds, RunContext(images=root, source=path), visitor=renamed)
    images.scan(ds, RunContext(images=root, source=path))
    assert renamed.measured == 2 and renamed.values == {0: 1.0, 1: 1.0}
