"""A review queue for Label Studio: ``check DATA.json -f label-studio -o tasks.json``.

``tasks.json`` is a JSON list of Label Studio import tasks, one per image with findings, in the
rank of the image's best finding. Each task holds:

- ``data.image``: the image's URL, ``$LABELLINT_LABEL_STUDIO_URL`` (default Label Studio's local
  files form ``/data/local-files/?d=``) followed by the percent-encoded ``file_name``. An image
  whose name is absolute or climbs out with ``..`` gets no task (LL401 reports it).
- ``data.findings`` (the findings in one line, shown by the labeling config's header),
  ``data.codes`` and ``data.score`` (the best finding's score): columns to sort and filter by.
- ``data.labellint``: what ``labellint apply`` needs to map the review back (the dataset path,
  the report id, the image's id and size, class labels -> category ids, and each drawn box with
  its annotation id, its state hash (fix.state) and its pixels); the format is documented in
  :mod:`labellint.fix.labelstudio`.
- ``predictions``: ``labellint-labels``, the image's current labels as RectangleLabels regions in
  percent of the image (``original_width``/``original_height`` the dataset's), region ids naming
  the annotation (``a17``), the findings on a box in its ``meta.text``; and, when a finding
  suggests something (LL501/LL603 a class, LL602 a box, LL604 or a duplicate a deletion, LL601 a
  new box), ``labellint-suggestions``: the labels with the suggestions taken, each region that a
  suggestion changed scored with that finding's score. A prediction's score is its best
  finding's.

Boxes that cannot be drawn (a coordinate not finite or beyond 1e15, no width or height) are left
out of the task and so out of the review: apply never reads their absence as a deletion.

The labeling config the tasks need is written beside the tasks file (``tasks.label-config.xml``):
every class as a ``<Label>``, its value the class name (control characters escaped; a name
taken twice gets `` (id N)``), XML-escaped, with ``category`` the category id where every file
agrees on it (Label Studio's COCO export then keeps the ids).
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import escape

from rich.text import Text

from labellint.coco import MISSING_ID
from labellint.fix import labelstudio as fmt
from labellint.fix.state import entry_state
from labellint.fsutil import atomic_write
from labellint.images.paths import relative_parts
from labellint.report.gallery_cards import MAX_COORD, accept_action, js_id, report_id
from labellint.report.safe import clean

URL_VARIABLE = "LABELLINT_LABEL_STUDIO_URL"
DEFAULT_URL = "/data/local-files/?d="
UNKNOWN = "(unknown class)"  # the label of a box whose category the file does not have
MAX_SHOWN = 10  # findings in a task's header line
MAX_TEXT = 300  # characters of one finding there
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")  # no XML 1.0 document holds them


def report(result, options) -> str:
    tasks, labels = build(result, os.environ.get(URL_VARIABLE) or DEFAULT_URL)
    if options.output_file is not None:
        path = config_path(Path(options.output_file))
        atomic_write(path, label_config(labels))
        if options.console is not None:
            options.console.print(Text(f"Label Studio labeling config written to {path} (the project's "
                                       "Settings > Labeling Interface > Code)"))
    return json.dumps(tasks, allow_nan=False)  # ASCII: a lone surrogate from the data is written escaped


def config_path(tasks_file: Path) -> Path:
    """Where the labeling config goes: beside the tasks, ``tasks.json`` -> ``tasks.label-config.xml``."""
    return tasks_file.with_name(tasks_file.stem + ".label-config.xml")


def label_config(labels: dict[str, int | None]) -> str:
    """The labeling config for ``labels`` (label value -> category id, None where files disagree)."""
    lines = [f'    <Label value="{_attr(label)}"' + ("" if cid is None else f' category="{cid}"') + "/>"
             for label, cid in labels.items()]
    return ('<View>\n  <Header value="$findings" size="5"/>\n'
            f'  <Image name="{fmt.TO_NAME}" value="$image" zoom="true" zoomControl="true"/>\n'
            f'  <RectangleLabels name="{fmt.FROM_NAME}" toName="{fmt.TO_NAME}" canRotate="false">\n'
            + "\n".join(lines) + "\n  </RectangleLabels>\n</View>\n")


def _attr(s: str) -> str:
    return escape(s, {'"': "&quot;"})


def _number(v) -> float | int | None:
    v = float(v)
    if not math.isfinite(v) or abs(v) > MAX_COORD:
        return None
    return int(v) if v.is_integer() else v


def class_labels(ds) -> dict[int, tuple[str, int]]:
    """Category row -> (label, category id), each label once: the class name, control characters
    escaped; a name already taken (or empty) gets " (id N)". Categories without a usable id have
    no label."""
    out, taken = {}, {UNKNOWN}
    for row, cid in enumerate(ds.categories.id.tolist()):
        cid = js_id(cid)
        if cid is None:
            continue
        label = _NOT_XML.sub(lambda m: f"\\u{ord(m.group(0)):04x}", clean(ds.category_name(row))).strip()
        if label.startswith("$"):  # "$name" reads as a task variable in Label Studio's config
            label = "_" + label
        if not label or label in taken:
            label = f"{label} (id {cid})".strip()
        while label in taken:
            label += "'"
        taken.add(label)
        out[row] = (label, cid)
    return out


def image_url(prefix: str, file_name) -> str | None:
    """``prefix`` + the percent-encoded name; None for a name that leaves the image root."""
    parts, _ = relative_parts(file_name)
    return None if parts is None else prefix + quote("/".join(parts), safe="/")


def build(result, prefix: str = DEFAULT_URL) -> tuple[list[dict], dict[str, int | None]]:
    """The tasks, and the labels of every loaded file (label -> category id, None where two
    files give one label different ids)."""
    rid = report_id(result.findings)
    groups: dict[tuple[str, int], list] = {}
    for f in result.findings:  # ranked: a task's place is its best finding's
        ds = result.datasets.get(f.path)
        row = None if ds is None else _image_row(ds, f)
        if row is not None:
            groups.setdefault((f.path, row), []).append(f)
    labels: dict[str, int | None] = {}
    per_file = {}
    for path, ds in result.datasets.items():
        per_file[path] = class_labels(ds)
        for label, cid in per_file[path].values():
            labels[label] = cid if labels.get(label, cid) == cid else None
    tasks = []
    for (path, row), findings in groups.items():
        task = _Task(result.datasets[path], path, row, per_file[path], rid).build(findings, prefix)
        if task is not None:
            tasks.append(task)
    if any(r["value"]["rectanglelabels"] == [UNKNOWN] for t in tasks for p in t["predictions"] for r in p["result"]):
        labels[UNKNOWN] = None
    return tasks, labels


def _image_row(ds, f) -> int | None:
    if f.row is None:
        return None
    if f.section == "images" and 0 <= f.row < len(ds.images):
        return int(f.row)
    if f.section == "annotations" and 0 <= f.row < len(ds.annotations):
        row = int(ds.ann_image_row[f.row])
        return row if row >= 0 else None
    return None


class _Task:
    """One image's task: its regions, findings and suggestions."""

    def __init__(self, ds, path: str, image_row: int, classes: dict, report: str):
        self.ds, self.path, self.row, self.report = ds, path, image_row, report
        self.classes = classes
        self.label_of_id = {cid: label for label, cid in classes.values()}
        self.width = _number(ds.images.width[image_row])
        self.height = _number(ds.images.height[image_row])
        if self.width is not None and self.width <= 0 or self.height is not None and self.height <= 0:
            self.width = self.height = None
        self.regions: dict[str, dict] = {}  # region id -> what apply needs
        self.region_of_row: dict[int, str] = {}

    def build(self, findings, prefix: str) -> dict | None:
        url = image_url(prefix, self.ds.images.file_name[self.row])
        if url is None:
            return None
        if self.width is not None and self.height is not None:
            self._regions()
        current = {rid: self._result(rid, r["bbox"], r["label"]) for rid, r in self.regions.items()}
        for f in findings:  # the findings on a box, beside it
            rid = self.region_of_row.get(f.row) if f.section == "annotations" else None
            if rid is not None:
                current[rid].setdefault("meta", {"text": []})["text"].append(f"{f.code}: {clean(f.message)[:MAX_TEXT]}")
        best = _score(findings[0].score)
        predictions = [{"model_version": fmt.MODEL_LABELS, "score": best, "result": list(current.values())}]
        suggested = self._suggested(findings, current)
        if suggested is not None:
            predictions.append(suggested)
        shown = [f"{f.code} {f.severity} {_score(f.score)}: {clean(f.message)[:MAX_TEXT]}"
                 for f in findings[:MAX_SHOWN]]
        if len(findings) > MAX_SHOWN:
            shown.append(f"and {len(findings) - MAX_SHOWN} more")
        codes = ", ".join(dict.fromkeys(f.code for f in findings))
        return {"data": {"image": url, "findings": " · ".join(shown), "codes": codes, "score": best,
                         "labellint": self._meta(findings)},
                "predictions": predictions}

    def _suggested(self, findings, current: dict) -> dict | None:
        """The prediction ``labellint-suggestions``: the labels with each box's best-ranked
        suggestion taken and the new boxes suggested; None when no finding suggests anything."""
        out = {rid: {k: v for k, v in r.items() if k != "meta"} for rid, r in current.items()}
        scores: dict[str, float | None] = {}
        for f in findings:
            ann = f.row if f.section == "annotations" else None
            rid = self.region_of_row.get(ann) if ann is not None else None
            change = self._suggestion(f, ann)
            if change is None or (rid is None and change[0] != "add") or rid in scores:
                continue
            kind, value = change
            if kind == "delete":
                out.pop(rid, None)
            elif kind == "add":
                rid = f"n{sum(k.startswith('n') for k in scores)}"
                out[rid] = self._result(rid, *value)
            else:
                region = self.regions[rid]
                out[rid] = self._result(rid, value if kind == "bbox" else region["bbox"],
                                        value if kind == "label" else region["label"])
            scores[rid] = _score(f.score)
        if not scores:
            return None
        for rid, r in out.items():
            r["id"] = rid + fmt.SUGGESTED
            if scores.get(rid) is not None:
                r["score"] = scores[rid]
        return {"model_version": fmt.MODEL_SUGGESTIONS, "score": max((v for v in scores.values() if v is not None),
                                                                      default=None),
                "result": list(out.values())}

    def _regions(self) -> None:
        ds = self.ds
        rows = ds.shared("labelstudio.by_image", lambda: _rows_by_image(ds)).get(self.row, [])
        seen: dict[int, int] = {}
        for row in rows:
            bbox = [_number(v) for v in ds.annotations.bbox[row]]
            state = entry_state(ds, "annotations", row)
            if None in bbox or bbox[2] <= 0 or bbox[3] <= 0 or state is None:
                continue
            aid = js_id(ds.annotations.id[row])
            if aid is None:
                rid = f"r{row}"
            else:
                seen[aid] = seen.get(aid, 0) + 1
                rid = f"a{aid}" + (f"_{seen[aid]}" if seen[aid] > 1 else "")
            crow = int(ds.ann_category_row[row])
            label = self.classes[crow][0] if crow in self.classes else UNKNOWN
            self.regions[rid] = {"annotation_id": aid, "state": state, "label": label, "bbox": bbox}
            self.region_of_row[row] = rid

    def _suggestion(self, f, ann: int | None) -> tuple[str, object] | None:
        """What the finding proposes, as a change of regions: ("label", label), ("bbox", box),
        ("delete", None) or ("add", (box, label)); None when it proposes nothing drawable."""
        if ann is not None:
            act = accept_action(f, self.ds, ann) or {}
            if act.get("action") == "relabel" and act["category_id"] in self.label_of_id:
                return "label", self.label_of_id[act["category_id"]]
            if act.get("action") == "set_bbox":
                box = [_number(v) for v in act["bbox"]]
                return ("bbox", box) if None not in box and box[2] > 0 and box[3] > 0 else None
            return ("delete", None) if act.get("action") == "delete" else None
        edits = () if f.fix is None or callable(f.fix.edits) else f.fix.edits
        if self.width is None or len(edits) != 1 or edits[0].op != "append" or edits[0].section != "annotations":
            return None
        fields = edits[0].value
        box, label = fields.get("bbox"), self.label_of_id.get(fields.get("category_id"))
        if not isinstance(box, (list, tuple)) or len(box) != 4 or label is None:
            return None
        try:
            box = [_number(v) for v in box]
        except (TypeError, ValueError):
            return None
        return ("add", (box, label)) if None not in box and box[2] > 0 and box[3] > 0 else None

    def _result(self, rid: str, bbox, label: str) -> dict:
        w, h = self.width, self.height
        x, y, bw, bh = bbox
        return {"id": rid, "type": "rectanglelabels", "from_name": fmt.FROM_NAME, "to_name": fmt.TO_NAME,
                "original_width": w, "original_height": h, "image_rotation": 0,
                "value": {"x": x / w * 100, "y": y / h * 100, "width": bw / w * 100, "height": bh / h * 100,
                          "rotation": 0, "rectanglelabels": [label]}}

    def _meta(self, findings) -> dict:
        ds, row = self.ds, self.row
        return {"format": fmt.FORMAT, "version": fmt.VERSION, "path": self.path, "report": self.report,
                "image_id": js_id(ds.images.id[row]), "file_name": clean(ds.images.file_name[row]),
                "width": self.width, "height": self.height,
                "classes": {label: cid for label, cid in self.classes.values()},
                "regions": self.regions,
                "findings": self._findings(findings)}

    def _findings(self, findings) -> list[dict]:
        """Each finding with the region it is about (None: about the image); one about a box the
        task does not draw is left out, so that a review never keeps what it could not see."""
        out = []
        for f in findings:
            rid = self.region_of_row.get(f.row) if f.section == "annotations" else None
            if f.section != "annotations" or rid is not None:
                out.append({"code": f.code, "fingerprint": f.fingerprint, "region": rid})
        return out


def _score(v) -> float | None:
    v = _number(v)
    return None if v is None else round(v, 4)


def _rows_by_image(ds) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for ann, img in enumerate(ds.ann_image_row.tolist()):
        if img >= 0:
            out.setdefault(img, []).append(ann)
    return out
