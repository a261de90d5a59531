"""Labelled boxes that the model confidently gives another class.

## What it does
With `--predictions PRED.json`, looks at the predictions of *other* classes than each label's
that are more confident than `min_confidence` and are its own (a prediction belongs to the label
it overlaps most: one drawn on a neighbour speaks for the neighbour, not for this box), and
scores the label as ObjectLab scores swapped classes: one minus the best similarity to them
(0.9 x IoU + 0.1 x closeness of the centres);
a label lying on another label of another class (IoU 0.95 or more) gets the lowest score. It is
an issue when that score is at most `threshold_scale` times the AP of the predictions for the
labelled class (measured against this file's labels), or when the label's own confident
prediction of another class overlaps it at IoU `min_iou` or more while no confident prediction of
the labelled class does (the model sees the other class here, and not this one: ObjectLab's
threshold alone lets through only near-perfect boxes of a weak model). The suggestion is the
predicted class.

## Why it matters
A box with the wrong class is a negative example for the right class and a positive one for the
wrong class at once: it hurts the AP of both. Swaps concentrate between classes that look alike
(two kinds of bottle, can and carton), exactly where a model most needs clean examples.

## Example
The examples need predictions; with these, the bad file is reported and the good one is not:
`[{"image_id": 1, "category_id": 1, "bbox": [40, 10, 12, 12], "score": 0.9},
{"image_id": 1, "category_id": 2, "bbox": [10, 10, 20, 20], "score": 0.99}]`
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [40, 10, 12, 12], "area": 144, "iscrowd": 0},
                 {"id": 2, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0}],
 "categories": [{"id": 1, "name": "can"}, {"id": 2, "name": "bottle"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [40, 10, 12, 12], "area": 144, "iscrowd": 0},
                 {"id": 2, "image_id": 1, "category_id": 2, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0}],
 "categories": [{"id": 1, "name": "can"}, {"id": 2, "name": "bottle"}]}
```

## Options
- `min_confidence` (float, default 0.95): only predictions more confident than this can suggest
  another class (ObjectLab's high-probability threshold).
- `calibrate` (bool, default true): per class, lower that bar to the median confidence the model
  gives the labels of the class it agrees with, when lower (as LL601's option).
- `min_iou` (float, default 0.5): a confident prediction of another class that the label owns and
  overlaps at least this much, with none of the labelled class there, reports it whatever its
  ObjectLab score.
- `threshold_scale` (float, default 0.2): a label is reported when its score is at most this times
  its class's AP (ObjectLab: 0.25 x 0.8).
- `alpha` (float, default 0.9): weight of IoU against the distance of the centres in the similarity.
- `overlapping_label_check` (bool, default true): two labels of different classes on one box
  (IoU 0.95 or more) are reported with the lowest score.

## Fix
Unsafe: look at the image and relabel the box with the suggested class if the model is right.
"""

from labellint.findings import Fix, Problem, set_field
from labellint.toolkit import objectlab

CODE = "LL603"
NAME = "swapped-class"
SEVERITY = "warning"
OPTIONS = {"min_confidence": 0.95, "calibrate": True, "min_iou": 0.5, "threshold_scale": 0.2, "alpha": 0.9,
           "overlapping_label_check": True}
OPTION_RANGES = {"min_confidence": (0, 1), "min_iou": (0, 1), "threshold_scale": (0, None), "alpha": (0, 1)}
FIX = "unsafe"
REQUIRES = ("predictions",)


def check(ds, options, context):
    prepared = objectlab.model_scores(ds, options, context)
    scale = float(options["threshold_scale"])
    bars = objectlab.confidence_bars(prepared, float(options["min_confidence"]), bool(options["calibrate"]),
                                     len(ds.categories))
    reported = set()
    for ann, pred, score in objectlab.swapped(prepared, bars,
                                              bool(options["overlapping_label_check"]), one_to_one=True):
        cls = int(ds.ann_category_row[ann])
        if score > objectlab.threshold(prepared, cls, scale):
            continue
        reported.add(ann)
        if pred < 0:
            yield Problem(f"labelled '{ds.category_name(cls)}' on a box that also carries a label of another class "
                          f"(score {score:.3g})", annotation=ann, score=1.0 - score)
            continue
        yield _swap(ds, prepared, ann, pred, f"score {score:.3g}", 1.0 - score)
    for ann, pred in objectlab.disputed(prepared, bars, float(options["min_iou"])):
        if ann not in reported:
            yield _swap(ds, prepared, ann, pred, "no confident prediction of the labelled class",
                        float(prepared.pred_score[pred]))


def _swap(ds, prepared, ann: int, pred: int, why: str, confidence: float) -> Problem:
    name = ds.category_name(int(ds.ann_category_row[ann]))
    other_row = int(prepared.pred_cls[pred])
    other, other_id = ds.category_name(other_row), int(ds.categories.id[other_row])
    return Problem(
        f"labelled '{name}' but the model sees a '{other}' here (confidence {prepared.pred_score[pred]:.2f}, "
        f"box {objectlab.box_text(prepared.pred_box[pred])}; {why})",
        annotation=ann, score=confidence, suggestion=other, extra={"suggested_category_id": other_id},
        fix=Fix(f"relabel to '{other}'", (set_field("annotations", ann, "category_id", other_id),), "unsafe"),
    )
