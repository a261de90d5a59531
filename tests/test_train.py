"""`labellint train`: real torchvision training on CPU, on a shapes dataset the tests draw.

The session's two full runs (test_gate_fixtures.shared_runs) show that the recipe learns; the
tiny runs here (8 images, one epoch) check what a run writes, determinism, category mapping,
safe paths, backbone weights and the checkpoint's safe loading.
"""

from __future__ import annotations

import json
import pickle

import pytest

torch = pytest.importorskip("torch", reason="training tests need torch (pip install 'labellint-coco[train]')")

from labellint.errors import InputError, LabellintError  # noqa: E402
from labellint.gate import models, train as train_mod  # noqa: E402
from labellint.gate.config import TrainConfig  # noqa: E402
from test_gate_fixtures import TINY, invoke, shared_runs, tiny_dataset  # noqa: E402


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    return shared_runs(tmp_path_factory)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    return tiny_dataset(tmp_path_factory)


def tiny_config(**kw) -> TrainConfig:
    base = dict(epochs=1, batch_size=4, image_size=128, seed=0, rpn_proposals=100, roi_batch=16, device="cpu",
                threads=1)
    base.update(kw)
    return TrainConfig(**base)


def test_the_shared_baseline_learns_far_above_chance(runs):
    metrics = json.loads((runs["baseline"] / "metrics.json").read_text())
    stats = metrics["bbox"]["stats"]
    # chance is about 0: random boxes almost never reach IoU 0.5 with the right class
    assert stats[1] > 0.3, stats  # AP50
    assert stats[0] > 0.1, stats  # AP@[.5:.95]
    assert stats[8] > 0.2, stats  # AR@100
    assert all(c["AP50"] > 0.1 for c in metrics["bbox"]["per_class"]), metrics["bbox"]["per_class"]
    losses = [e["loss"] for e in metrics["train_loss"]]
    assert losses[-1] < losses[0]
    config = json.loads((runs["baseline"] / "config.json").read_text())
    assert config["epochs"] == 5 and config["device_used"] == "cpu" and config["backbone_pretrained"] is False
    assert [c["name"] for c in config["categories"]] == ["circle", "square", "triangle"]


def test_train_writes_a_complete_run_folder(tiny, tmp_path):
    out = tmp_path / "run"
    result = invoke(["train", tiny["train"], "--images", tiny["images"], "--val", tiny["val"], "--out", out,
                     "--predict", tiny["train"], *TINY])
    assert result.exit_code == 0, result.stderr
    assert f"wrote {out}: AP " in result.stdout
    assert "training from scratch" in result.stderr  # no ImageNet weights offline: a warning, not a download
    for name in ("model.pt", "predictions.json", "metrics.json", "config.json", "predictions-train.json"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "fasterrcnn_mobilenet_v3_large_fpn" and config["epochs"] == 1
    assert config["image_size"] == 128 and config["seed"] == 0 and config["lr"] == 0.02
    assert config["train"]["sha256"] == train_mod.sha256_file(tiny["train"])
    assert config["val"]["images"] == 4
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["bbox"]["stats"]) == 12 and len(metrics["train_loss"]) == 1
    preds = json.loads((out / "predictions.json").read_text())
    val_ids = {im["id"] for im in json.loads(tiny["val"].read_text())["images"]}
    assert preds and {p["image_id"] for p in preds} <= val_ids
    assert all(len(p["bbox"]) == 4 and 0 <= p["score"] <= 1 for p in preds)
    # the checkpoint is a plain state_dict that loads with weights_only=True
    state = torch.load(out / "model.pt", weights_only=True)
    assert isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())
    model, cmap = train_mod.load_model(out)
    assert cmap.names == ["circle", "square", "triangle"] and not model.training


def test_training_is_deterministic_for_a_seed_on_cpu(tiny, tmp_path):
    a = train_mod.train(tiny["train"], tiny["val"], tiny["images"], tmp_path / "a", tiny_config())
    b = train_mod.train(tiny["train"], tiny["val"], tiny["images"], tmp_path / "b", tiny_config())
    c = train_mod.train(tiny["train"], tiny["val"], tiny["images"], tmp_path / "c", tiny_config(seed=1))
    pa, pb, pc = ((r.out / "predictions.json").read_text() for r in (a, b, c))
    assert pa == pb and pa != pc
    sa = torch.load(a.out / "model.pt", weights_only=True)
    sb = torch.load(b.out / "model.pt", weights_only=True)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.metrics["bbox"]["stats"] == b.metrics["bbox"]["stats"]


def test_category_ids_are_mapped_both_ways_whatever_their_values(tiny, tmp_path):
    ids = {1: 1000, 2: 0, 3: 7}
    files = {}
    for split in ("train", "val"):
        doc = json.loads(tiny[split].read_text())
        for c in doc["categories"]:
            c["id"] = ids[c["id"]]
        for a in doc["annotations"]:
            a["category_id"] = ids[a["category_id"]]
        files[split] = tmp_path / f"{split}.json"
        files[split].write_text(json.dumps(doc))
    run = train_mod.train(files["train"], files["val"], tiny["images"], tmp_path / "run", tiny_config())
    mapping = {c["label"]: (c["category_id"], c["name"]) for c in run.config["categories"]}
    assert mapping == {1: (0, "square"), 2: (7, "triangle"), 3: (1000, "circle")}
    preds = json.loads((run.out / "predictions.json").read_text())
    assert preds and {p["category_id"] for p in preds} <= {0, 7, 1000}
    assert len(run.metrics["bbox"]["per_class"]) == 3


@pytest.mark.parametrize("file_name, why", [("../outside.png", "'..'"), ("/etc/passwd", "absolute path")])
def test_file_names_cannot_escape_the_image_root(tiny, tmp_path, file_name, why):
    doc = json.loads(tiny["train"].read_text())
    doc["images"][0]["file_name"] = file_name
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    result = invoke(["train", bad, "--images", tiny["images"], "--val", tiny["val"], "--out", tmp_path / "run",
                     *TINY])
    assert result.exit_code == 2 and why in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_labels_training_cannot_use_are_left_out_with_a_warning(tiny, tmp_path):
    doc = json.loads(tiny["train"].read_text())
    doc["annotations"][0]["category_id"] = 99
    doc["annotations"][1]["bbox"] = [1, 2, 3]
    doc["annotations"][2]["image_id"] = "1"
    path = tmp_path / "noisy.json"
    path.write_text(json.dumps(doc))
    items, skipped = train_mod.samples(doc, str(path), tiny["images"],
                                       train_mod.CategoryMap.from_coco(doc, str(path)))
    assert skipped == {"unknown category": 1, "no valid bbox": 1, "image_id not an integer": 1}
    assert sum(len(s.labels) for s in items) == len(doc["annotations"]) - 3


def test_imagenet_backbone_weights_from_a_path_are_loaded_safely_and_frozen_as_torchvision_does(tiny, tmp_path):
    import torchvision

    weights = tmp_path / "mobilenet_v3_large.pth"
    reference = torchvision.models.mobilenet_v3_large(weights=None).state_dict()
    torch.save(reference, weights)
    run = train_mod.train(tiny["train"], tiny["val"], tiny["images"], tmp_path / "run",
                          tiny_config(backbone_weights=str(weights), lr=0.005))
    assert run.config["backbone_pretrained"] is True and str(weights) in run.config["backbone"]
    model, _ = train_mod.load_model(run.out)
    body = model.backbone.body
    assert any(type(m).__name__ == "FrozenBatchNorm2d" for m in body.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in body.modules())
    # the first stages stay as loaded (frozen), like torchvision's trainable_backbone_layers=3
    assert torch.equal(body.state_dict()["0.0.weight"], reference["features.0.0.weight"])


def test_wrong_or_unsafe_backbone_files_are_refused(tmp_path):
    config = tiny_config()
    model = models.build(config.model, 4, config)
    resnet = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, resnet)
    with pytest.raises(InputError, match="do not fit the backbone"):
        models.load_backbone(model, config.model, resnet)

    class Payload:
        def __reduce__(self):
            return (print, ("unpickled!",))

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"features.0.0.weight": Payload()}, protocol=2))
    with pytest.raises(InputError, match="cannot read backbone weights"):
        models.load_backbone(model, config.model, evil)
    with pytest.raises(InputError, match="not found"):
        models.find_backbone_weights(config.model, str(tmp_path / "missing.pth"), False)


def test_no_download_unless_asked(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    path, note = models.find_backbone_weights("fasterrcnn_mobilenet_v3_large_fpn", None, download=False)
    assert path is None and "training from scratch" in note and not (tmp_path / "hub").exists()
    cached, _ = models.hub_weights_file("fasterrcnn_mobilenet_v3_large_fpn")
    cached.parent.mkdir(parents=True)
    torch.save({}, cached)
    path, note = models.find_backbone_weights("fasterrcnn_mobilenet_v3_large_fpn", None, download=False)
    assert path == cached and "torch hub cache" in note


def test_mask_rcnn_trains_and_predicts_masks(tiny, tmp_path):
    doc = json.loads(tiny["train"].read_text())
    for a in doc["annotations"]:  # polygons: the box corners (the shapes are drawn inside their boxes)
        x, y, w, h = a["bbox"]
        a["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    train = tmp_path / "train.json"
    train.write_text(json.dumps(doc))
    val = json.loads(tiny["val"].read_text())
    for a in val["annotations"]:
        x, y, w, h = a["bbox"]
        a["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    val_path = tmp_path / "val.json"
    val_path.write_text(json.dumps(val))
    # One epoch at 64 px learns next to nothing, and how little depends on the CPU's rounding: at
    # score threshold 0 every detection the heads produce is written, so the mask encoding is
    # exercised whatever the model happened to learn (the shared runs test that training learns).
    run = train_mod.train(train, val_path, tiny["images"], tmp_path / "run",
                          tiny_config(model="maskrcnn_resnet50_fpn", image_size=64, batch_size=4, lr=0.005,
                                      score_threshold=0.0))
    assert set(run.metrics) >= {"bbox", "segm"} and len(run.metrics["segm"]["stats"]) == 12
    preds = json.loads((run.out / "predictions.json").read_text())
    assert preds and all("counts" in p["segmentation"] for p in preds)
    from pycocotools import mask as mask_utils

    for p in preds[:20]:  # each mask is a valid RLE of the size it declares
        rle = {"size": p["segmentation"]["size"], "counts": p["segmentation"]["counts"].encode()}
        assert mask_utils.decode(rle).shape == tuple(p["segmentation"]["size"])


def test_unknown_devices_are_one_line_errors():
    with pytest.raises(LabellintError, match="unknown device"):
        train_mod.pick_device(torch, "tpu")
    if not torch.cuda.is_available():
        with pytest.raises(LabellintError, match="no CUDA device"):
            train_mod.pick_device(torch, "cuda")
    assert train_mod.pick_device(torch, "auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
