"""Boxes whose class disagrees with the classes of the most similar crops in the dataset.

## What it does
Crops every box with some context (padded to a square, never centre-cropped), embeds the crops
with the `--backbone` ONNX model, and finds each crop's `k` nearest neighbours by cosine
similarity. The neighbours' classes, weighted by similarity, give leave-one-out class
probabilities, averaged with those of a cross-validated linear probe on the embeddings (see
`linear_probe`); confident learning (a per-class threshold: the mean probability that members of
the class get for it, a calibrated joint of given and likely classes, pruned by noise rate)
then decides which given classes are wrong. This is cleanlab Datalab's recipe for
classification, applied to box crops; a box that none of its neighbours supports is flagged
even when the joint's estimated count for its pair of classes ran out (with the probe, only if
the probe too prefers another class). The suggestion is the
most probable other class; the score is 1 - p(given class).

Classes with fewer than `min_class_support` boxes are too small to judge: they get one info
finding each, and their boxes are neither flagged nor counted as votes. Crowd boxes, boxes of
unknown or unreadable images, and annotations whose id is missing or duplicated are skipped.

## Why it matters
Swapped classes (a white king labelled white queen, a car labelled truck) are the label error
that a detector learns most directly from, and the hardest to find by reading the JSON: every
field is valid. Neighbours in a good embedding space point to them, ranked by confidence.

## Example
`board.png` (360x60) shows a row of four pawns and four knights, one in each box of the good
file (drawn, for the test that runs these examples, as yellow discs and blue squares). In the
bad file the knight of annotation 4 is labelled `pawn`: its nearest crops are all knights, so it
is reported with the suggestion `knight` (score 0.84). So few boxes need smaller settings than
the defaults: the examples use `k = 3` and `min_class_support = 3`.
```json bad
{"images": [{"id": 1, "file_name": "board.png", "width": 360, "height": 60}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [8, 10, 40, 40]},
                 {"id": 2, "image_id": 1, "category_id": 2, "bbox": [52, 10, 40, 40]},
                 {"id": 3, "image_id": 1, "category_id": 1, "bbox": [96, 10, 40, 40]},
                 {"id": 4, "image_id": 1, "category_id": 1, "bbox": [140, 10, 40, 40]},
                 {"id": 5, "image_id": 1, "category_id": 1, "bbox": [184, 10, 40, 40]},
                 {"id": 6, "image_id": 1, "category_id": 2, "bbox": [228, 10, 40, 40]},
                 {"id": 7, "image_id": 1, "category_id": 1, "bbox": [272, 10, 40, 40]},
                 {"id": 8, "image_id": 1, "category_id": 2, "bbox": [316, 10, 40, 40]}],
 "categories": [{"id": 1, "name": "pawn"}, {"id": 2, "name": "knight"}]}
```
```json good
{"images": [{"id": 1, "file_name": "board.png", "width": 360, "height": 60}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [8, 10, 40, 40]},
                 {"id": 2, "image_id": 1, "category_id": 2, "bbox": [52, 10, 40, 40]},
                 {"id": 3, "image_id": 1, "category_id": 1, "bbox": [96, 10, 40, 40]},
                 {"id": 4, "image_id": 1, "category_id": 2, "bbox": [140, 10, 40, 40]},
                 {"id": 5, "image_id": 1, "category_id": 1, "bbox": [184, 10, 40, 40]},
                 {"id": 6, "image_id": 1, "category_id": 2, "bbox": [228, 10, 40, 40]},
                 {"id": 7, "image_id": 1, "category_id": 1, "bbox": [272, 10, 40, 40]},
                 {"id": 8, "image_id": 1, "category_id": 2, "bbox": [316, 10, 40, 40]}],
 "categories": [{"id": 1, "name": "pawn"}, {"id": 2, "name": "knight"}]}
```

## Options
- `k` (int, default 10): neighbours per crop.
- `exclude_same_image` (bool, default false): ignore neighbours from the same picture (for
  sets where one picture holds many copies of one object, or near-duplicate boxes).
- `min_class_support` (int, default 10): smaller classes are reported as too small to judge.
- `context` (float, default 0.1): context added on each side, as a fraction of the box's
  longer side, before padding to a square.
- `fix_min_score` (float, default 0.5): `--fix --unsafe-fixes` relabels a box to the suggested
  class only when the finding's score is at least this.
- `linear_probe` (bool, default true): average the neighbours' class probabilities with those of
  a 5-fold cross-validated softmax regression on the embeddings (each box judged by a model that
  did not see it; its L2 strength picked per dataset by held-out log-loss). Neighbours see a crop
  as a whole; the probe learns which parts of the embedding carry the class, which matters for
  small, low-resolution objects: on small digits drawn at 12-20 px (many writers, no two boxes
  alike) it raised F1 from 0.55-0.57 to 0.73-0.77 (precision 0.39-0.42 to 0.61-0.65, same
  recall); on the chess photos, full size and shrunk to 16-32 px, by 0.006-0.047
  (benchmarks/README_embed.md, "Small objects"). Fitted only when the judged classes hold at
  least 50 boxes, on at most 50,000 per fold. Costs about 4 s per 1,000 boxes on 2 cores (11 s for
  2,870 chess boxes, where the neighbours take under 1 s): set it false for the fastest warm
  re-lint in a pre-commit hook, at the cost of precision on small objects.

## Fix
Unsafe: set the suggested class (`--unsafe-fixes`, above `fix_min_score`), better after looking
at the crop in the review gallery; the score is a ranking, not a proof.
"""

import numpy as np

from labellint.findings import Fix, Problem, Severity, set_field
from labellint.toolkit import Phases, embeddings, judge, nearest_neighbours, request_crops

CODE = "LL501"
NAME = "class-inconsistent-with-neighbours"
SEVERITY = "warning"
OPTIONS = {"k": 10, "exclude_same_image": False, "min_class_support": 10, "context": 0.1,
           "fix_min_score": 0.5, "linear_probe": True}
OPTION_RANGES = {"k": (1, 1000), "min_class_support": (1, 2**62), "context": (0, 10), "fix_min_score": (0, 1)}
FIX = "unsafe"
REQUIRES = ("embeddings",)
EXAMPLE_OPTIONS = {"k": 3, "min_class_support": 3}
#: the examples' picture (built by tests/rule_examples.py, which reads the boxes from the good example)
EXAMPLE_IMAGES = {"board.png": "360x60 board: pawn yellow disc, knight blue square"}


def prepare(ds, options, context):
    request_crops(ds, float(options["context"]), context)  # crops with this much context, cut in the pass


def check(ds, options, context):
    k = int(options["k"])
    _, rows, _, vectors = embeddings(ds, float(options["context"]), context)
    classes = ds.ann_category_row[rows] if len(rows) else np.zeros(0, np.int64)
    n_classes = len(ds.categories)
    support = np.bincount(classes[classes >= 0], minlength=n_classes)
    min_support = int(options["min_class_support"])
    for c in np.flatnonzero((support > 0) & (support < min_support)).tolist():
        count = int(support[c])
        yield Problem(f"class '{ds.category_name(c)}' has {count} embedded box{'es' * (count != 1)}, fewer than min_class_support={min_support}: "
                      "too few to judge by neighbours", category=c, severity=Severity.INFO, score=0.0,
                      key="too-small")
    if len(rows) < 3 or (support >= min_support).sum() < 2:
        return
    groups = ds.ann_image_row[rows] if options["exclude_same_image"] else None
    with Phases(context.progress, "neighbours") as phases:
        nb = nearest_neighbours(vectors, k, groups, device=str(context.device or "auto"), progress=phases)
    verdict = judge(nb.index, nb.similarity, classes, n_classes, min_support=min_support,
                    vectors=vectors if options["linear_probe"] else None)
    for i in np.flatnonzero(verdict.flagged).tolist():
        given, sugg = int(verdict.given[i]), int(verdict.suggested[i])
        carried = int(verdict.votes[i, sugg])
        judged = int((nb.index[i] >= 0).sum())
        score = float(verdict.score[i])
        fix = None
        if score >= float(options["fix_min_score"]):
            fix = Fix(f"relabel to '{ds.category_name(sugg)}'",
                      (set_field("annotations", int(rows[i]), "category_id", int(ds.categories.id[sugg])),), "unsafe")
        neighbours = [{"annotation": int(rows[j]), "similarity": round(float(s), 4)}
                      for j, s in zip(nb.index[i].tolist(), nb.similarity[i].tolist()) if j >= 0]
        yield Problem(
            f"labelled '{ds.category_name(given)}' but {carried} of its {judged} nearest crops are "
            f"'{ds.category_name(sugg)}' (p={verdict.probs[i, sugg]:.2f} vs {verdict.probs[i, given]:.2f} "
            f"for '{ds.category_name(given)}')",
            annotation=int(rows[i]), score=score, suggestion=ds.category_name(sugg), fix=fix,
            extra={"neighbours": neighbours, "suggested_category_id": int(ds.categories.id[sugg])})
