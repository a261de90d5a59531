"""COCO-style evaluation: the 12 standard numbers, in pycocotools order, plus per-class AP, AP50, AR@100.

Two backends compute the same protocol: hotcoco (Rust, the default, fast) and pycocotools (the
reference). They differ on one known point: pycocotools takes annotation id 0 for "no match",
so a ground-truth box with id 0 is never matched and its detection counts as a false positive.
hotcoco matches it. The report says so whenever the ground truth holds an id 0.

hotcoco reads a file with typed fields and refuses what pycocotools never looks at: a Roboflow
export's ``"year": "2020"``, a license id written as a string, an int ``supercategory``. When it
refuses a file, the file is read again keeping only what evaluation reads (``_evaluated_fields``)
and given to hotcoco as a dict; if hotcoco still refuses it (a fractional or negative annotation
id, say), ``evaluate`` falls back to pycocotools, the reference, and says so in its warnings.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from labellint.errors import InputError, LabellintError
from labellint.gate import predictions as predictions_mod
from labellint.gate.predictions import GroundTruthIndex, Predictions

BACKENDS = ("hotcoco", "pycocotools")
IOU_TYPES = ("bbox", "segm")
STAT_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
STAT_LABELS = (
    "AP @[IoU=0.50:0.95 | area=all | maxDets=100]",
    "AP @[IoU=0.50 | area=all | maxDets=100]",
    "AP @[IoU=0.75 | area=all | maxDets=100]",
    "AP @[IoU=0.50:0.95 | area=small | maxDets=100]",
    "AP @[IoU=0.50:0.95 | area=medium | maxDets=100]",
    "AP @[IoU=0.50:0.95 | area=large | maxDets=100]",
    "AR @[IoU=0.50:0.95 | area=all | maxDets=1]",
    "AR @[IoU=0.50:0.95 | area=all | maxDets=10]",
    "AR @[IoU=0.50:0.95 | area=all | maxDets=100]",
    "AR @[IoU=0.50:0.95 | area=small | maxDets=100]",
    "AR @[IoU=0.50:0.95 | area=medium | maxDets=100]",
    "AR @[IoU=0.50:0.95 | area=large | maxDets=100]",
)
ID0_WARNING = ("the ground truth has an annotation with id 0: pycocotools treats id 0 as 'unmatched', so that "
               "box can never be matched there (its detection counts as a false positive) while hotcoco matches "
               "it; the two backends' numbers differ on this file. Renumber annotation ids from 1 to avoid it")


def _hotcoco():
    try:
        import hotcoco
    except ImportError:
        raise LabellintError("the hotcoco backend is not installed: pip install 'labellint-coco[eval]' "
                             "(or use --backend pycocotools)") from None
    return hotcoco


@contextlib.contextmanager
def _quiet():
    """Both libraries print progress and the summary table to stdout: keep our output ours."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


@dataclass
class GroundTruth:
    """A ground-truth file loaded for one backend, and what checks need to know about it."""

    path: str
    backend: str
    coco: object  # hotcoco.COCO or pycocotools.coco.COCO
    index: GroundTruthIndex
    category_names: dict  # id -> name
    gt_counts: dict  # category id -> number of non-crowd boxes
    has_id_zero: bool
    sha256: str = ""
    notes: list = field(default_factory=list)  # how the file was read, when not as asked


def _read_json(path: Path) -> dict:
    doc = predictions_mod.read_json(path, missing="ground-truth file not found")
    if not isinstance(doc, dict) or "images" not in doc or "annotations" not in doc:
        raise InputError("not a COCO ground-truth file (needs 'images', 'annotations' and 'categories')", str(path))
    return doc


_IMAGE_FIELDS = ("id", "width", "height", "file_name")
_CATEGORY_FIELDS = ("id", "name", "supercategory")
_ANNOTATION_FIELDS = ("id", "image_id", "category_id", "bbox", "area", "iscrowd", "segmentation")


def _number(v):
    """A width or height as a finite number, or None: a numeric string is its number (a whole one an int)."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            return None
        if math.isfinite(v) and v.is_integer():
            return int(v)
    if isinstance(v, float) and math.isfinite(v):
        return v
    return None


def _evaluated_fields(doc: dict) -> dict:
    """The document with only what a bbox or segm evaluation reads, each in the type hotcoco takes.

    Dropped: ``info``, ``licenses`` and every other top-level key, an image's license, dates and
    URLs, keypoint fields and any extra key of an entry. Kept as given (hotcoco judges them): ids,
    boxes, areas, segmentations. A null ``iscrowd`` is left out, as a missing one is (not a crowd);
    a category's ``name`` becomes a string. Entries that are not objects are kept, for hotcoco to
    refuse."""

    def section(key, fields, fix=None):
        value = doc.get(key)
        if not isinstance(value, list):
            return value
        out = []
        for entry in value:
            if isinstance(entry, dict):
                entry = {k: entry[k] for k in fields if k in entry}
                if fix is not None:
                    fix(entry)
            out.append(entry)
        return out

    def image(e):
        for k in ("width", "height"):
            if k in e and _number(e[k]) is None:
                del e[k]
            elif k in e:
                e[k] = _number(e[k])
        if not isinstance(e.get("file_name", ""), str):
            del e["file_name"]

    def category(e):
        if "name" in e and not isinstance(e["name"], str):
            e["name"] = str(e["name"])
        if "supercategory" in e and not isinstance(e["supercategory"], str):
            del e["supercategory"]

    def annotation(e):
        if "iscrowd" in e and e["iscrowd"] is None:
            del e["iscrowd"]

    out = {"images": section("images", _IMAGE_FIELDS, image),
           "annotations": section("annotations", _ANNOTATION_FIELDS, annotation)}
    if "categories" in doc:
        out["categories"] = section("categories", _CATEGORY_FIELDS, category)
    return out


def _printable(reason) -> str:
    """A library's reason, short and printable: it can quote a value of the file."""
    from labellint.report.safe import clean

    reason = clean(str(reason))
    return reason if len(reason) <= 200 else reason[:199] + "…"


def _refused(exc: BaseException) -> bool:
    """Whether a backend refused the input: any error, a Rust panic included (pyo3 raises it as a
    BaseException), but not an interrupt."""
    return not isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit))


def load_ground_truth(path: str | Path, backend: str = "hotcoco", fallback: bool = False) -> GroundTruth:
    """The ground truth, read by ``backend``. hotcoco gets the file's evaluated fields when it refuses
    the file as it is; with ``fallback``, what it still refuses is read by pycocotools (see ``notes``)."""
    path = Path(path)
    if backend not in BACKENDS:
        raise LabellintError(f"unknown backend {backend!r} (use {' or '.join(BACKENDS)})")
    if backend == "pycocotools":
        return _load_pycocotools(path, _read_json(path))
    hotcoco = _hotcoco()
    if not path.is_file():
        _read_json(path)  # raises the one-line error
    try:
        coco = hotcoco.COCO(str(path))
    except BaseException as first:  # hotcoco raises ValueError/RuntimeError with a message
        if not _refused(first):
            raise
        doc = _read_json(path)  # a file that is not JSON gets the line and column here
        try:
            with _quiet():
                coco = hotcoco.COCO(_evaluated_fields(doc))
        except BaseException as exc:
            if not _refused(exc):
                raise
            if not fallback:
                raise InputError(f"cannot load as COCO ground truth: {_printable(exc)}", str(path)) from None
            gt = _load_pycocotools(path, doc)
            gt.notes.append(f"hotcoco cannot read this ground truth ({_printable(exc)}): evaluated with pycocotools, "
                            "the reference implementation")
            return gt
        del doc
    try:
        img_ids = np.asarray(coco.get_img_ids(), np.int64)
        imgs = coco.load_imgs(img_ids.tolist()) if len(img_ids) else []
        cat_ids = sorted(coco.get_cat_ids())
        cats = coco.load_cats(cat_ids) if cat_ids else []
        ann_ids = coco.get_ann_ids()
        counts = {c: len(coco.get_ann_ids(cat_ids=[c], iscrowd=False)) for c in cat_ids}
    except Exception as exc:
        raise InputError(f"cannot index as COCO ground truth: {_printable(exc)}", str(path)) from None
    return _ground_truth(path, "hotcoco", coco, img_ids, imgs, cat_ids, cats, counts, ann_ids)


def _load_pycocotools(path: Path, doc: dict) -> GroundTruth:
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = doc
    try:
        with _quiet():
            coco.createIndex()
    except Exception as exc:
        raise InputError(f"cannot index as COCO ground truth: {type(exc).__name__}: {_printable(exc)}",
                         str(path)) from None
    try:
        # pycocotools indexes ids of any hashable type; predictions carry integers
        by_id = sorted(((_integer_id(i, "image"), im) for i, im in coco.imgs.items()), key=lambda t: t[0])
        img_ids = np.asarray([i for i, _ in by_id], np.int64)
        imgs = [im for _, im in by_id]
        cats = sorted(coco.cats.values(), key=lambda c: _integer_id(c["id"], "category"))
        cat_ids = [_integer_id(c["id"], "category") for c in cats]
        ann_ids = [a["id"] for a in doc["annotations"]]  # createIndex has read each one
        counts = {c: 0 for c in cat_ids}
        for a in doc["annotations"]:
            cid = a.get("category_id")
            if not a.get("iscrowd", 0) and _is_id(cid) and int(cid) in counts:
                counts[int(cid)] += 1
    except InputError as exc:
        raise InputError(exc.message, str(path)) from None
    except Exception as exc:
        raise InputError(f"cannot index as COCO ground truth: {type(exc).__name__}: {_printable(exc)}",
                         str(path)) from None
    return _ground_truth(path, "pycocotools", coco, img_ids, imgs, cat_ids, cats, counts, ann_ids)


def _is_id(v) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())


def _integer_id(v, what: str) -> int:
    if not _is_id(v) or not -(2 ** 63) <= v < 2 ** 63:
        raise InputError(f"{what} id {_printable(repr(v)[:60])} is not a 64-bit integer, so no prediction can "
                         "refer to it")
    return int(v)


def _shared_id(ann_ids: list):
    """An annotation id that two annotations carry, or None."""
    seen = set()
    for a in ann_ids:
        if a in seen:
            return a
        seen.add(a)
    return None


def _ground_truth(path, backend, coco, img_ids, imgs, cat_ids, cats, counts, ann_ids) -> GroundTruth:
    # both libraries look a ground-truth box up by its id while matching: of two boxes with one id,
    # one is counted twice and the other never, and the numbers come out wrong without a word
    shared = _shared_id(ann_ids)
    if shared is not None:
        missing = " (or have none: hotcoco reads a missing id as 0)" if shared == 0 and backend == "hotcoco" else ""
        raise InputError(f"two annotations have the id {_printable(repr(shared)[:60])}{missing}: COCO evaluation "
                         "looks boxes up by id, so its numbers would be wrong; give each annotation its own id",
                         str(path))
    order = np.argsort(img_ids, kind="stable")
    widths = np.array([_float_or_nan(im.get("width")) for im in imgs], np.float64)
    heights = np.array([_float_or_nan(im.get("height")) for im in imgs], np.float64)
    index = GroundTruthIndex(str(path), img_ids[order], widths[order] if len(imgs) else widths,
                             heights[order] if len(imgs) else heights, np.asarray(cat_ids, np.int64))
    names = {int(c["id"]): str(c.get("name", c["id"])) for c in cats}
    has_id_zero = any(a == 0 and not isinstance(a, bool) for a in ann_ids)
    return GroundTruth(str(path), backend, coco, index, names, counts, has_id_zero)


def _float_or_nan(v) -> float:
    """An image's width or height for the predictions' checks: nan when missing or not a number."""
    v = _number(v)
    return float(v) if v else np.nan


@dataclass
class Evaluation:
    backend: str
    iou_type: str
    gt_path: str
    pred_path: str
    stats: list  # the 12 numbers, pycocotools order
    per_class: list  # [{"id", "name", "AP", "AP50", "AR100", "gt", "detections"}]
    n_images: int
    n_detections: int
    seconds: float
    warnings: list = field(default_factory=list)

    def stat(self, key: str) -> float:
        return self.stats[STAT_KEYS.index(key)]

    def to_dict(self) -> dict:
        return {
            "backend": self.backend, "iou_type": self.iou_type, "ground_truth": self.gt_path,
            "predictions": self.pred_path, "images": self.n_images, "detections": self.n_detections,
            "stats": [float(s) for s in self.stats],
            "stats_named": {k: float(s) for k, s in zip(STAT_KEYS, self.stats)},
            "per_class": self.per_class, "warnings": self.warnings, "seconds": round(self.seconds, 4),
        }


def _per_class(precision: np.ndarray, recall: np.ndarray, iou_thrs, cat_ids, names, gt_counts, det_counts):
    """AP, AP50 and AR@100 for each category, as pycocotools summarize() computes the overall ones."""
    t50 = np.flatnonzero(np.isclose(np.asarray(iou_thrs, np.float64), 0.5))
    out = []
    for k, cid in enumerate(cat_ids):
        p = precision[:, :, k, 0, -1]  # area=all, the largest maxDets (100)
        r = recall[:, k, 0, -1]
        ap = float(np.mean(p[p > -1])) if (p > -1).any() else -1.0
        p50 = p[t50] if len(t50) else np.empty(0)
        ap50 = float(np.mean(p50[p50 > -1])) if (p50 > -1).any() else -1.0
        ar = float(np.mean(r[r > -1])) if (r > -1).any() else -1.0
        out.append({"id": int(cid), "name": names.get(int(cid), str(cid)), "AP": ap, "AP50": ap50, "AR100": ar,
                    "gt": int(gt_counts.get(int(cid), 0)), "detections": int(det_counts.get(int(cid), 0))})
    return out


def _detections_per_class(category_id: np.ndarray) -> dict:
    """category id -> number of detections (a bincount over the id range: no sort of every id)."""
    if not len(category_id):
        return {}
    lo, hi = int(category_id.min()), int(category_id.max())
    if hi - lo > 4 * len(category_id) + 65536:  # sparse ids: sort them
        ids, counts = np.unique(category_id, return_counts=True)
    else:
        counts = np.bincount(category_id - lo, minlength=hi - lo + 1)
        ids = np.flatnonzero(counts)
        counts, ids = counts[ids], ids + lo
    return dict(zip(ids.tolist(), counts.tolist()))


def _load_predictions(pred) -> Predictions:
    if isinstance(pred, Predictions):
        return pred
    return predictions_mod.load(pred)


def make_eval(gt: GroundTruth, pred: Predictions, iou_type: str):
    """An evaluated (``evaluate()`` called) backend COCOeval for these predictions."""
    if gt.backend == "hotcoco":
        hotcoco = _hotcoco()
        with _quiet():
            if iou_type == "segm":
                dt = gt.coco.load_res(pred.as_dicts(with_bbox=True, with_segmentation=True)) if len(pred) else \
                    gt.coco.load_res([])
            else:
                dt = gt.coco.load_res(pred.as_array()) if len(pred) else gt.coco.load_res([])
            ev = hotcoco.COCOeval(gt.coco, dt, iou_type)
        return ev
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with _quiet():
        if len(pred):
            dt = gt.coco.loadRes(pred.as_dicts(with_bbox=iou_type == "bbox" or pred.has_boxes,
                                               with_segmentation=iou_type == "segm"))
        else:  # pycocotools' loadRes cannot take an empty list
            dt = COCO()
            dt.dataset = {"images": list(gt.coco.dataset["images"]), "categories": list(gt.coco.dataset["categories"]),
                          "annotations": []}
            dt.createIndex()
        ev = COCOeval(gt.coco, dt, iou_type)
    return ev


def evaluate(gt: str | Path | GroundTruth, pred, iou_type: str = "bbox", backend: str = "hotcoco") -> Evaluation:
    """Evaluate predictions (a path or :class:`Predictions`) against a ground truth."""
    if iou_type not in IOU_TYPES:
        raise LabellintError(f"unknown iou type {iou_type!r} (use {' or '.join(IOU_TYPES)})")
    start = time.perf_counter()
    loading = None
    if not isinstance(pred, Predictions) and not isinstance(gt, GroundTruth):
        # a large file's first part is decoded in a forked child while the ground truth loads here
        # (so the child takes a larger part); errors still come in order: ground truth first
        loading = predictions_mod.Loading(pred, share=0.56)
    try:
        if not isinstance(gt, GroundTruth):
            gt = load_ground_truth(gt, backend, fallback=True)
        pred = loading.result() if loading is not None else _load_predictions(pred)
    finally:
        if loading is not None:
            loading.cancel()
    predictions_mod.check_against(pred, gt.index, iou_type)
    ev = make_eval(gt, pred, iou_type)
    try:
        with _quiet():
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
    except LabellintError:
        raise
    except Exception as exc:
        why = f" ({gt.notes[0]})" if gt.notes else ""
        raise LabellintError(f"{gt.backend} could not evaluate {pred.path} on {gt.path}: "
                             f"{type(exc).__name__}: {_printable(exc)}{why}") from None
    stats = [float(s) for s in ev.stats]
    if gt.backend == "hotcoco":
        cat_ids, iou_thrs = list(ev.params.cat_ids), list(ev.params.iou_thrs)
    else:
        cat_ids, iou_thrs = list(ev.params.catIds), list(ev.params.iouThrs)
    e = ev.eval
    per_class = _per_class(np.asarray(e["precision"]), np.asarray(e["recall"]), iou_thrs, cat_ids,
                           gt.category_names, gt.gt_counts, _detections_per_class(pred.category_id))
    warnings = list(gt.notes) + ([ID0_WARNING] if gt.has_id_zero else [])
    return Evaluation(gt.backend, iou_type, gt.path, pred.path, stats, per_class, len(gt.index.image_ids), len(pred),
                      time.perf_counter() - start, warnings)


# -- rendering --------------------------------------------------------------------------------------
def _fmt(v: float) -> str:
    return "  n/a" if v < 0 else f"{v:.3f}"


def render_text(result: Evaluation, console) -> None:
    from rich.table import Table

    from labellint.report.safe import clean, text

    # class names and file names come from the files: shown as text, control characters escaped
    console.print(text(f"{result.iou_type} evaluation of {clean(result.pred_path)} on {clean(result.gt_path)} "
                      f"({result.n_images} images, {result.n_detections} detections, {result.backend}, "
                      f"{result.seconds:.2f}s)", style="bold"))
    table = Table(show_edge=False, header_style="bold")
    table.add_column("metric")
    table.add_column("", style="dim")
    table.add_column("value", justify="right")
    for key, label, value in zip(STAT_KEYS, STAT_LABELS, result.stats):
        table.add_row(key, label, _fmt(value))
    console.print(table)
    if result.per_class:
        per = Table(show_edge=False, header_style="bold", title="per class (area=all, maxDets=100)")
        for col, justify in (("id", "right"), ("class", "left"), ("AP", "right"), ("AP50", "right"),
                             ("AR@100", "right"), ("boxes", "right"), ("detections", "right")):
            per.add_column(col, justify=justify)
        for c in result.per_class:
            per.add_row(str(c["id"]), text(c["name"]), _fmt(c["AP"]), _fmt(c["AP50"]), _fmt(c["AR100"]),
                        str(c["gt"]), str(c["detections"]))
        console.print(per)
    for w in result.warnings:
        console.print(text(f"warning: {w}", style="yellow"))


def render_json(result: Evaluation) -> str:
    return json.dumps(result.to_dict(), indent=2) + "\n"
