"""Label Studio review queues: `check -f label-studio` writes import tasks and a labeling config
that Label Studio's own SDK accepts, and `apply` reads the project's export back as decisions.

The tasks come from a real run (a small COCO file, PNG images and a predictions file for the
model-based rules); the SDK's label-config parser and validators check the config and every
prediction, and its COCO converter turns the pre-annotations back into the dataset's boxes. The
review is simulated on a copy shaped like Label Studio's JSON export.
"""

from __future__ import annotations

import copy
import json

import pytest
from PIL import Image, ImageDraw

from tests.test_fix import run_cli

label_studio_sdk = pytest.importorskip("label_studio_sdk", reason="the dev extra's label-studio-sdk")
from label_studio_sdk.converter import Converter  # noqa: E402
from label_studio_sdk.label_interface import LabelInterface  # noqa: E402

SCRIPT = "<script>alert(1)</script>"
ODD = 'a "b"\nc'
NAMES = {1: "a.png", 2: "b c.png", 3: "c.png", 4: "../../etc/passwd", 5: 'we<ird> "q"\n.png', 6: "d.png",
         7: "e.png", 8: "f.png"}


def _ann(i, image, cat, box):
    return {"id": i, "image_id": image, "category_id": cat, "bbox": box, "area": box[2] * box[3], "iscrowd": 0}


def dataset() -> dict:
    """One defect per image: conflicting labels (1, 5: hostile classes), a duplicate (2, 4: a
    hostile file name), a swapped class (3), an overlooked object (6), a misplaced box (7); 8 is clean."""
    return {
        "images": [{"id": i, "file_name": n, "width": 64, "height": 48} for i, n in NAMES.items()],
        "annotations": [_ann(1, 1, 1, [10, 10, 20, 10]), _ann(2, 1, 2, [10, 10, 20, 10]),
                        _ann(3, 2, 1, [5, 5, 10, 10]), _ann(4, 2, 1, [5, 5, 10, 10.2]),
                        _ann(5, 3, 1, [40, 10, 12, 12]), _ann(6, 3, 1, [10, 10, 20, 20]),
                        _ann(7, 4, 1, [1, 1, 5, 5]), _ann(8, 4, 1, [1, 1, 5, 5]),
                        _ann(9, 5, 3, [30, 20, 10, 10]), _ann(10, 5, 4, [30, 20, 10, 10]),
                        _ann(11, 6, 1, [2, 2, 12, 12]), _ann(12, 7, 1, [30, 20, 20, 20]),
                        _ann(13, 8, 2, [8, 8, 8, 8])],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}, {"id": 3, "name": SCRIPT},
                       {"id": 4, "name": ODD}],
    }


PREDICTIONS = [
    {"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10], "score": 0.9},
    {"image_id": 1, "category_id": 2, "bbox": [10, 10, 20, 10], "score": 0.9},
    {"image_id": 2, "category_id": 1, "bbox": [5, 5, 10, 10], "score": 0.9},
    {"image_id": 3, "category_id": 1, "bbox": [40, 10, 12, 12], "score": 0.9},
    {"image_id": 3, "category_id": 2, "bbox": [10, 10, 20, 20], "score": 0.99},  # LL603: dog, not cat
    {"image_id": 6, "category_id": 1, "bbox": [2, 2, 12, 12], "score": 0.9},
    {"image_id": 6, "category_id": 1, "bbox": [40, 8, 16, 16], "score": 0.99},  # LL601: a cat nobody labelled
    {"image_id": 7, "category_id": 1, "bbox": [40, 24, 20, 20], "score": 0.8},  # LL602: the cat is further right
]


@pytest.fixture
def queue(tmp_path):
    """(folder, dataset path, tasks, config text) of a real `check -f label-studio` run."""
    (tmp_path / "images").mkdir()
    for k, name in enumerate(("a.png", "b c.png", "c.png", "d.png", "e.png", "f.png")):  # distinct pictures
        im = Image.new("RGB", (64, 48), (30 * k, 120, 150))
        ImageDraw.Draw(im).rectangle([5 * k, 4, 5 * k + 20, 30], fill=(250 - 30 * k, 20 * k, 60))
        im.save(tmp_path / "images" / name)
    data = tmp_path / "ann.json"
    data.write_text(json.dumps(dataset(), indent=2), encoding="utf-8")
    (tmp_path / "pred.json").write_text(json.dumps(PREDICTIONS), encoding="utf-8")
    proc = run_cli("check", "ann.json", "--images", "images", "--predictions", "pred.json", "-f", "label-studio",
                   "-o", "tasks.json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr  # findings
    assert "LL401 refused: file_name '../../etc/passwd' climbs out" in proc.stdout
    assert "Label Studio tasks written to tasks.json" in proc.stderr
    assert "tasks.label-config.xml" in proc.stderr
    tasks = json.loads((tmp_path / "tasks.json").read_text(encoding="utf-8"))
    return tmp_path, data, tasks, (tmp_path / "tasks.label-config.xml").read_text(encoding="utf-8")


def by_image(tasks) -> dict:
    return {t["data"]["labellint"]["image_id"]: t for t in tasks}


def prediction(task, model="labellint-labels") -> dict:
    return next(p for p in task["predictions"] if p["model_version"] == model)


def test_tasks_are_what_label_studio_reads(queue):
    folder, data, tasks, config = queue
    tasks_of = by_image(tasks)
    # one task per image with findings, the hostile path left out, the clean image too
    assert sorted(tasks_of) == [1, 2, 3, 5, 6, 7]
    # in the rank of their best finding: LL402 (the hostile name has no file), LL201, LL202, ...
    assert [t["data"]["labellint"]["image_id"] for t in tasks] == [5, 2, 1, 6, 3, 7]
    assert tasks_of[5]["data"]["codes"] == "LL402, LL202"
    interface = LabelInterface(config)
    interface.validate()  # raises on a config Label Studio would refuse
    assert set(next(iter(interface.labels))) == {"cat", "dog", SCRIPT, 'a "b"\\nc'}
    for task in tasks:
        assert task["data"]["image"].startswith("/data/local-files/?d=")
        assert task["data"]["labellint"]["classes"] == {"cat": 1, "dog": 2, SCRIPT: 3, 'a "b"\\nc': 4}
        for p in task["predictions"]:
            assert interface.validate_prediction(p, return_errors=True) == []
            assert 0 < p["score"] <= 1
    assert tasks_of[2]["data"]["image"] == "/data/local-files/?d=b%20c.png"
    assert tasks_of[5]["data"]["image"] == "/data/local-files/?d=we%3Cird%3E%20%22q%22%0A.png"
    # the suggestions: LL603's class, LL602's box, LL601's new box, LL201's deletion
    assert [r["value"]["rectanglelabels"] for r in prediction(tasks_of[3], "labellint-suggestions")["result"]] == \
        [["cat"], ["dog"]]
    moved = prediction(tasks_of[7], "labellint-suggestions")["result"][0]
    assert moved["id"] == "a12_s" and moved["value"]["x"] == pytest.approx(40 / 64 * 100) and moved["score"] > 0
    assert [r["id"] for r in prediction(tasks_of[6], "labellint-suggestions")["result"]] == ["a11_s", "n0_s"]
    assert [r["id"] for r in prediction(tasks_of[2], "labellint-suggestions")["result"]] == ["a3_s"]
    assert "labellint-suggestions" not in [p["model_version"] for p in tasks_of[1]["predictions"]]
    assert "LL201" in prediction(tasks_of[2])["result"][1]["meta"]["text"][0]


def test_the_pre_annotations_convert_back_to_the_datasets_boxes(queue, tmp_path_factory):
    """Label Studio's own COCO converter, fed the labels as if a reviewer submitted them as they
    are, gives back the dataset's classes (by id) and boxes."""
    folder, data, tasks, config = queue
    export = [{"id": n + 1, "data": t["data"], "annotations": [{"id": n + 1, "result": prediction(t)["result"]}]}
              for n, t in enumerate(tasks)]
    out = tmp_path_factory.mktemp("coco")
    (out / "export.json").write_text(json.dumps(export), encoding="utf-8")
    Converter(config=config, project_dir=str(out), download_resources=False).convert_to_coco(
        str(out / "export.json"), str(out / "coco"), is_dir=False)
    converted = json.loads((out / "coco" / "result.json").read_text(encoding="utf-8"))
    names = {c["id"]: c["name"] for c in converted["categories"]}
    assert names == {1: "cat", 2: "dog", 3: SCRIPT, 4: 'a "b"\\nc'}
    url_of = {i["id"]: i["file_name"] for i in converted["images"]}
    image_of = {t["data"]["image"]: t["data"]["labellint"]["image_id"] for t in tasks}
    got = sorted((image_of[url_of[a["image_id"]]], a["category_id"], *(round(v, 6) for v in a["bbox"]))
                 for a in converted["annotations"])
    doc = dataset()
    want = sorted((a["image_id"], a["category_id"], *map(float, a["bbox"])) for a in doc["annotations"]
                  if a["image_id"] in image_of.values())
    assert got == want


def review(tasks) -> list:
    """The project's JSON export after a review: tasks numbered by Label Studio, each reviewed
    task with the annotation its reviewer submitted."""
    export = []
    for n, task in enumerate(copy.deepcopy(tasks)):
        export.append({"id": 100 + n, "data": task["data"], "predictions": task["predictions"], "annotations": [],
                       "project": 1})
    of = {t["data"]["labellint"]["image_id"]: t for t in export}

    def submit(image, result, **extra):
        of[image]["annotations"].append({"id": len(of[image]["annotations"]) + 1, "result": result,
                                         "was_cancelled": False, "created_at": "2026-12-01T10:00:00.000000Z",
                                         "updated_at": "2026-12-01T10:00:00.000000Z", **extra})

    submit(1, prediction(of[1])["result"])  # looked at, left as it is
    submit(2, prediction(of[2], "labellint-suggestions")["result"])  # the duplicate deleted
    relabelled = prediction(of[3], "labellint-suggestions")["result"]  # cat -> dog
    drawn = copy.deepcopy(relabelled[0])
    drawn.update(id="Zq9xW1kT", origin="manual")
    drawn["value"].update(x=50 / 64 * 100, y=30 / 48 * 100, width=10 / 64 * 100, height=10 / 48 * 100,
                          rectanglelabels=["dog"])
    submit(3, relabelled + [drawn])  # ... and a dog the reviewer drew
    submit(6, prediction(of[6], "labellint-suggestions")["result"])  # LL601's box accepted
    old = prediction(of[7])["result"]
    submit(7, [], updated_at="2026-11-30T09:00:00.000000Z")  # an earlier review, replaced by the next one
    moved = copy.deepcopy(old)
    moved[0]["value"]["x"] = 41 / 64 * 100  # moved by hand, 1 px right
    submit(7, moved)
    submit(5, [], was_cancelled=True)  # skipped: not reviewed
    return export


def expected_after_review() -> dict:
    doc = dataset()
    anns = {a["id"]: a for a in doc["annotations"]}
    anns[6]["category_id"] = 2
    anns[12]["bbox"] = [41, 20, 20, 20]
    del anns[4]
    # new boxes in the order of their tasks (image 6's LL601 ranks before image 3's LL603)
    doc["annotations"] = list(anns.values()) + [_ann(14, 6, 1, [40, 8, 16, 16]), _ann(15, 3, 2, [50, 30, 10, 10])]
    return doc


def test_a_review_round_trip_applies_once(queue):
    folder, data, tasks, _ = queue
    export = folder / "export.json"
    export.write_text(json.dumps(review(tasks), indent=1), encoding="utf-8")
    proc = run_cli("apply", export, data, "--baseline", "baseline.json", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "relabelled annotation 6: 'cat' (1) -> 'dog' (2)" in out
    assert "moved annotation 12: bbox [30, 20, 20, 20] -> [41, 20, 20, 20]" in out
    assert "deleted annotation 4" in out
    assert "added a 'dog' (2) box at [50, 30, 10, 10] to image 3" in out
    assert "added a 'cat' (1) box at [40, 8, 16, 16] to image 6" in out
    assert "changed 5 annotations" in out and "1 task not reviewed" in out
    assert "3 kept as they are" in out  # image 1, looked at and left: its LL202 and two LL603 findings
    assert json.loads(data.read_text(encoding="utf-8")) == expected_after_review()
    kept = {e["code"] for e in json.loads((folder / "baseline.json").read_text())["findings"]}
    assert kept == {"LL202", "LL603"}
    once = data.read_bytes()
    proc = run_cli("apply", export, data, cwd=folder)
    assert proc.returncode == 0, proc.stderr
    assert "nothing to change" in proc.stdout and "5 already applied" in proc.stdout
    assert data.read_bytes() == once


def test_an_annotation_changed_since_the_export_is_refused_unless_forced(queue):
    folder, data, tasks, _ = queue
    export = folder / "export.json"
    export.write_text(json.dumps(review(tasks)), encoding="utf-8")
    doc = json.loads(data.read_text(encoding="utf-8"))
    doc["annotations"][5]["bbox"] = [11, 11, 20, 20]  # someone moved annotation 6 meanwhile
    data.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    edited = data.read_bytes()
    proc = run_cli("apply", export, data, cwd=folder)
    assert proc.returncode == 2 and "nothing was written" in proc.stderr
    assert "task 4 (id 104) region \"a6\": annotation 6 changed since the report was made" in proc.stderr
    assert data.read_bytes() == edited
    proc = run_cli("apply", export, data, "--force", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    anns = {a["id"]: a for a in json.loads(data.read_text(encoding="utf-8"))["annotations"]}
    assert anns[6]["category_id"] == 2 and anns[6]["bbox"] == [11, 11, 20, 20]


def _result(export, image):
    task = next(t for t in export if t["data"]["labellint"]["image_id"] == image)
    return task["annotations"][-1]["result"]


def _break(path):
    """An edit that breaks the export at ``path`` (a key path into the task of image 3, the
    export's third task: "task 4 (id 104)")."""
    def edit(export):
        node = next(t for t in export if t["data"]["labellint"]["image_id"] == 3)
        *keys, last = path[:-1]
        for k in keys:
            node = node[k]
        node[last] = path[-1]
        return export
    return edit


@pytest.mark.parametrize("edit, message", [
    (lambda e: e + [5], "task 6: is not an object"),
    (_break(["data", "labellint", "format", "other"]), "task 4 (id 104): data.labellint.format: must be"),
    (_break(["data", "labellint", "regions", "a6", "state", "xyz"]),
     "task 4 (id 104): data.labellint.regions[\"a6\"].state: must be 16 hex digits"),
    (_break(["data", "labellint", "classes", "dog", "2"]), "task 4 (id 104): data.labellint.classes[\"dog\"]: "
     "must be a category id, not \"2\""),
    (_break(["annotations", 0, "result", 1, "value", "x", "5"]),
     "task 4 (id 104): annotations[0].result[1].value.x: must be a finite number, not \"5\""),
    (_break(["annotations", 0, "result", 1, "value", "rectanglelabels", ["zebra"]]),
     "task 4 (id 104): annotations[0].result[1].value.rectanglelabels: \"zebra\" is not a class of \"ann.json\""),
    (_break(["annotations", 0, "result", 1, "value", "rectanglelabels", ["cat", "dog"]]),
     "annotations[0].result[1].value.rectanglelabels: must be a list of one label"),
    (_break(["annotations", 0, "result", 1, "value", "rotation", 30]), "a rotated box cannot be written to COCO"),
    (_break(["annotations", 0, "result", 1, "value", "width", 1e308]),
     "annotations[0].result[1].value: the box [10, 10, inf, 20] (pixels) has a corner or an area"),
    (_break(["annotations", 0, "result", 1, "id", "a5_s"]), "annotations[0].result[1].id: region \"a5\" appears twice"),
    (_break(["annotations", 0, "was_cancelled", "no"]), "annotations[0].was_cancelled: must be true or false"),
    (_break(["annotations", 0, "result", {"a": 1}]), "annotations[0].result: must be a list"),
    (_break(["data", "labellint", None]), "task 4 (id 104): data.labellint: must be an object"),
])
def test_a_malformed_export_is_one_line_naming_the_task_and_field(queue, edit, message):
    folder, data, tasks, _ = queue
    original = data.read_bytes()
    export = folder / "export.json"
    export.write_text(json.dumps(edit(review(tasks))), encoding="utf-8")
    proc = run_cli("apply", export, data, cwd=folder)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert data.read_bytes() == original


def test_hostile_names_stay_inert(queue):
    folder, data, tasks, config = queue
    assert "<script>" not in config and "&lt;script&gt;alert(1)&lt;/script&gt;" in config
    assert 'value="a &quot;b&quot;\\nc"' in config  # the newline escaped, the quotes too
    text = (folder / "tasks.json").read_text(encoding="utf-8")
    assert "etc/passwd" not in text  # the climbing file name has no task
    for task in tasks:
        url = task["data"]["image"]
        assert all(c not in url for c in '<>" \n\\') and ".." not in url
    # labels that came from the data are applied back by their exact value
    export = review(tasks)
    task5 = next(t for t in export if t["data"]["labellint"]["image_id"] == 5)
    result = copy.deepcopy(prediction(task5)["result"])
    result[1]["value"]["rectanglelabels"] = [SCRIPT]
    task5["annotations"] = [{"id": 9, "result": result, "was_cancelled": False}]
    (folder / "export.json").write_text(json.dumps(export), encoding="utf-8")
    proc = run_cli("apply", "export.json", data, "--dry-run", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    assert "relabelled annotation 10: 'a \"b\"\\nc' (4) -> '<script>alert(1)</script>' (3)" in proc.stdout


def test_the_format_needs_an_output_file_and_is_registered(tmp_path):
    from labellint.report import registry

    assert "label-studio" in registry.names()
    (tmp_path / "ann.json").write_text(json.dumps(dataset()), encoding="utf-8")
    proc = run_cli("check", "ann.json", "-f", "label-studio", cwd=tmp_path)
    assert proc.returncode == 2 and "--output-format label-studio needs --output-file TASKS.json" in proc.stderr


def test_the_image_url_prefix_comes_from_the_environment(tmp_path):
    """... and with --report FORMAT:FILE the config goes beside that file."""
    (tmp_path / "ann.json").write_text(json.dumps(dataset()), encoding="utf-8")
    (tmp_path / "queue").mkdir()
    proc = run_cli("check", "ann.json", "--report", "label-studio:queue/t.json", cwd=tmp_path,
                   env={"LABELLINT_LABEL_STUDIO_URL": "https://example.org/bucket/"})
    assert proc.returncode == 1, proc.stderr
    urls = {t["data"]["image"] for t in json.loads((tmp_path / "queue" / "t.json").read_text(encoding="utf-8"))}
    assert "https://example.org/bucket/b%20c.png" in urls
    assert (tmp_path / "queue" / "t.label-config.xml").is_file()


def test_an_exported_box_turned_into_another_kind_of_region_is_refused(queue):
    """Read as a box, it would be gone and its annotation deleted."""
    folder, data, tasks, _ = queue
    original = data.read_bytes()
    export = review(tasks)
    _result(export, 3)[1]["type"] = "polygonlabels"
    (folder / "export.json").write_text(json.dumps(export), encoding="utf-8")
    proc = run_cli("apply", "export.json", data, cwd=folder)
    assert proc.returncode == 2
    assert 'task 4 (id 104): annotations[0].result[1].type: region "a6_s" must be a rectanglelabels box' in proc.stderr
    assert data.read_bytes() == original


def test_changes_no_decision_can_carry_are_conflicts(queue):
    """A box without a usable id cannot be named by a decision, and a new box needs the image's
    size: both are refused, --force or not, and nothing is written."""
    from labellint.coco import load
    from labellint.errors import InputError
    from labellint.fix import labelstudio

    folder, data, tasks, _ = queue
    export = review(tasks)
    task = next(t for t in export if t["data"]["labellint"]["image_id"] == 7)
    task["data"]["labellint"]["regions"]["a12"]["annotation_id"] = None
    task = next(t for t in export if t["data"]["labellint"]["image_id"] == 6)
    task["data"]["labellint"].update(width=None, regions={}, findings=[])  # as the report writes an image of no size
    plan, _ = labelstudio.plan(load(data, "ann.json"), labelstudio.read(export, "export.json"), "ann.json", force=True)
    assert plan.conflicts == [
        f'task 3 (id 103) region "{rid}": a new box on an image without a valid id, width and height in the '
        "dataset; not applied" for rid in ("a11_s", "n0_s")] + [
        'task 5 (id 105) region "a12": the box has no annotation id labellint can act on (give it one first: '
        "LL010, LL014); not applied"]
    task["data"]["labellint"]["regions"] = {"a11": {"annotation_id": 11, "state": None, "label": "cat",
                                                    "bbox": [2, 2, 12, 12]}}
    with pytest.raises(InputError, match=r"task 3 \(id 103\): data.labellint.width: must be a positive number"):
        labelstudio.read(export, "export.json")


def test_every_class_name_becomes_one_label_the_config_holds():
    from labellint.coco import load_bytes
    from labellint.report import labelstudio as report

    names = ["cat", "cat", "", "$image", "bad\ufffechar", "\u202egpj.exe", "tab\there", " cat "]
    doc = {"images": [], "annotations": [],
           "categories": [{"id": i + 1, "name": n} for i, n in enumerate(names)] + [{"id": 2**60, "name": "huge"}]}
    ds = load_bytes(json.dumps(doc).encode(), "x.json")
    labels = {label: cid for label, cid in report.class_labels(ds).values()}
    assert labels == {"cat": 1, "cat (id 2)": 2, "(id 3)": 3, "_$image": 4, "bad\\ufffechar": 5,
                      "\\u202egpj.exe": 6, "tab\\there": 7, "cat (id 8)": 8}  # 2**60: no exact id in a page
    interface = LabelInterface(report.label_config(labels))
    interface.validate()
    assert set(next(iter(interface.labels))) == set(labels)


def test_a_review_begun_on_an_empty_canvas_deletes_nothing_unless_forced(queue):
    """With pre-labelling off, a reviewer starts from no boxes: an empty review then reads as
    "delete them all". Label Studio marks an annotation made from a prediction (parent_prediction)."""
    folder, data, tasks, _ = queue
    original = data.read_bytes()
    export = review(tasks)
    task = next(t for t in export if t["data"]["labellint"]["image_id"] == 7)
    task["annotations"] = [{"id": 1, "result": [], "was_cancelled": False}]
    (folder / "export.json").write_text(json.dumps(export), encoding="utf-8")
    proc = run_cli("apply", "export.json", data, "--dry-run", cwd=folder)
    assert proc.returncode == 2 and data.read_bytes() == original
    assert ("task 5 (id 105): the review keeps none of the task's 1 box and was not started from a prediction"
            in proc.stderr)
    assert "deleted annotation 12" in run_cli("apply", "export.json", data, "--dry-run", "--force", cwd=folder).stdout
    task["annotations"][0]["parent_prediction"] = 7  # made from a prediction: its boxes deleted on purpose
    (folder / "export.json").write_text(json.dumps(export), encoding="utf-8")
    proc = run_cli("apply", "export.json", data, "--dry-run", cwd=folder)
    assert proc.returncode == 0 and "deleted annotation 12" in proc.stdout
