"""Objects the model finds with high confidence where no box is labelled.

## What it does
With `--predictions PRED.json` (a detector's COCO results on this file's images), reports
predictions of confidence at least `min_confidence` where no box is labelled:

- a prediction that overlaps no labelled box of any class, scored as ObjectLab scores overlooked
  objects: its similarity to the nearest label of its class in the image (0.9 x IoU + 0.1 x
  closeness of the centres), or, when the image has no label of that class, the smallest
  similarity in the dataset times (1 - confidence). It is an issue when that score is at most
  `threshold_scale` times the AP of the predictions for the class (measured against this file's
  labels), so classes the model knows well are trusted more;
- a prediction that touches labelled neighbours but that no label explains: none overlaps it at
  IoU `max_iou` or more (a label there is this object, of the right class or not: LL603's), and
  it is not the closest same-class prediction of a label that the model finds nowhere better
  (that label is this object drawn in the wrong place: LL602's). Objects packed together (chess
  pieces, shelves, crowds) are missed this way, which ObjectLab's score never considers.

The suggestion is the predicted class; the message gives the predicted box, and the fix adds it.

## Why it matters
An object left unlabelled teaches the detector that it is background: the model is punished for
finding it, and on a benchmark split every correct detection of it counts as a false positive,
so the benchmark understates the model it is meant to measure.

## Example
The examples need predictions; with these, the bad file is reported and the good one is not:
`[{"image_id": 1, "category_id": 1, "bbox": [2, 2, 12, 12], "score": 0.9},
{"image_id": 1, "category_id": 1, "bbox": [40, 8, 16, 16], "score": 0.99}]`
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 12, 12], "area": 144, "iscrowd": 0}],
 "categories": [{"id": 1, "name": "can"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 12, 12], "area": 144, "iscrowd": 0},
                 {"id": 2, "image_id": 1, "category_id": 1, "bbox": [40, 8, 16, 16], "area": 256, "iscrowd": 0}],
 "categories": [{"id": 1, "name": "can"}]}
```

## Options
- `min_confidence` (float, default 0.95): only predictions at least this confident are considered
  (ObjectLab's high-probability threshold).
- `calibrate` (bool, default true): per class, lower that bar to the median confidence the model
  gives the labels of the class it agrees with (a prediction of the class at IoU 0.5 or more, one
  to one), when lower: a model that is right at 0.8 is trusted at 0.8, while a detector that gives
  true boxes 0.96-1.0 keeps 0.95. A class with fewer than 5 such labels keeps `min_confidence`.
- `threshold_scale` (float, default 0.2): a prediction is reported when its score is at most this
  times its class's AP (ObjectLab: 0.25 x 0.8).
- `alpha` (float, default 0.9): weight of IoU against the distance of the centres in the similarity.
- `max_iou` (float, default 0.4): a label overlapping a prediction at least this much explains
  it; 0 reports only predictions that touch no label (ObjectLab alone).

## Fix
Unsafe: add the predicted box with the suggested class (the next unused id, `iscrowd` 0, `area`
the box's); none for a predicted box of absurd size (a coordinate or the area beyond 1e12). Look at the image first: predictions can be wrong, and out-of-sample predictions
(`labellint train --folds K`) find more real issues.
"""

from labellint.findings import Fix, Problem, append
from labellint.toolkit import objectlab, values

CODE = "LL601"
NAME = "overlooked-object"
SEVERITY = "warning"
OPTIONS = {"min_confidence": 0.95, "calibrate": True, "threshold_scale": 0.2, "alpha": 0.9, "max_iou": 0.4}
OPTION_RANGES = {"min_confidence": (0, 1), "threshold_scale": (0, None), "alpha": (0, 1), "max_iou": (0, 1)}
FIX = "unsafe"
REQUIRES = ("predictions",)


def check(ds, options, context):
    prepared = objectlab.model_scores(ds, options, context)
    scale = float(options["threshold_scale"])
    min_confidence = objectlab.confidence_bars(prepared, float(options["min_confidence"]),
                                               bool(options["calibrate"]), len(ds.categories))
    for image_row, pred, score in objectlab.overlooked(prepared, min_confidence):
        cls = int(prepared.pred_cls[pred])
        if score <= objectlab.threshold(prepared, cls, scale):
            yield _problem(ds, prepared, image_row, pred, f"score {score:.3g}", 1.0 - score)
    if float(options["max_iou"]) > 0:
        for image_row, pred in objectlab.unexplained(prepared, min_confidence, float(options["max_iou"])):
            confidence = float(prepared.pred_score[pred])
            yield _problem(ds, prepared, image_row, pred, "beside labelled neighbours, none of them this object",
                           confidence)


def _problem(ds, prepared, image_row, pred, why, score):
    cls = int(prepared.pred_cls[pred])
    name = ds.category_name(cls)
    x, y, w, h = (float(v) for v in prepared.pred_box[pred])
    fix = None
    if all(abs(v) < 1e12 for v in (x, y, w, h, x + w, y + h, w * h)):  # a box a file can hold, as written
        box = [values.plain_number(v) for v in (x, y, w, h)]
        fields = {"image_id": int(ds.images.id[image_row]), "category_id": int(ds.categories.id[cls]), "bbox": box,
                  "area": values.plain_number(box[2] * box[3]), "iscrowd": 0}
        fix = Fix(f"add the '{name}' box the model finds", (append("annotations", fields),), "unsafe")
    return Problem(
        f"the model finds a '{name}' at {objectlab.box_text(prepared.pred_box[pred])} (confidence "
        f"{prepared.pred_score[pred]:.2f}) where no box is labelled ({why})",
        image=image_row, score=score, suggestion=name,
        key=f"{name}@{','.join(f'{v:.0f}' for v in prepared.pred_box[pred])}",
        fix=fix,
    )
