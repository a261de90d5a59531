"""Labelled boxes where the model finds nothing at all, of any class.

## What it does
With `--predictions PRED.json`, reports each labelled box (crowd regions aside) that no
prediction of *any* class supports: none with confidence at least `min_confidence` overlaps it
at IoU `min_iou` or more (FiftyOne's `possible_spurious`). The class does not matter here: a
prediction of another class on the box says that something is there (a swapped class is LL603's
business), and one that overlaps it a little says that the box may be misplaced (LL602's). An
image on which the model makes no prediction of that confidence is left alone: the model is
silent there, not disagreeing. The score is how far the model can be trusted on the image: the
mean confidence of its predictions that support the image's other labels, or half the mean
confidence of its confident predictions when they support no label at all (the model disagrees
with the whole image, which points as much at the predictions as at the labels). Confident
detectors rank first. The suggestion is to delete the box.

## Why it matters
A box on background (a stray click, a box left behind when an object was relabelled elsewhere,
an annotation copied onto the wrong image) teaches the detector to fire on nothing, and on a
benchmark split it is an object no correct model can find: every such box is a false negative
charged to the model.

## Example
The examples need predictions; with these, the bad file is reported and the good one is not:
`[{"image_id": 1, "category_id": 1, "bbox": [2, 2, 12, 12], "score": 0.9}]`
(The examples use `min_class_recall = 0`: in a file of two labels no class can show the model's
recall.)
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 12, 12], "area": 144, "iscrowd": 0},
                 {"id": 2, "image_id": 1, "category_id": 1, "bbox": [40, 20, 16, 16], "area": 256, "iscrowd": 0}],
 "categories": [{"id": 1, "name": "can"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 12, 12], "area": 144, "iscrowd": 0}],
 "categories": [{"id": 1, "name": "can"}]}
```

## Options
- `min_confidence` (float, default 0.3): only predictions at least this confident support a
  label, and an image needs one of them to be judged. Lower than the other LL6xx rules' because
  here the absence of a prediction is the accusation: a real object that a good detector sees
  only weakly still counts as seen, while background rarely draws a prediction of 0.3. Results
  files kept down to 0.05 (COCO evaluation's habit) would otherwise support nearly every box.
- `min_iou` (float, default 0.05): a prediction overlapping the label at least this much supports
  it. Low on purpose, and LL602's `min_iou`: a same-class prediction from IoU 0.05 up says the
  object is there and the box is misplaced (LL602 moves it), so with the defaults the two rules
  never both report a box, one to move it and one to delete it. A spurious box on background
  overlaps no prediction at all. Objects the model is weakest on (very small, heavily occluded)
  are the ones it misses entirely; the score ranks findings on images where the model is
  reliable first.
- `min_class_recall` (float, default 0.9): only labels of a class whose judged labels the model
  supports at least this often are reported. The model's own agreement with the file decides how
  much its silence weighs: a detector that finds 97% of a class's labels and nothing on this one
  accuses it; one that misses a fifth of them is as likely to have missed a real object (measured:
  fold models of held-out AP50 0.6 made LL604 delete 25 real objects beside 35 spurious boxes,
  `docs/companion.md`). 0 judges every class.

## Fix
Unsafe: delete the annotation, after looking at the image: the model may have missed a real
object (small, occluded, rare).
"""

from labellint.findings import Fix, Problem, delete
from labellint.toolkit import objectlab

CODE = "LL604"
NAME = "spurious-box"
SEVERITY = "warning"
OPTIONS = {"min_confidence": 0.3, "min_iou": 0.05, "min_class_recall": 0.9}
OPTION_RANGES = {"min_confidence": (0, 1), "min_iou": (0, 1), "min_class_recall": (0, 1)}
FIX = "unsafe"
REQUIRES = ("predictions",)
EXAMPLE_OPTIONS = {"min_class_recall": 0.0}  # the examples' one class has two labels: recall 0.5


def check(ds, options, context):
    # the similarity's alpha plays no part here: the default one shares the other rules' work
    prepared = objectlab.prepare(ds, context.result("predictions"), 0.9)
    min_conf, min_iou = float(options["min_confidence"]), float(options["min_iou"])
    recall = objectlab.class_recall(prepared, min_conf, min_iou, len(ds.categories))
    trusted = recall >= float(options["min_class_recall"])  # nan: not trusted
    for ann, support, confident in objectlab.unsupported(prepared, min_conf, min_iou):
        cls = int(ds.ann_category_row[ann])
        if cls < 0 or not trusted[cls]:
            continue
        matched = support.size > 0
        trust = float(support.mean()) if matched else 0.5 * float(confident.mean())
        name = ds.category_name(int(ds.ann_category_row[ann]))
        box = objectlab.box_text(ds.annotations.bbox[ann])
        if matched:
            why = (f"although the model finds the image's other labels ({_count(support.size)}, mean confidence "
                   f"{support.mean():.2f}; score {trust:.3g})")
        else:
            why = (f"and the model's confident predictions on this image are on no label either "
                   f"({_count(confident.size)}, mean confidence {confident.mean():.2f}; score {trust:.3g})")
        yield Problem(
            f"no prediction of any class covers this '{name}' {box} {why}",
            annotation=ann, score=trust, suggestion="delete",
            fix=Fix("delete the annotation", (delete("annotations", ann),), "unsafe"),
        )


def _count(n: int) -> str:
    return f"{n} prediction" + ("" if n == 1 else "s")
