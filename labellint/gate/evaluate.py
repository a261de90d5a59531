"""COCO-style evaluation: the 12 standard numbers, in pycocotools order, plus per-class AP, AP50, AR@100.

Two backends compute the same protocol: hotcoco (Rust, the default, fast) and pycocotools (the
reference). They differ on one known point: pycocotools takes annotation id 0 for "no match",
so a ground-truth box with id 0 is never matched and its detection counts as a false positive.
hotcoco matches it. The report says so whenever the ground truth holds an id 0.

The ground truth is read by labellint.gate.groundtruth (where hotcoco gets only the evaluated
fields of a file it refuses, or pycocotools reads it), the backends are in
labellint.gate.backends.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from labellint.errors import LabellintError
from labellint.gate import predictions as predictions_mod
from labellint.gate.backends import BACKENDS, _hotcoco, _printable, _quiet
from labellint.gate.groundtruth import GroundTruth, load_ground_truth
from labellint.gate.predictions import Predictions

# the backends and the ground truth, under the names callers and tests reach them by
__all__ = ["BACKENDS", "IOU_TYPES", "STAT_KEYS", "STAT_LABELS", "ID0_WARNING", "Evaluation", "GroundTruth",
           "evaluate", "load_ground_truth", "make_eval", "render_json", "render_text", "_hotcoco", "_quiet"]

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
