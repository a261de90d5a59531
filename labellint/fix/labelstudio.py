"""A Label Studio review read back as decisions: ``labellint apply EXPORT.json DATASET.json``.

``check DATA.json -f label-studio -o tasks.json`` (:mod:`labellint.report.labelstudio`) writes
one Label Studio task per image with findings; the project's JSON export (Export > JSON: a list
of those tasks, each with the reviewers' ``annotations``) is applied as decisions.

Format (version 1). What apply reads of a task is its ``annotations`` and ``data.labellint``::

    {"format": "labellint-label-studio", "version": 1, "path": "data/train.json", "report": "...",
     "image_id": 7, "width": 640, "height": 480,      # the dataset's image size: percent <-> pixels
     "classes": {"cat": 1, "dog": 2},                  # Label value -> category id
     "regions": {"a17": {"annotation_id": 17, "state": "0123456789abcdef", "label": "cat",
                         "bbox": [x, y, w, h]}, ...},  # every box the task drew, in pixels
     "findings": [{"code": "LL501", "fingerprint": "...", "region": "a17"}, ...]}

Region ids: ``a<annotation id>`` (``a<id>_<k>`` for the k-th box of a repeated id on one image,
``r<row>`` for a box without a usable id) in the prediction ``labellint-labels``; the same with
``_s`` in ``labellint-suggestions``, where ``n<k>_s`` is a new box a finding suggests. Label
Studio keeps a prediction's region ids in the annotation made from it, so the review names the
boxes it kept.

Decisions. A task's review is its latest annotation that was not cancelled (latest by
``updated_at``, then ``created_at``, then place in the list); a task without one was not reviewed
and changes nothing. Each exported region, compared with the review:

- gone: ``delete``;
- its label changed: ``relabel`` to ``classes[label]``;
- its box moved or resized by more than 0.5 px (percent turned into pixels with the exported
  width and height): ``set_bbox``, rounded to 0.01 px;
- untouched: nothing, and its findings are kept (``apply --baseline`` records them); a finding
  about the image is kept when the review adds no box.

A region of the review that no exported region explains (drawn by the reviewer, or a box LL601
suggested) is added: a new annotation with the next unused id, the class, the box, ``area`` the
box's and ``iscrowd`` 0, unless the image already has a box of that class within 0.5 px there
(applied before). Decisions carry the exported state, so the checks of :mod:`labellint.fix.decisions`
hold: an annotation changed since the export is refused unless ``--force``; applying twice
changes nothing. A change that cannot be applied (to a box without a usable id, a new box on an
image without a valid size) is a conflict that ``--force`` does not override.

A review that keeps none of a task's boxes and was not started from a prediction (its
``parent_prediction`` is not set) looks like one begun on an empty canvas, pre-labelling off: its
deletions are a conflict unless ``--force``.

The export comes from anywhere: it is read whole only below ``max_decisions_bytes``, every field
read is checked, and a malformed one is one InputError naming the task (index and id) and the
field; nothing is written then. Regions of other types (a project may add a comment box or a
choice) are ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from labellint.errors import InputError
from labellint.findings import append
from labellint.fix import decisions
from labellint.fix.decisions import Decision, _box, _is_id, _is_int, _shown
from labellint.fix.values import plain_number

FORMAT = "labellint-label-studio"
VERSION = 1
FROM_NAME, TO_NAME = "label", "image"  # the labeling config's RectangleLabels and Image
MODEL_LABELS, MODEL_SUGGESTIONS = "labellint-labels", "labellint-suggestions"
SUGGESTED = "_s"
TOLERANCE_PX = 0.5
_MISSING = object()


@dataclass
class Addition:
    path: str
    where: str
    image_id: int
    category_id: int
    label: str
    bbox: list


@dataclass
class Review:
    decisions: list[Decision] = field(default_factory=list)
    additions: list[Addition] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (path, why): changes no decision can carry
    blank: list[tuple[str, str]] = field(default_factory=list)  # (path, why): reviews that look started empty
    reviewed: int = 0
    unreviewed: int = 0


def is_export(doc) -> bool:
    """A Label Studio JSON export is a list of tasks (a decisions file is an object)."""
    return isinstance(doc, list)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


class _Task:
    """Reads one task's fields; each failure is an InputError naming the task and the field."""

    def __init__(self, i: int, task, shown: str):
        tid = task.get("id") if isinstance(task, dict) else None
        self.where = f"task {i}" + (f" (id {tid})" if _is_int(tid) else "")
        self.shown = shown
        if not isinstance(task, dict):
            self.fail("", "is not an object")

    def fail(self, at: str, what: str):
        raise InputError(f"{self.where}: {at + ': ' if at else ''}{what}", self.shown)

    def get(self, obj: dict, key: str, at: str, ok, what: str, default=_MISSING):
        name = f"{at}.{key}" if at else key
        if key not in obj:
            if default is _MISSING:
                self.fail(name, "missing")
            return default
        if not ok(obj[key]):
            self.fail(name, f"must be {what}, not {_shown(obj[key])}")
        return obj[key]

    def meta(self, data: dict) -> dict:
        m = self.get(data, "labellint", "data", lambda v: isinstance(v, dict), "an object (a task labellint wrote)")
        at = "data.labellint"
        self.get(m, "format", at, lambda v: v == FORMAT, repr(FORMAT))
        self.get(m, "version", at, lambda v: v == VERSION, f"{VERSION} (the version this labellint reads)")
        self.get(m, "path", at, lambda v: isinstance(v, str), "a string")
        self.get(m, "image_id", at, lambda v: v is None or _is_id(v), "an image id or null")
        for key in ("width", "height"):
            self.get(m, key, at, lambda v: v is None or _finite(v) and v > 0, "a positive number or null")
        classes = self.get(m, "classes", at, lambda v: isinstance(v, dict), "an object")
        for label, cid in classes.items():
            if not _is_id(cid):
                self.fail(f"{at}.classes[{_shown(label)}]", f"must be a category id, not {_shown(cid)}")
        regions = self.get(m, "regions", at, lambda v: isinstance(v, dict), "an object")
        for rid, r in regions.items():
            rat = f"{at}.regions[{_shown(rid)}]"
            if not isinstance(r, dict):
                self.fail(rat, "must be an object")
            self.get(r, "annotation_id", rat, lambda v: v is None or _is_id(v), "an annotation id or null")
            self.get(r, "state", rat, lambda v: v is None or isinstance(v, str) and decisions._STATE.fullmatch(v),
                     "16 hex digits (fix.state) or null")
            self.get(r, "label", rat, lambda v: isinstance(v, str), "a string")
            self.get(r, "bbox", rat, decisions._sane_box, "[x, y, width, height] of finite numbers")
        if regions and (m["width"] is None or m["height"] is None):
            self.fail(f"{at}.width", "must be a positive number: the task has regions")
        for k, f in enumerate(self.get(m, "findings", at, lambda v: isinstance(v, list), "a list", [])):
            fat = f"{at}.findings[{k}]"
            if not isinstance(f, dict):
                self.fail(fat, "must be an object")
            for key in ("code", "fingerprint"):
                self.get(f, key, fat, lambda v: isinstance(v, str), "a string")
            self.get(f, "region", fat, lambda v: v is None or isinstance(v, str) and v in regions,
                     "a region of the task or null", None)
        return m

    def review(self, task: dict) -> tuple[str, list, bool] | None:
        """The latest annotation not cancelled, as (its field name, its result, whether it was
        started from a prediction); None: none."""
        latest = None
        for k, a in enumerate(self.get(task, "annotations", "", lambda v: isinstance(v, list), "a list", [])):
            at = f"annotations[{k}]"
            if not isinstance(a, dict):
                self.fail(at, "must be an object")
            result = self.get(a, "result", at, lambda v: isinstance(v, list), "a list")
            when = [self.get(a, key, at, lambda v: v is None or isinstance(v, str), "a date or null", None) or ""
                    for key in ("updated_at", "created_at")]
            if not self.get(a, "was_cancelled", at, lambda v: isinstance(v, bool), "true or false", False):
                if latest is None or (when, k) >= latest[0]:
                    latest = ((when, k), at, result, _is_int(a.get("parent_prediction")))
        return None if latest is None else latest[1:]

    def boxes(self, at: str, result: list, regions: dict) -> dict[str, tuple[str, list, str]]:
        """The review's boxes: region id (exported, suggestion suffix dropped) -> (label, [x, y,
        w, h] in percent, where in the task)."""
        out = {}
        for j, r in enumerate(result):
            rat = f"{at}[{j}]"
            if not isinstance(r, dict):
                self.fail(rat, "must be an object")
            if r.get("type") != "rectanglelabels":
                if _exported(r.get("id"), regions) is not None:  # read as deleted, it would be
                    self.fail(f"{rat}.type", f"region {_shown(r['id'])} must be a rectanglelabels box, "
                              f"not {_shown(r.get('type'))}")
                continue
            rid = self.get(r, "id", rat, lambda v: isinstance(v, str), "a string")
            value = self.get(r, "value", rat, lambda v: isinstance(v, dict), "an object")
            vat = f"{rat}.value"
            box = [self.get(value, k, vat, _finite, "a finite number") for k in ("x", "y", "width", "height")]
            if box[2] < 0 or box[3] < 0:
                self.fail(vat, "width and height must not be negative")
            if self.get(value, "rotation", vat, _finite, "a finite number", 0) % 360:
                self.fail(f"{vat}.rotation", "a rotated box cannot be written to COCO (the labeling config "
                          "sets canRotate=\"false\")")
            labels = self.get(value, "rectanglelabels", vat, lambda v: isinstance(v, list) and len(v) == 1
                              and isinstance(v[0], str), "a list of one label")
            base = _exported(rid, regions) or rid
            if base in out:
                self.fail(f"{rat}.id", f"region {_shown(base)} appears twice")
            out[base] = (labels[0], box, vat)
        return out


def _exported(rid, regions: dict) -> str | None:
    """The exported region a review's region id names (its suggestion suffix dropped), if any."""
    if not isinstance(rid, str):
        return None
    base = rid[:-len(SUGGESTED)] if rid.endswith(SUGGESTED) else rid
    return base if base in regions else rid if rid in regions else None


def read(doc: list, shown: str) -> Review:
    """The decisions of a Label Studio export, validated (InputError naming the task and field)."""
    out = Review()
    for i, task in enumerate(doc):
        t = _Task(i, task, shown)
        data = t.get(task, "data", "", lambda v: isinstance(v, dict), "an object")
        _read_task(t, t.meta(data), t.review(task), out)
    return out


def _read_task(t: _Task, m: dict, review, out: Review) -> None:
    if review is None:
        out.unreviewed += 1
        return
    out.reviewed += 1
    path, regions, classes = m["path"], m["regions"], m["classes"]
    w, h = m.get("width"), m.get("height")
    boxes = t.boxes(f"{review[0]}.result", review[1], regions)
    if regions and not set(boxes) & set(regions) and not review[2]:
        out.blank.append((path, f"{t.where}: the review keeps none of the task's {len(regions)} box"
                                f"{'es' * (len(regions) != 1)} and was not "
                                "started from a prediction (is pre-labelling with labellint-labels on?); "
                                "--force deletes them"))

    def pixels(pct, at: str) -> list:
        box = [plain_number(v) for v in (pct[0] * w / 100, pct[1] * h / 100, pct[2] * w / 100, pct[3] * h / 100)]
        if not decisions._sane_box(box):
            t.fail(at, f"the box {_box(box)} (pixels) has a corner or an area beyond any number")
        return box

    def category(label: str, at: str) -> int:
        if label not in classes:
            t.fail(f"{at}.rectanglelabels", f"{_shown(label)} is not a class of {_shown(path)}")
        return classes[label]

    untouched = set()
    for rid, r in regions.items():
        where = f"{t.where} region {_shown(rid)}"
        got = boxes.get(rid)
        changes = [("delete", {})] if got is None else []
        if got is not None:
            label, pct, at = got
            if label != r["label"]:
                changes.append(("relabel", {"category_id": category(label, at)}))
            box = pixels(pct, at)
            if any(abs(a - b) > TOLERANCE_PX for a, b in zip(box, r["bbox"])):
                changes.append(("set_bbox", {"bbox": box}))
        if not changes:
            untouched.add(rid)
        elif r["annotation_id"] is None:
            out.refused.append((path, f"{where}: the box has no annotation id labellint can act on (give it one "
                                      "first: LL010, LL014); not applied"))
        else:
            for action, extra in changes:
                d = {"category_id": None, "bbox": None, **extra}
                out.decisions.append(Decision(len(out.decisions), path, None, None, r["annotation_id"], r["state"],
                                              action, d["category_id"], d["bbox"], where=where))
    new = [rid for rid in boxes if rid not in regions]
    for rid in new:
        label, pct, at = boxes[rid]
        where = f"{t.where} region {_shown(rid)}"
        if w is None or h is None or m.get("image_id") is None:
            out.refused.append((path, f"{where}: a new box on an image without a valid id, width and height in "
                                      "the dataset; not applied"))
            continue
        out.additions.append(Addition(path, where, m["image_id"], category(label, at), label,
                                      pixels(pct, at)))
    for f in m.get("findings", []):
        region = f.get("region")
        if region in untouched or (region is None and not new):
            out.decisions.append(Decision(len(out.decisions), path, f["fingerprint"], f["code"], None, None, "keep",
                                          where=t.where))


def plan(ds, review: Review, relpath: str, force: bool = False) -> tuple[decisions.Plan, str | None]:
    """The review's plan for the dataset at ``relpath``, with a note when the tasks name another
    path (as :func:`labellint.fix.decisions.for_file`)."""
    mine, note = decisions.for_file(review.decisions + review.additions, relpath)
    paths = {x.path for x in review.decisions + review.additions} | {p for p, _ in review.refused + review.blank}
    p = decisions.plan(ds, [d for d in mine if isinstance(d, Decision)], force)
    p.conflicts.extend(why for path, why in review.refused + (review.blank if not force else [])
                       if len(paths) <= 1 or path == relpath)
    _add(ds, [a for a in mine if isinstance(a, Addition)], p)
    return p, note


def _add(ds, additions: list[Addition], p: decisions.Plan) -> None:
    """Append edits for the new boxes, each once: a box the image already has is skipped."""
    if not additions:
        return
    ann = ds.annotations
    deleted = {e.index for e in p.edits if e.op == "delete" and e.section == "annotations"}
    if len(deleted) >= len(ann):
        p.conflicts.append(f"{additions[0].where}: new boxes go after the file's last annotation, and the "
                           "file has none left; apply the deletions first, then this export again")
        return
    images = set(ds.images.id.tolist())
    names = {int(c): ds.category_name(r) for r, c in enumerate(ds.categories.id.tolist())}
    planned: list[Addition] = []
    for a in additions:
        if a.image_id not in images:
            p.conflicts.append(f"{a.where}: image {a.image_id} is no longer in the file")
            continue
        if a.category_id not in names:
            p.conflicts.append(f"{a.where}: category id {a.category_id} is not in the file")
            continue
        rows = np.flatnonzero((ann.image_id == a.image_id) & (ann.category_id == a.category_id))
        rows = [r for r in rows.tolist() if r not in deleted]
        there = np.abs(ann.bbox[rows] - np.asarray(a.bbox, dtype=float)) <= TOLERANCE_PX if rows else np.zeros((0, 4))
        label = f"'{names[a.category_id]}' ({a.category_id})"
        if there.all(axis=1).any() or any(_same(a, b) for b in planned):
            p.already.append(f"{a.where}: image {a.image_id} already has a {label} box at {_box(a.bbox)}")
            continue
        planned.append(a)
        w, h = a.bbox[2], a.bbox[3]
        p.edits.append(append("annotations", {"image_id": a.image_id, "category_id": a.category_id, "bbox": a.bbox,
                                              "area": plain_number(w * h), "iscrowd": 0}))
        p.changes.append(f"added a {label} box at {_box(a.bbox)} to image {a.image_id} ({a.where})")


def _same(a: Addition, b: Addition) -> bool:
    return (a.image_id, a.category_id) == (b.image_id, b.category_id) and all(
        abs(x - y) <= TOLERANCE_PX for x, y in zip(a.bbox, b.bbox))
