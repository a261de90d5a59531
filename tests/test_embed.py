"""Embeddings (LL501): crops, backbone sessions, cache, kNN, confident learning, the rule end to end.

Real onnxruntime sessions (the shared MobileNetV2 embedding model, or one exported here from a
randomly initialised torchvision model), real hnswlib, pictures generated with PIL.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

from labellint import images, registry
from labellint.cli import cli
from labellint.coco import load
from labellint.config import FileSettings
from labellint.embed import backbone as backbone_mod
from labellint.embed import consistency, crops, knn
from labellint.engine import lint
from labellint.errors import LabellintError

ort = pytest.importorskip("onnxruntime", reason="the embedding rules need onnxruntime (the embed extra)")
pytest.importorskip("hnswlib", reason="the embedding rules need hnswlib (the embed extra)")

DISC, BLOCK = "[bold red]disc[/]", "block"  # class names are untrusted: never rendered as markup


@pytest.fixture
def model(shared) -> Path:
    path = shared / "models" / "mobilenetv2-12-int8-embed.onnx"
    if not path.is_file():
        pytest.skip(f"needs the shared embedding model at {path}")
    return path


def shapes_dataset(root: Path, n_images=24, swapped=(3, 10, 17), seed=0) -> dict:
    """Pictures with one red disc and one blue block each; the classes of ``swapped`` boxes are swapped."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    doc = {"images": [], "annotations": [],
           "categories": [{"id": 1, "name": DISC}, {"id": 2, "name": BLOCK}]}
    for i in range(n_images):
        noise = (rng.random((96, 128, 3)) * 40 + 150).astype(np.uint8)
        im = Image.fromarray(noise, "RGB")
        d = ImageDraw.Draw(im)
        s1, s2 = (int(v) for v in rng.integers(24, 40, 2))
        x1, y1 = int(rng.integers(2, 60 - s1 + 20)), int(rng.integers(2, 94 - s1))
        x2, y2 = int(rng.integers(66, 126 - s2)), int(rng.integers(2, 94 - s2))
        d.ellipse([x1, y1, x1 + s1, y1 + s1], fill=(200 + int(rng.integers(0, 50)), 30, 30), outline=(90, 0, 0))
        d.rectangle([x2, y2, x2 + s2, y2 + s2], fill=(30, 60, 200 + int(rng.integers(0, 50))))
        name = f"img{i:03d}.png"
        im.save(root / name)
        doc["images"].append({"id": 100 + i, "file_name": name, "width": 128, "height": 96})
        for j, (cat, box) in enumerate(((1, [x1, y1, s1 + 1, s1 + 1]), (2, [x2, y2, s2 + 1, s2 + 1]))):
            doc["annotations"].append({"id": 1000 + 2 * i + j, "image_id": 100 + i, "category_id": cat,
                                       "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
    for k in swapped:
        a = doc["annotations"][k]
        a["category_id"] = 3 - a["category_id"]
    return doc


def settings_for(*codes, **options):
    rules = [registry.by_code()[c] for c in codes]
    return FileSettings(rules=rules, options={r.code: {**r.options, **{k: v for k, v in options.items()
                                                                          if k in r.options}} for r in rules},
                        severity={r.code: r.severity for r in rules})


# -- crops -----------------------------------------------------------------------------------------

def test_long_box_is_padded_not_centre_cropped():
    im = Image.new("RGB", (300, 200), (0, 0, 0))
    ImageDraw.Draw(im).rectangle([140, 40, 149, 139], fill=(255, 255, 255))  # 10 x 100 bar
    arr = crops.cut(im, [140, 40, 10, 100], (224, 224), 0.1, (124, 116, 104))
    assert arr.shape == (224, 224, 3)
    white = np.flatnonzero((arr > 200).all(axis=2).any(axis=1))
    # the whole bar is there: 100 px of a 120 px square side, about 187 of 224 rows
    assert white.max() - white.min() >= 180
    # a box at the corner: the part of the square outside the image is the mean colour, not black
    corner = crops.cut(im, [0, 0, 20, 20], (224, 224), 0.1, (124, 116, 104))
    assert tuple(corner[0, 0]) == (124, 116, 104) and tuple(corner[-1, -1]) == (0, 0, 0)
    assert crops.cut(im, [500, 500, 10, 10], (224, 224), 0.1, (0, 0, 0)) is None


def test_normaliser_maps_the_fill_colour_to_zero_in_either_channel_order():
    for order in ("RGB", "BGR"):
        pre = backbone_mod.Preprocess(channel_order=order)
        norm = crops.Normaliser(pre)
        x = norm(np.full((1, 4, 4, 3), norm.fill, np.uint8))
        assert x.shape == (1, 3, 4, 4) and np.abs(x).max() < 0.02


# -- backbone ------------------------------------------------------------------------------------

def test_providers_prefer_cuda_when_present():
    both = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert backbone_mod.choose_providers("auto", both) == both
    assert backbone_mod.choose_providers("auto", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert backbone_mod.choose_providers("cpu", both) == ["CPUExecutionProvider"]
    with pytest.raises(LabellintError, match="onnxruntime-gpu"):
        backbone_mod.choose_providers("cuda", ["CPUExecutionProvider"])


def test_warns_when_both_runtimes_are_installed(monkeypatch):
    monkeypatch.setattr(backbone_mod, "installed_runtimes", lambda: ["onnxruntime", "onnxruntime-gpu"])
    assert "pip uninstall onnxruntime" in backbone_mod.runtime_warning()
    monkeypatch.setattr(backbone_mod, "installed_runtimes", lambda: ["onnxruntime-gpu"])
    assert backbone_mod.runtime_warning() is None


def test_shared_model_known_preprocessing_and_sidecar(model, tmp_path):
    bb = backbone_mod.load(model, device="cpu", batch_size=3)
    assert bb.dim == 1280 and bb.pre.source == "known model" and bb.pre.size == (224, 224)
    assert bb.providers[0] == "CPUExecutionProvider"
    x = np.random.default_rng(0).random((7, 3, 224, 224), dtype=np.float32)
    y = bb.run(x)
    assert y.shape == (7, 1280) and np.allclose(y[2], bb.run(x[2:3])[0])
    copy = tmp_path / "m.onnx"
    shutil.copy(model, copy)
    (tmp_path / "m.onnx.json").write_text(json.dumps({"size": 224, "channel_order": "BGR", "mean": [0.5] * 3,
                                                      "std": [0.25] * 3}))
    bb2 = backbone_mod.load(copy)
    assert bb2.pre.source.startswith("sidecar") and bb2.pre.channel_order == "BGR" and bb2.space != bb.space
    (tmp_path / "m.onnx.json").write_text(json.dumps({"sise": 224}))
    with pytest.raises(LabellintError, match="unknown keys"):
        backbone_mod.load(copy)


def test_export_writes_metadata_that_the_backbone_reads(tmp_path):
    torch = pytest.importorskip("torch", reason="backbone export needs the train extra (torch, torchvision)")
    torchvision = pytest.importorskip("torchvision")
    pytest.importorskip("onnx", reason="backbone export needs onnx")
    weights = tmp_path / "random.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.mobilenet_v3_small(weights=None).state_dict(), weights)  # never downloaded
    out = tmp_path / "mv3.onnx"
    res = CliRunner().invoke(cli, ["backbone", "export", "--arch", "mobilenet_v3_small", "--weights", str(weights),
                                   "-o", str(out), "--size", "96"])
    assert res.exit_code == 0, res.output
    bb = backbone_mod.load(out)
    assert bb.pre.source == "onnx metadata" and bb.pre.size == (96, 96) and bb.dim == 1024
    res = CliRunner().invoke(cli, ["backbone", "export", "--arch", "resnet19", "--weights", str(weights)])
    assert res.exit_code == 2 and "did you mean" in res.output


def test_export_offline_without_weights_says_what_to_do(monkeypatch, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    pytest.importorskip("onnx")
    monkeypatch.setenv("LABELLINT_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty torchvision cache
    res = CliRunner().invoke(cli, ["backbone", "export", "--arch", "resnet18", "-o", str(tmp_path / "r.onnx")])
    assert res.exit_code == 2
    assert "--weights resnet18-" in res.output and "https://download.pytorch.org/models/resnet18-" in res.output


# -- kNN and confident learning -------------------------------------------------------------------

def clustered(n=3000, d=64, centres=30, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, d)).astype(np.float32)
    label = rng.integers(0, centres, n)
    return c[label] + 0.6 * rng.standard_normal((n, d)).astype(np.float32), label


def test_hnsw_reaches_the_measured_recall_and_skips_same_group():
    x, _ = clustered()
    exact = knn.neighbours(x, 10, exact_below=10**9)
    approx = knn.neighbours(x, 10, exact_below=0, target_recall=0.98)
    assert approx.method == "hnsw" and approx.recall >= 0.98
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact.index.tolist(), approx.index.tolist())])
    assert recall >= 0.95
    assert not (approx.index == np.arange(len(x))[:, None]).any()  # never itself
    groups = np.arange(len(x)) // 4
    for nb in (knn.neighbours(x, 10, groups, exact_below=0), knn.neighbours(x, 10, groups)):
        assert (nb.index >= 0).all() and not (groups[nb.index] == groups[:, None]).any()


def test_confident_learning_flags_swaps_and_leaves_small_classes_alone():
    x, label = clustered(n=600, centres=3, seed=1)
    label = label.copy()
    swapped = np.array([5, 50, 500])
    label[swapped] = (label[swapped] + 1) % 3
    label[:4] = 3  # a class of four members: too small to judge
    nb = knn.exact(x, 10)
    v = consistency.judge(nb.index, nb.similarity, label, 4, min_support=10)
    flagged = set(np.flatnonzero(v.flagged).tolist())
    assert set(swapped.tolist()) <= flagged and len(flagged) <= 6
    assert not v.flagged[:4].any() and (v.given[:4] == -1).all()
    assert (v.suggested[swapped] == (label[swapped] + 2) % 3).all()  # the class they came from
    assert (v.probs[:, 3] == 0).all()  # a small class is never suggested
    assert np.all((v.score >= 0) & (v.score <= 1))


def test_linear_probe_gives_out_of_fold_probabilities():
    """On separable embeddings the probe's out-of-fold probabilities name each row's class; a row
    whose label is swapped is judged by models that never saw it, so it keeps its true class; rows
    without a label get probabilities too; the folds are seeded (same input, same output)."""
    x, label = clustered(n=300, d=16, centres=3, seed=2)
    noisy = label.copy()
    noisy[[7, 70]] = (label[[7, 70]] + 1) % 3
    noisy[[0, 1]] = -1  # no label: predicted by every fold's model
    p = consistency.linear_probe(x, noisy, 4, folds=5)
    assert p.shape == (300, 4) and np.allclose(p.sum(axis=1), 1.0)
    assert (p.argmax(axis=1) == label).mean() >= 0.98
    assert (p[[7, 70]].argmax(axis=1) == label[[7, 70]]).all()  # out of fold: its own wrong label unseen
    assert (p[[0, 1]].argmax(axis=1) == label[[0, 1]]).all()
    assert (p[:, 3] < 0.05).all()  # a class without members is never likely
    assert np.array_equal(p, consistency.linear_probe(x, noisy, 4, folds=5))
    # its wrong label gets little probability: no model that scored it was fitted on it
    assert p[7, noisy[7]] < 0.5


def test_linear_probe_picks_the_l2_strength_that_predicts_held_out_labels_best():
    """Given several strengths, the probe fits each on the first fold's training rows and keeps
    the one with the lowest held-out log-loss: an absurd strength (all weights crushed to zero,
    uniform probabilities) loses to a sensible one, and the result is that strength's alone."""
    x, label = clustered(n=300, d=16, centres=3, seed=4)
    sensible = consistency.linear_probe(x, label, 3, l2=1e-2)
    crushed = consistency.linear_probe(x, label, 3, l2=1e3)
    assert (sensible.argmax(axis=1) == label).mean() >= 0.98 and crushed.max() < 0.5
    assert np.array_equal(consistency.linear_probe(x, label, 3, l2=(1e3, 1e-2)), sensible)
    assert np.array_equal(consistency.linear_probe(x, label, 3, l2=(1e3,)), crushed)
    # max_train caps the rows each fold's model sees (a seeded sample); still out of fold
    capped = consistency.linear_probe(x, label, 3, max_train=40)
    assert not np.array_equal(capped, consistency.linear_probe(x, label, 3))
    assert (capped.argmax(axis=1) == label).mean() >= 0.95


def test_rule_judge_fits_the_probe_only_with_enough_boxes_of_judged_classes():
    """toolkit.judge (what LL501 calls): with vectors and at least PROBE_MIN_BOXES judged boxes the
    probe is averaged in; below that, or without vectors, the neighbours alone decide."""
    from labellint import toolkit

    x, label = clustered(n=120, d=16, centres=3, seed=5)
    nb = knn.exact(x, 10)
    alone = consistency.judge(nb.index, nb.similarity, label, 3, min_support=10)
    with_probe = toolkit.judge(nb.index, nb.similarity, label, 3, min_support=10, vectors=x)
    assert not np.allclose(with_probe.probs, alone.probs)
    assert np.array_equal(toolkit.judge(nb.index, nb.similarity, label, 3, min_support=10).probs, alone.probs)
    few = label.copy()
    few[consistency.PROBE_MIN_BOXES - 1:] = -1  # one judged box short
    small = consistency.judge(nb.index, nb.similarity, few, 3, min_support=10)
    assert np.array_equal(toolkit.judge(nb.index, nb.similarity, few, 3, min_support=10, vectors=x).probs,
                          small.probs)


def test_a_box_no_neighbour_supports_is_flagged_only_if_the_probe_disagrees_too():
    """Row 0 is labelled 0 but its 9 neighbours are all class 1 (too weakly to make it confident in
    1, so the joint counts nothing): the neighbours alone flag it; with a probe, only when the
    probe's most probable class is not 0 either."""
    label = np.repeat([0, 1], 20)
    idx = np.zeros((40, 9), np.int64)
    sim = np.full((40, 9), 0.99)
    for i in range(40):
        same = [j for j in range(40) if label[j] == label[i] and j != i]
        idx[i] = same[:9]
    idx[0], sim[0] = np.arange(20, 29), 0.9
    alone = consistency.judge(idx, sim, label, 2, min_support=10)
    assert np.flatnonzero(alone.flagged).tolist() == [0] and alone.joint[0, 1] == 0
    agrees = np.where(label[:, None] == np.arange(2)[None, :], 0.6, 0.4)  # the given class, mildly
    assert not consistency.judge(idx, sim, label, 2, min_support=10, probe=agrees).flagged.any()
    disagrees = agrees.copy()
    disagrees[0] = [0.4, 0.6]
    assert np.flatnonzero(consistency.judge(idx, sim, label, 2, min_support=10, probe=disagrees).flagged).tolist() == [0]


def test_judge_with_a_probe_averages_it_in_and_without_one_is_unchanged():
    x, label = clustered(n=600, centres=3, seed=1)
    label = label.copy()
    swapped = np.array([5, 50, 500])
    label[swapped] = (label[swapped] + 1) % 3
    label[:4] = 3  # too small to judge
    nb = knn.exact(x, 10)
    plain = consistency.judge(nb.index, nb.similarity, label, 4, min_support=10)
    assert np.array_equal(plain.probs, consistency.judge(nb.index, nb.similarity, label, 4, min_support=10,
                                                          probe=None).probs)
    probe = consistency.linear_probe(x, np.where(plain.given >= 0, label, -1), 4)
    v = consistency.judge(nb.index, nb.similarity, label, 4, min_support=10, probe=probe)
    assert set(swapped.tolist()) <= set(np.flatnonzero(v.flagged).tolist()) and v.flagged.sum() <= 6
    assert (v.probs[:, 3] == 0).all() and np.allclose(v.probs.sum(axis=1), 1.0)
    # a probe that is certain of class 0 everywhere moves every row's p(0) half-way towards 1
    certain = np.zeros((600, 4))
    certain[:, 0] = 1.0
    w = consistency.judge(nb.index, nb.similarity, label, 4, min_support=10, probe=certain)
    assert np.allclose(w.probs[:, 0], (plain.probs[:, 0] + 1.0) / 2.0)


# -- the rule end to end ----------------------------------------------------------------------------

def test_rule_end_to_end_via_the_cli(model, tmp_path, monkeypatch):
    monkeypatch.setenv("LABELLINT_CACHE_DIR", str(tmp_path / "cache"))
    doc = shapes_dataset(tmp_path / "img")
    path = tmp_path / "shapes.json"
    path.write_text(json.dumps(doc))
    args = ["check", str(path), "--images", str(tmp_path / "img"), "--backbone", str(model), "--select", "LL5"]
    res = CliRunner().invoke(cli, [*args, "-f", "json"])
    found = json.loads(res.stdout)["findings"]
    flagged = {f["annotation_id"]: f for f in found if f["code"] == "LL501"}
    assert set(flagged) == {1003, 1010, 1017}, [f["message"] for f in found]
    for ann_id, f in flagged.items():
        original = 1 if ann_id % 2 == 0 else 2
        expected = DISC if original == 1 else BLOCK
        assert f["suggestion"] == expected and f"'{expected}'" in f["message"] and 0.5 < f["score"] <= 1
        assert "of its 10 nearest crops" in f["message"]
    res = CliRunner().invoke(cli, args)
    assert "[bold red]disc[/]" in res.output  # printed as text, not interpreted as markup


def test_small_classes_are_reported_as_info_and_rule_skipped_without_backbone(model, tmp_path, monkeypatch):
    monkeypatch.setenv("LABELLINT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("LABELLINT_BACKBONE", raising=False)
    doc = shapes_dataset(tmp_path / "img", swapped=())
    doc["categories"].append({"id": 3, "name": "rare"})
    doc["annotations"][0]["category_id"] = 3
    path = tmp_path / "shapes.json"
    path.write_text(json.dumps(doc))
    res = CliRunner().invoke(cli, ["check", str(path), "--images", str(tmp_path / "img"), "--backbone", str(model),
                                   "--select", "LL5", "-f", "json"])
    found = json.loads(res.stdout)["findings"]
    assert [(f["severity"], f["category_id"]) for f in found] == [("info", 3)]
    assert "too few to judge" in found[0]["message"]
    for fmt in ("text", "json"):
        res = CliRunner().invoke(cli, ["check", str(path), "--images", str(tmp_path / "img"), "--select", "LL5",
                                       "-f", fmt])
        assert "LL501" in res.output and "--backbone" in res.output


def test_cache_hit_miss_corrupt_and_edited_boxes(model, tmp_path, monkeypatch):
    from labellint import embed
    from labellint import cache as cache_mod
    from labellint.context import RunContext

    monkeypatch.setenv("LABELLINT_CACHE_DIR", str(tmp_path / "cache"))
    doc = shapes_dataset(tmp_path / "img", n_images=8, swapped=())
    path = tmp_path / "shapes.json"

    def embed_once(d, **extra):
        path.write_text(json.dumps(d))
        ds = load(path, "shapes.json")
        context = RunContext(images=tmp_path / "img", backbone=str(model), **extra)
        emb, rows, ids, vectors = embed.embeddings(ds, 0.1, context)
        return emb, dict(zip(ids.tolist(), vectors))

    cold, v1 = embed_once(doc)
    assert cold.embedded == 16 and cold.cached == 0 and sorted(v1) == sorted(a["id"] for a in doc["annotations"])
    warm, v2 = embed_once(doc)
    assert warm.embedded == 0 and warm.cached == 16
    assert all(np.array_equal(v1[k], v2[k]) for k in v1)
    files = sorted((tmp_path / "cache" / "embed").rglob("*.npy"))
    assert len(files) == 8
    files[0].write_bytes(b"\x93NUMPY garbage")  # corrupt: recomputed, not a crash
    files[1].write_bytes(files[1].read_bytes()[:100])  # truncated
    again, v3 = embed_once(doc)
    assert again.embedded == 4 and again.cached == 12
    assert all(np.allclose(v1[k], v3[k]) for k in v1)
    with open(files[0], "rb") as fh:
        assert np.load(fh, allow_pickle=False).dtype.names == ("box", "vec")
    # edit one box, reorder the annotations: only the edited box is embedded, vectors follow the ids
    doc["annotations"][5]["bbox"][0] += 2
    doc["annotations"].reverse()
    edited, v4 = embed_once(doc)
    assert edited.embedded == 1 and edited.cached == 15
    assert all(np.array_equal(v1[k], v4[k]) for k in v1 if k != 1005)
    # --no-cache neither reads nor writes
    shutil.rmtree(tmp_path / "cache")
    nocache, _ = embed_once(doc, no_cache=True)
    assert nocache.embedded == 16 and not (tmp_path / "cache").exists()
    assert cache_mod.box_key([1, 2, 3, 4]) != cache_mod.box_key([1, 2, 3, 5])


def test_one_decode_per_image_for_image_and_embedding_rules(model, tmp_path, monkeypatch):
    monkeypatch.setenv("LABELLINT_CACHE_DIR", str(tmp_path / "cache"))
    doc = shapes_dataset(tmp_path / "img", n_images=6, swapped=(3,))
    path = tmp_path / "shapes.json"
    path.write_text(json.dumps(doc))
    calls = []
    real = images.decode
    monkeypatch.setattr(images.scanning, "decode", lambda data, limit: (calls.append(1), real(data, limit))[1])
    codes = [r.code for r in registry.all_rules() if r.code.startswith(("LL4", "LL5"))]
    ds = load(path, "shapes.json")
    found, skipped = lint(ds, settings_for(*codes), {"images": tmp_path / "img", "backbone": str(model)})
    assert skipped == [] and len(calls) == 6


def test_device_cuda_without_a_gpu_is_a_clear_error(model, tmp_path):
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("a CUDA provider is present")
    doc = shapes_dataset(tmp_path / "img", n_images=2, swapped=())
    path = tmp_path / "shapes.json"
    path.write_text(json.dumps(doc))
    res = CliRunner().invoke(cli, ["check", str(path), "--images", str(tmp_path / "img"), "--backbone", str(model),
                                   "--select", "LL5", "--device", "cuda", "--no-cache"])
    assert res.exit_code == 2 and "CUDAExecutionProvider" in res.output


@pytest.mark.parametrize("order", ["RGB", "BGR"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_normaliser_table_equals_the_float_formula(order, layout):
    from types import SimpleNamespace

    from labellint.embed.crops import Normaliser

    crops = np.random.default_rng(0).integers(0, 256, (3, 40, 30, 3), dtype=np.uint8)
    norm = Normaliser(SimpleNamespace(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), scale=1 / 255,
                                      channel_order=order, layout=layout))
    x = crops[..., ::-1] if order == "BGR" else crops
    expected = x.astype(np.float32) * norm.mul + norm.add
    if layout == "NCHW":
        expected = expected.transpose(0, 3, 1, 2)
    got = norm(crops)
    assert got.dtype == np.float32 and got.flags["C_CONTIGUOUS"] and np.array_equal(got, expected)


def test_torch_exact_search_equals_numpy():
    """The GPU path's code, run by torch on the CPU here: the same neighbours as numpy's exact
    search, with and without same-image groups."""
    pytest.importorskip("torch")
    from labellint.embed import knn

    rng = np.random.default_rng(3)
    x = knn.normalise(rng.normal(size=(300, 24)).astype(np.float32))
    groups = rng.integers(0, 40, size=300)
    for g in (None, groups):
        ref_idx, ref_sim = knn._exact_rows(x, np.arange(300), 7, g)
        idx, sim = knn._exact_rows_torch(x, np.arange(300), 7, g, "cpu", block=64)
        assert np.array_equal(idx, ref_idx)
        assert np.allclose(sim, ref_sim, atol=1e-6, equal_nan=True)
    assert knn.gpu_device("cpu") is None


def test_int8_exact_search_equals_numpy():
    """torch's int8 candidates re-ranked in float32: the same neighbours as numpy's float32
    search, on clustered vectors with near-ties, on non-negative (ReLU-like) ones, with groups,
    across several column tiles, and with k larger than the set allows."""
    pytest.importorskip("torch")
    from labellint.embed import knn

    if not knn.int8_search():
        pytest.skip("this torch build has no int8 matrix product")
    rng = np.random.default_rng(5)
    x, _ = clustered(n=1500, d=48, centres=12, seed=5)
    relu = np.maximum(rng.normal(size=(700, 40)), 0).astype(np.float32) ** 2
    for data in (x, relu):
        v = knn.normalise(data)
        n = len(v)
        groups = rng.integers(0, n // 6, size=n)
        for g in (None, groups):
            ref_idx, ref_sim = knn._exact_rows(v, np.arange(n), 10, g)
            idx, sim = knn._exact_rows_int8(v, np.arange(n), 10, g, block=256, chunk=500)
            assert np.allclose(sim, ref_sim, atol=1e-6, equal_nan=True)  # same similarities, in order
            same = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx.tolist(), ref_idx.tolist())])
            assert same >= 0.999
    small = knn.normalise(rng.normal(size=(6, 8)).astype(np.float32))
    idx, sim = knn._exact_rows_int8(small, np.arange(6), 10, None)
    assert (idx[:, :5] >= 0).all() and (idx[:, 5:] == -1).all() and np.isnan(sim[:, 5:]).all()


def test_search_falls_back_to_exact_when_the_graph_misses_the_recall(monkeypatch):
    """iid vectors have no structure for HNSW: asked for a recall no ef reaches here, the search
    is exact instead of silently worse."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2500, 96)).astype(np.float32)
    ref = knn.exact(x, 10)
    nb = knn.neighbours(x, 10, exact_below=0, target_recall=1.01)
    assert nb.method == "exact-after-hnsw" and nb.recall < 1.01
    assert np.array_equal(nb.index, ref.index)
    # a large set decides on a sample graph first; here the sample's recall (iid, 96-d, ef up to
    # 2048 over 600 vectors: a near scan) is reachable, so the full graph is built and used
    monkeypatch.setattr(knn, "PROBE", 600)
    nb = knn.neighbours(x, 10, exact_below=0, target_recall=0.9)
    assert nb.method == "hnsw" and nb.recall >= 0.9
    built = []
    monkeypatch.setattr(knn, "build_hnsw", lambda v, **kw: built.append(len(v)) or _real_build(v, **kw))
    nb = knn.neighbours(x, 10, exact_below=0, target_recall=1.01)
    assert built == [600] and nb.method == "exact-after-hnsw"  # the full graph was never built
    assert np.array_equal(nb.index, ref.index)


_real_build = knn.build_hnsw


def test_search_reports_progress_in_every_phase(monkeypatch):
    x, _ = clustered(n=2500, d=32)
    heard = []
    knn.neighbours(x, 10, progress=lambda *a: heard.append(a))
    assert heard and {p for p, _, _ in heard} == {"exact search"} and heard[-1][1:] == (2500, 2500)
    monkeypatch.setattr(knn, "GRAPH_STEP", 1000)
    heard.clear()
    knn.neighbours(x, 10, exact_below=0, progress=lambda *a: heard.append(a))
    assert [h for h in heard if h[0] == "building the graph"] == [("building the graph", d, 2500) for d in (1000, 2000, 2500)]
    assert heard[-1] == ("searching the graph", 2500, 2500)


def test_a_backbone_that_gives_nan_is_a_clear_error(tmp_path):
    onnx = pytest.importorskip("onnx", reason="building a test model needs onnx")
    from onnx import TensorProto, helper

    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Abs", ["f"], ["a"]), helper.make_node("Neg", ["a"], ["n"]),
             helper.make_node("Sqrt", ["n"], ["y"])]  # sqrt of a negative number: NaN
    graph = helper.make_graph(nodes, "nan", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "nan.onnx"
    onnx.save(model, str(path))
    bb = backbone_mod.load(path, device="cpu")
    with pytest.raises(LabellintError, match="non-finite embeddings .* for 2 of 2 crops"):
        bb.run(np.ones((2, 3, 8, 8), np.float32))


def test_phases_show_one_bar_line_and_remove_it(monkeypatch):
    import io

    from rich.console import Console

    from labellint import progress

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("PRE_COMMIT", raising=False)
    monkeypatch.delenv("LABELLINT_NO_PROGRESS", raising=False)
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    with progress.bar(console) as bar:
        with progress.Phases(bar, "neighbours") as phases:
            x, _ = clustered(n=1500, d=16)
            knn.neighbours(x, 5, progress=phases)
            (task,) = bar.tasks
            assert task.description == "neighbours: exact search" and task.completed == task.total == 1500
        assert not bar.tasks  # gone when the search is done
    with progress.Phases(None, "neighbours") as quiet:  # no bar (CI, pre-commit, not a terminal)
        quiet("exact search", 1, 2)
