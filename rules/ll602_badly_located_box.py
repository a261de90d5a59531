"""Labelled boxes that the model, finding the same class there, places somewhere else.

## What it does
With `--predictions PRED.json`, compares each labelled box with the predictions of its own class
that are more confident than `min_confidence` and are *its own*: a prediction belongs to the
label it overlaps most, so one drawn on a neighbour never accuses this box, and one that
overlaps it by less than `min_iou` is another object, not this one placed elsewhere. A label
whose own prediction, of any confidence, covers it at IoU 0.9 or more is where the model puts
it. The others are scored as ObjectLab scores badly located boxes: the best similarity among
those predictions (0.9 x IoU + 0.1 x closeness of the centres). It is an issue when that score
is at most `threshold_scale` times the AP of the predictions for the class (measured against
this file's labels), or when every one of those predictions overlaps the label by less than
`max_iou`: the model finds this very object (the prediction is the label's own, and confident)
but draws it shifted or resized by a third or more. ObjectLab's threshold alone, about 0.15 for
a good detector, lets through only boxes the model barely overlaps (IoU below about 0.1) and
misses most shifted boxes. The message gives the box the model proposes; the suggestion is the
(unchanged) class.

## Why it matters
A box shifted, cut short or stretched over two objects teaches the detector the wrong extent and
moves every IoU the benchmark computes: at the strict thresholds of COCO's AP (0.75 to 0.95) a
badly placed label turns correct detections into misses.

## Example
The examples need predictions; with these, the bad file is reported and the good one is not:
`[{"image_id": 1, "category_id": 1, "bbox": [2, 2, 12, 12], "score": 0.9},
{"image_id": 1, "category_id": 1, "bbox": [47, 24, 20, 20], "score": 0.8}]`
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 80, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 12, 12], "area": 144, "iscrowd": 0},
                 {"id": 2, "image_id": 1, "category_id": 1, "bbox": [30, 20, 20, 20], "area": 400, "iscrowd": 0}],
 "categories": [{"id": 1, "name": "can"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 80, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 12, 12], "area": 144, "iscrowd": 0},
                 {"id": 2, "image_id": 1, "category_id": 1, "bbox": [47, 24, 20, 20], "area": 400, "iscrowd": 0}],
 "categories": [{"id": 1, "name": "can"}]}
```

## Options
- `min_confidence` (float, default 0.5): predictions at most this confident are ignored
  (ObjectLab's low-probability threshold).
- `min_iou` (float, default 0.05): a prediction overlapping the label by less is another object,
  not this one placed elsewhere.
- `max_iou` (float, default 0.6): a label whose own confident predictions all overlap it by less
  is reported whatever its score (a box shifted by half its width along one side has IoU 0.33;
  resized x1.6 about its object, 0.39; a good detector's box on a well-drawn label is
  usually above 0.7). 0 turns this off: ObjectLab's score alone.
- `threshold_scale` (float, default 0.2): a box is reported when its score is at most this times
  its class's AP (ObjectLab: 0.25 x 0.8).
- `alpha` (float, default 0.9): weight of IoU against the distance of the centres in the similarity.

## Fix
Unsafe: look at the image and redraw the box, starting from the proposed one if it fits.
"""

from labellint.findings import Fix, Problem, set_field
from labellint.toolkit import objectlab

CODE = "LL602"
NAME = "badly-located-box"
SEVERITY = "warning"
OPTIONS = {"min_confidence": 0.5, "min_iou": 0.05, "max_iou": 0.6, "threshold_scale": 0.2, "alpha": 0.9}
OPTION_RANGES = {"min_confidence": (0, 1), "min_iou": (0, 1), "max_iou": (0, 1), "threshold_scale": (0, None),
                 "alpha": (0, 1)}
FIX = "unsafe"
REQUIRES = ("predictions",)


def check(ds, options, context):
    prepared = objectlab.model_scores(ds, options, context)
    scale = float(options["threshold_scale"])
    max_iou = float(options["max_iou"])
    for ann, pred, score, best_iou in objectlab.located(prepared, float(options["min_confidence"]), one_to_one=True,
                                                        min_iou=float(options["min_iou"])):
        cls = int(ds.ann_category_row[ann])
        if score > objectlab.threshold(prepared, cls, scale) and best_iou >= max_iou:
            continue
        name = ds.category_name(cls)
        iou = objectlab.box_iou(ds.annotations.bbox[ann], prepared.pred_box[pred])
        yield Problem(
            f"the model places this '{name}' at {objectlab.box_text(prepared.pred_box[pred])} (confidence "
            f"{prepared.pred_score[pred]:.2f}, IoU {iou:.2f} with the label {objectlab.box_text(ds.annotations.bbox[ann])};"
            f" score {score:.3g})",
            annotation=ann, score=1.0 - score, suggestion=name,
            extra={"suggested_bbox": [round(float(v), 2) for v in prepared.pred_box[pred]]},
            fix=Fix("move the box to the model's", (set_field("annotations", ann, "bbox",
                                                              [round(float(v), 2) for v in prepared.pred_box[pred]]),),
                    "unsafe"),
        )
