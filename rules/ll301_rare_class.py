"""Classes with very few annotations.

## What it does
Counts the annotations of each category and reports categories that have some, but fewer than
`min_annotations`, in files where some other class has at least that many: "rare" is relative,
and a file in which every class is small (a sample, a test fixture) says nothing about rarity.
(Categories with no annotations are LL016's.)

## Why it matters
A detector cannot learn a class from a handful of boxes, and its AP on a test split with two
or three instances swings between 0 and 1 with a single prediction. A class this rare is often
a labelling slip instead: a colourless `bishop` among `white-bishop` and `black-bishop`, a
typo, or a class that was retired but not cleaned up.

## Example
The examples use `min_annotations = 2`.
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
                 {"id": 2, "image_id": 1, "category_id": 1, "bbox": [20, 20, 5, 5]},
                 {"id": 3, "image_id": 1, "category_id": 2, "bbox": [40, 10, 5, 5]}],
 "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
                 {"id": 2, "image_id": 1, "category_id": 1, "bbox": [20, 20, 5, 5]},
                 {"id": 3, "image_id": 1, "category_id": 2, "bbox": [40, 10, 5, 5]},
                 {"id": 4, "image_id": 1, "category_id": 2, "bbox": [50, 30, 5, 5]}],
 "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
```

## Options
- `min_annotations` (int, default 10): classes with fewer annotations are reported.

## Fix
None automatically: relabel the boxes to the class they belong to (the suggestion names classes
whose names contain this one), or label more examples.
"""

import re

import numpy as np

from labellint.findings import Problem

CODE = "LL301"
NAME = "rare-class"
SEVERITY = "warning"
OPTIONS = {"min_annotations": 10}
OPTION_RANGES = {"min_annotations": (0, 2**62)}
FIX = "none"
EXAMPLE_OPTIONS = {"min_annotations": 2}

_WORDS = re.compile(r"[\s_\-]+")


def check(ds, options):
    minimum = int(options["min_annotations"])
    n_categories = len(ds.categories)
    if n_categories == 0:
        return
    rows = ds.ann_category_row
    counts = np.bincount(rows[rows >= 0], minlength=n_categories)
    if counts.max() < minimum:
        return
    names = [ds.category_name(r) for r in range(n_categories)]
    # the first few distinct names holding each word: one pass over the names, where comparing
    # every rare class with every name would be quadratic in a file of 100,000 classes
    holding: dict[str, list[str]] = {}
    for name in dict.fromkeys(names):
        for word in set(_WORDS.split(name.casefold())):
            kept = holding.setdefault(word, [])
            if len(kept) < 4:  # 3 suggestions, and the rare name itself may be one of them
                kept.append(name)
    for row in np.flatnonzero((counts > 0) & (counts < minimum)).tolist():
        n = int(counts[row])
        wider = [other for other in holding.get(names[row].casefold(), ()) if other != names[row]]
        yield Problem(f"class {names[row]!r} has only {n} annotation{'s' * (n != 1)} (fewer than {minimum}): too few "
                      "to learn or to evaluate", category=row,
                      suggestion=" or ".join(wider[:3]) or None, score=1 - n / minimum)
