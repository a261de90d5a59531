"""Objects the model finds with high confidence where no box is labelled.

## What it does
With `--predictions PRED.json` (a detector's COCO results on this file's images), reports each
prediction of confidence at least `min_confidence` that overlaps no labelled box of any class,
scored as ObjectLab scores overlooked objects: the prediction's similarity to the nearest label
of its class in the image (0.9 x IoU + 0.1 x closeness of the centres), or, when the image has
no label of that class, the smallest similarity in the dataset times (1 - confidence). It is an
issue when that score is at most `threshold_scale` times the AP of the predictions for the
class (measured against this file's labels), so classes the model knows well are trusted more.
The suggestion is the predicted class; the message gives the predicted box.

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
- `threshold_scale` (float, default 0.2): a prediction is reported when its score is at most this
  times its class's AP (ObjectLab: 0.25 x 0.8).
- `alpha` (float, default 0.9): weight of IoU against the distance of the centres in the similarity.

## Fix
None automatically: look at the image and add the box (with the suggested class) if the model
is right; predictions can be wrong, and out-of-sample predictions (cross-validation) find more
real issues.
"""

from labellint.findings import Problem
from labellint.toolkit import objectlab

CODE = "LL601"
NAME = "overlooked-object"
SEVERITY = "warning"
OPTIONS = {"min_confidence": 0.95, "threshold_scale": 0.2, "alpha": 0.9}
OPTION_RANGES = {"min_confidence": (0, 1), "threshold_scale": (0, None), "alpha": (0, 1)}
FIX = "none"
REQUIRES = ("predictions",)


def check(ds, options, context):
    prepared = objectlab.model_scores(ds, options, context)
    scale = float(options["threshold_scale"])
    for image_row, pred, score in objectlab.overlooked(prepared, float(options["min_confidence"])):
        cls = int(prepared.pred_cls[pred])
        if score > objectlab.threshold(prepared, cls, scale):
            continue
        name = ds.category_name(cls)
        box = objectlab.box_text(prepared.pred_box[pred])
        yield Problem(
            f"the model finds a '{name}' at {box} (confidence {prepared.pred_score[pred]:.2f}) where no box is "
            f"labelled (score {score:.3g})",
            image=image_row, score=1.0 - score, suggestion=name,
            key=f"{name}@{','.join(f'{v:.0f}' for v in prepared.pred_box[pred])}",
        )
