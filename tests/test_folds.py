"""`labellint train --folds K`: out-of-fold predictions, every image predicted by the model that
did not see it, and a killed run that continues at its fold (real torchvision training, tiny)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch", reason="training tests need torch (pip install 'labellint-coco[train]')")

from labellint.gate import folds  # noqa: E402
from test_gate_fixtures import TINY, invoke, tiny_dataset  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_dataset(tmp_path_factory)


def test_folds_deal_every_image_once_with_sizes_one_apart_and_the_same_for_a_seed():
    ids = list(range(100, 123))
    a, b = folds.assign(ids, 4, seed=3), folds.assign(ids, 4, seed=3)
    assert a == b and set(a) == set(ids)
    sizes = sorted(list(a.values()).count(f) for f in range(4))
    assert sizes[-1] - sizes[0] <= 1
    assert folds.assign(ids, 4, seed=4) != a


def test_fold_files_split_images_and_their_annotations_and_keep_the_rest():
    doc = {"info": {"v": 1}, "categories": [{"id": 1, "name": "c"}],
           "images": [{"id": i, "file_name": f"{i}.png", "width": 8, "height": 8} for i in range(6)],
           "annotations": [{"id": 10 + i, "image_id": i % 6, "category_id": 1, "bbox": [0, 0, 2, 2]} for i in range(9)]}
    parts = folds.fold_files(doc, 3, seed=0)
    held_ids = [sorted(im["id"] for im in held["images"]) for _, held in parts]
    assert sorted(sum(held_ids, [])) == list(range(6))  # every image held out exactly once
    for (train, held), ids in zip(parts, held_ids):
        assert train["info"] == held["info"] == doc["info"] and train["categories"] == doc["categories"]
        assert not {im["id"] for im in train["images"]} & set(ids)
        assert all(a["image_id"] in ids for a in held["annotations"])
        assert all(a["image_id"] not in ids for a in train["annotations"])
        assert len(train["annotations"]) + len(held["annotations"]) == 9


def test_cross_validation_predicts_each_image_with_the_model_that_did_not_see_it_and_resumes(tiny, tmp_path):
    out = tmp_path / "cv"
    args = ["train", tiny["train"], "--images", tiny["images"], "--folds", "2", "--out", out, *TINY]
    result = invoke(args)
    assert result.exit_code == 0, result.stderr
    assert "out-of-fold predictions from 2 models" in result.stdout
    source_ids = {im["id"] for im in json.loads(tiny["train"].read_text())["images"]}
    seen_by = {}
    for f in (1, 2):
        config = json.loads((out / f"fold-{f}" / "config.json").read_text())
        trained_on = {im["id"] for im in json.loads((out / f"fold-{f}" / "train.json").read_text())["images"]}
        held = {im["id"] for im in json.loads((out / f"fold-{f}" / "heldout.json").read_text())["images"]}
        assert config["train"]["images"] == len(trained_on) and not trained_on & held
        fold_preds = json.loads((out / f"fold-{f}" / "predictions.json").read_text())
        assert {p["image_id"] for p in fold_preds} <= held
        seen_by[f] = trained_on
    merged = json.loads((out / "predictions.json").read_text())
    assert merged and {p["image_id"] for p in merged} <= source_ids
    # no prediction comes from a model that trained on its image
    for p in merged:
        fold = next(f for f in (1, 2) if p["image_id"] not in seen_by[f])
        assert p["image_id"] not in seen_by[fold]
    manifest = json.loads((out / "folds.json").read_text())
    assert manifest["folds"] == 2 and len(manifest["per_fold"]) == 2 and manifest["predictions"] == len(merged)

    # a run killed in fold 2: fold 1 is kept as it is, fold 2 trains again
    model_1 = (out / "fold-1" / "model.pt").stat().st_mtime_ns
    (out / "fold-2" / "metrics.json").unlink()
    again = invoke(args)
    assert again.exit_code == 0, again.stderr
    assert "fold 1/2: done earlier, kept" in again.stderr and "fold 2/2: done earlier" not in again.stderr
    assert (out / "fold-1" / "model.pt").stat().st_mtime_ns == model_1
    assert (out / "fold-2" / "metrics.json").is_file()
    assert json.loads((out / "predictions.json").read_text()) == merged  # same seed, same models: same predictions

    # the merged file is what `check --predictions` reads
    checked = invoke(["check", tiny["train"], "--predictions", out / "predictions.json", "--select", "LL601,LL602,LL603",
                      "--exit-zero"])
    assert checked.exit_code == 0, checked.stderr


def test_a_folder_of_another_cross_validation_is_refused(tiny, tmp_path):
    out = tmp_path / "cv"
    out.mkdir()
    (out / "folds.json").write_text(json.dumps({"source": "other.json", "source_sha256": "0" * 64, "folds": 2, "seed": 0}))
    result = invoke(["train", tiny["train"], "--images", tiny["images"], "--folds", "2", "--out", out, *TINY])
    assert result.exit_code == 2 and "another file, fold count or seed" in result.stderr and "Traceback" not in result.stderr


def test_folds_and_val_are_one_or_the_other(tiny, tmp_path):
    both = invoke(["train", tiny["train"], "--images", tiny["images"], "--folds", "2", "--val", tiny["val"],
                   "--out", tmp_path / "x", *TINY])
    assert both.exit_code == 2 and "leave out --val" in both.stderr
    neither = invoke(["train", tiny["train"], "--images", tiny["images"], "--out", tmp_path / "y", *TINY])
    assert neither.exit_code == 2 and "--val is required" in neither.stderr
