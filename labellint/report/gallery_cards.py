"""The review gallery's data: what each finding's card shows, and which pictures it needs.

A :class:`Plan` turns a run's findings into the page's JSON, in their ranked order, and lists
every thumbnail and crop to make, keyed so that one image behind hundreds of findings is drawn
once (:mod:`labellint.report.gallery_pictures` draws them). Findings locate their entry by
``Finding.section`` and ``Finding.row``. Dataset numbers are hostile: a number to draw is finite
and clipped to +-MAX_COORD, and an id or value a decision would carry is left out (the page cannot
act on it) unless JavaScript holds it exactly.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

from labellint import __version__
from labellint.coco import MISSING_ID, idvalues
from labellint.fix.state import entry_state
from labellint.report.safe import clean

CROP_PX = 160  # longest side of a finding's enlarged crop
NEIGHBOUR_PX = 72  # longest side of a neighbour's crop
MAX_NEIGHBOURS = 10
MAX_BOXES_PER_IMAGE = 200  # the other boxes of an image, drawn faintly around the finding's box
MAX_TEXT = 2000  # characters of one message kept (a hostile file can hold megabytes in a name)
# JavaScript numbers are doubles: integers beyond 2**53 - 1 are not held exactly (an id would
# become another one), and coordinates beyond 1e15 draw nothing a reviewer can see
JS_INT = 2**53 - 1
MAX_COORD = 1e15


def report_id(findings) -> str:
    """Identifies the run's findings, so decisions made on one report are stored (and applied) as its."""
    h = hashlib.sha256("\n".join(f.fingerprint for f in findings).encode("utf-8"))
    return h.hexdigest()[:16]


@dataclass
class ImageRecord:
    """One image of one file, as the page draws it: size, thumbnail, other boxes, why there is no picture."""

    path: str
    row: int
    name: str
    width: float | None
    height: float | None
    boxes: list = field(default_factory=list)
    src: str | None = None
    why: str | None = None
    wanted: bool = False  # a pictured finding shows it: decode it
    crops: dict = field(default_factory=dict)  # crop key -> (annotation row, size)

    def to_json(self) -> dict:
        return {"name": self.name, "w": self.width, "h": self.height, "src": self.src, "why": self.why,
                "boxes": self.boxes}


def _num(value) -> float | None:
    """A number to draw: None when not finite, clipped to +-MAX_COORD."""
    v = _exact(value, math.inf)
    return None if v is None else min(max(v, -MAX_COORD), MAX_COORD)


def _exact(value, most: float = MAX_COORD) -> float | None:
    """A number to act on (a box "accept" sets): None when not finite or beyond ``most``."""
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return v if math.isfinite(v) and abs(v) <= most else None


def box(ds, row: int) -> list | None:
    """Annotation ``row``'s box to draw, rounded; None when a coordinate is not finite."""
    b = [_num(v) for v in ds.annotations.bbox[row]]
    return None if any(v is None for v in b) else [round(v, 2) for v in b]


def js_id(value) -> int | None:
    """An id the page can carry into a decision: None when missing or beyond JavaScript's exact
    integers (the card then offers no edit, instead of one about another id)."""
    value = int(value)
    return None if value == MISSING_ID or not -JS_INT <= value <= JS_INT else value


def _score(value) -> float | None:
    v = _exact(value, math.inf)
    return None if v is None else round(v, 3)


def _text(s) -> str:
    s = clean(s)
    return s if len(s) <= MAX_TEXT else s[:MAX_TEXT] + "…"


def _row(f, section: str, size: int) -> int | None:
    """The row of ``section`` the finding is about, when it is one the file has."""
    if f.section != section or f.row is None or not 0 <= f.row < size:
        return None
    return int(f.row)


def accept_action(f, ds, row: int) -> dict | None:
    """What "accept" does for a finding on annotation ``row``, when the finding says it in a
    machine-readable way: the rule's suggested class or box (``extra``), else its fix when that
    is a relabel, a new box (with ``area`` following it, as the clip fix does), a fresh id
    (LL010, LL014) or a deletion of this very annotation. None: the reviewer picks an action by
    hand (the page says which command applies a fix it cannot take)."""
    extra = f.extra or {}
    if extra.get("suggested_category_id") is not None:
        return _relabel(ds, extra["suggested_category_id"])
    if extra.get("suggested_bbox") is not None:
        return _set_bbox(extra["suggested_bbox"])
    fix = f.fix
    if fix is None or callable(fix.edits):
        # a fix computed only when fixing (an area from a mask, a clipped polygon, a merge) is
        # not one the page takes: computing every one here would cost the report its speed
        return None
    if not fix.edits or any(e.section != "annotations" or e.index != row for e in fix.edits):
        return None
    if len(fix.edits) == 1 and fix.edits[0].op == "delete":
        return {"action": "delete", "label": "delete the box"}
    fields = {e.field: e for e in fix.edits if e.op == "set"}
    if len(fields) != len(fix.edits):
        return None
    if set(fields) == {"category_id"}:
        return _relabel(ds, fields["category_id"].value)
    if set(fields) in ({"bbox"}, {"bbox", "area"}):
        return _set_bbox(fields["bbox"].value)
    if set(fields) == {"id"}:
        return _set_id(fields["id"].value)
    return None


def _set_id(value) -> dict | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= JS_INT:
        return None
    return {"action": "set_id", "new_id": value, "label": f"give it the id {value}"}


def _relabel(ds, category_id) -> dict | None:
    if isinstance(category_id, bool) or not isinstance(category_id, int) or not -JS_INT <= category_id <= JS_INT:
        return None
    crow = _category_row(ds, category_id)
    name = ds.category_name(crow) if crow is not None else f"#{category_id}"
    return {"action": "relabel", "category_id": category_id, "label": f"relabel → '{_text(name)}'"}


def _set_bbox(value) -> dict | None:
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        return None
    values = [_exact(v) for v in value]
    if any(v is None for v in values):
        return None
    values = [int(v) if v.is_integer() else v for v in values]
    return {"action": "set_bbox", "bbox": values, "label": "set box [" + ", ".join(f"{v:g}" for v in values) + "]"}


def _category_row(ds, category_id) -> int | None:
    try:
        wanted = int(category_id)
    except (TypeError, ValueError):
        return None
    rows = ds.shared("gallery.category_rows",
                     lambda: {cid: row for row, cid in reversed(list(enumerate(ds.categories.id.tolist())))})
    return rows.get(wanted)


def _why_no_image(ds, ann_row: int) -> tuple[str, int | None]:
    """Why an annotation has no image, in words, and the image it means when that is plain (its
    ``image_id`` is the string "5" and image 5 exists): the card draws the box there and says so."""
    ref = idvalues.references(ds, "image_id").get(ann_row)
    if ref is None:  # an integer image_id that no image has as its id
        ident = int(ds.annotations.image_id[ann_row])
        rows = idvalues.rows_meaning(ds, "images").get(ident)
        if rows:
            value = idvalues.issues_of(ds, "images", "id")[rows[0]].value
            return (_text(f"image_id {ident} matches no image: the image meant has {idvalues.shown(value)} as its id, "
                          f"not {idvalues.number(value)}; drawn on it"), rows[0])
        return _text(f"no image: image_id {ident} is not the id of any image"), None
    issue, ident, target = ref
    if issue.kind == "missing-key":
        return "no image: the annotation has no image_id", None
    if ident is None:
        return _text(f"no image: image_id is {idvalues.shown(issue.value)}, not an image id"), None
    written = f"image_id is {idvalues.shown(issue.value)}, not {idvalues.number(issue.value)}"
    if target is None:
        return _text(f"no image: {written}, and no image has the id {ident} either"), None
    how = "which it does not match as written" if isinstance(issue.value, str) else "which it stands for"
    return _text(f"{written}: drawn on image {ident}, {how}"), target


class Plan:
    """Turns findings into the page's data and lists the pictures to make, keyed for sharing.

    ``pictured``: how many findings, from the first, get pictures (the rest show their box on a
    blank canvas); ``crop_results`` holds each crop once drawn (None: not made)."""

    def __init__(self, result, root: Path | None, pictured: int):
        self.result = result
        self.root = root
        self.pictured = pictured
        self.images: dict[str, ImageRecord] = {}
        self._image_keys: dict[tuple[str, int], str] = {}
        self.crop_keys: dict[tuple[str, int, int], str] = {}
        self.crop_results: dict[str, dict | None] = {}

    def build(self) -> dict:
        result = self.result
        files = list(dict.fromkeys([f.path for f in result.files if f.status == "linted"]
                                   + [f.path for f in result.findings]))
        file_index = {p: i for i, p in enumerate(files)}
        findings = []
        for n, f in enumerate(result.findings):
            findings.append(self._finding(f, file_index[f.path], pictured=n < self.pictured))
        sev = result.by_severity()
        linted = [f for f in result.files if f.status == "linted"]
        return {
            "format": "labellint-gallery",
            "tool": {"name": "labellint", "version": __version__},
            "report": report_id(result.findings),
            "files": [self._file(p) for p in files],
            "summary": {
                "findings": len(result.findings),
                "by_severity": {k: sev.get(k, 0) for k in ("error", "warning", "info")},
                "annotations": sum(f.counts.get("annotations", 0) for f in linted),
                "images": sum(f.counts.get("images", 0) for f in linted),
                "hidden": result.hidden,
                "pictured": min(len(result.findings), self.pictured),
                "images_root": self.root is not None,
            },
            "errors": [_text(e) for e in result.errors],
            "notes": [_text(n) for n in result.notes]
                     + [f"rule {c} skipped: {r}" for c, r in sorted(result.skipped_rules.items())],
            "findings": findings,
        }

    def _file(self, path: str) -> dict:
        ds = self.result.datasets.get(path)
        outcome = next((f for f in self.result.files if f.path == path), None)
        classes = []
        if ds is not None:
            classes = [{"id": js_id(cid), "name": _text(ds.category_name(row))}
                       for row, cid in enumerate(ds.categories.id.tolist()) if js_id(cid) is not None]
        # "path" is the finding's path as is (decisions name the file by it); "label" is for display
        # "shell": whether the path may go into the page's command line (quoted there); one with
        # control characters would carry them into a terminal when pasted
        return {"path": path, "label": _text(path), "shell": clean(path) == path and len(path) <= MAX_TEXT,
                "classes": classes, "counts": outcome.counts if outcome else {}}

    def _finding(self, f, file_no: int, pictured: bool) -> dict:
        ds = self.result.datasets.get(f.path)
        out = {"code": f.code, "name": f.name, "sev": str(f.severity), "msg": _text(f.message),
               "sugg": None if f.suggestion is None else _text(f.suggestion), "file": file_no,
               "loc": _text(f.location()), "line": f.line, "col": f.column, "ptr": _text(f.pointer),
               "fp": f.fingerprint, "score": _score(f.score), "iid": f.image_id,
               "ann": None, "aid": None, "state": None, "cid": None, "cls": None, "box": None,  # the box, if any
               "img": None, "crop": None, "nb": [], "accept": None, "imgnote": None,
               "fix": None if f.fix is None else {"safety": f.fix.safety, "title": _text(f.fix.title)}}
        if ds is None:
            return out
        ann_row = _row(f, "annotations", len(ds.annotations))
        image_row = _row(f, "images", len(ds.images))
        cat_row = _row(f, "categories", len(ds.categories))
        if ann_row is not None:
            out["ann"] = ann_row
            out["aid"] = js_id(ds.annotations.id[ann_row])
            out["state"] = entry_state(ds, "annotations", ann_row)
            out["box"] = box(ds, ann_row)
            crow = int(ds.ann_category_row[ann_row])
            out["cls"] = _text(ds.category_name(crow)) if crow >= 0 else None
            out["cid"] = js_id(ds.annotations.category_id[ann_row])
            image_row = int(ds.ann_image_row[ann_row])
            image_row = image_row if image_row >= 0 else None
            if image_row is None:
                out["imgnote"], image_row = _why_no_image(ds, ann_row)
            out["accept"] = accept_action(f, ds, ann_row)
        elif cat_row is not None:
            out["cls"] = _text(ds.category_name(cat_row))
        if image_row is not None:
            out["img"] = self._image(f.path, ds, image_row, pictured)
            if ann_row is not None and out["box"] is not None:
                out["crop"] = self._crop(f.path, ds, image_row, ann_row, CROP_PX, pictured)
        for nb in ((f.extra or {}).get("neighbours") or [])[:MAX_NEIGHBOURS]:
            out["nb"].append(self._neighbour(f.path, ds, nb, pictured))
        suggested = (f.extra or {}).get("suggested_category_id")
        if suggested is not None:
            crow = _category_row(ds, suggested)
            out["suggested"] = _text(ds.category_name(crow)) if crow is not None else f"#{suggested}"
        return out

    def _neighbour(self, path, ds, nb: dict, pictured: bool) -> dict:
        try:
            row = int(nb.get("annotation"))
        except (TypeError, ValueError, AttributeError):
            return {"cls": None, "sim": None, "crop": None, "aid": None}
        sim = _num(nb.get("similarity"))
        if not 0 <= row < len(ds.annotations):
            return {"cls": None, "sim": sim, "crop": None, "aid": None}
        crow = int(ds.ann_category_row[row])
        image_row = int(ds.ann_image_row[row])
        crop = None
        if image_row >= 0 and box(ds, row) is not None:
            self._image(path, ds, image_row, pictured)
            crop = self._crop(path, ds, image_row, row, NEIGHBOUR_PX, pictured)
        return {"cls": _text(ds.category_name(crow)) if crow >= 0 else None, "sim": sim, "crop": crop,
                "aid": js_id(ds.annotations.id[row])}

    def _image(self, path: str, ds, row: int, pictured: bool) -> str:
        key = self._image_keys.get((path, row))
        if key is None:
            key = self._image_keys[(path, row)] = f"i{len(self._image_keys)}"
            name = ds.images.file_name[row]
            rec = ImageRecord(path, row, _text(name if isinstance(name, str) else repr(name)),
                              _num(ds.images.width[row]), _num(ds.images.height[row]))
            rec.boxes = self._boxes_of(ds, row)
            self.images[key] = rec
        rec = self.images[key]
        if pictured:
            rec.wanted = True
        return key

    def _boxes_of(self, ds, image_row: int) -> list:
        def group() -> dict[int, list[int]]:
            by_image: dict[int, list[int]] = {}
            for ann, img in enumerate(ds.ann_image_row.tolist()):
                if img >= 0:
                    by_image.setdefault(img, []).append(ann)
            return by_image

        out = []
        for ann in ds.shared("gallery.by_image", group).get(image_row, [])[:MAX_BOXES_PER_IMAGE]:
            b = box(ds, ann)
            if b is not None:
                out.append([ann, *b])
        return out

    def _crop(self, path: str, ds, image_row: int, ann_row: int, size: int, pictured: bool) -> str | None:
        if self.root is None:
            return None
        key = self.crop_keys.get((path, ann_row, size))
        if key is None:
            key = self.crop_keys[(path, ann_row, size)] = f"c{len(self.crop_keys)}"
        if pictured:
            self.images[self._image_keys[(path, image_row)]].crops[key] = (ann_row, size)
        return key

