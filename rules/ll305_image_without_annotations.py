"""Images that have no annotations.

## What it does
Reports every image that no annotation points at.

## Why it matters
Often intended: negative (background) images teach a detector what is not an object. But an
image left empty by an unfinished labelling job, or whose annotations were lost in an export,
teaches the opposite, that its objects are background. Only someone who looks can tell, so this
is information, ranked below every error and warning.

## Example
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
            {"id": 2, "file_name": "b.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}],
 "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
            {"id": 2, "file_name": "b.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
                 {"id": 2, "image_id": 2, "category_id": 1, "bbox": [1, 2, 3, 4]}],
 "categories": [{"id": 1, "name": "cat"}]}
```

## Options
None. Ignore the rule for files where empty images are intended (`per-file-ignores`).

## Fix
None: label the image, or keep it as a negative.
"""

import numpy as np

from labellint.findings import Problem

CODE = "LL305"
NAME = "image-without-annotations"
SEVERITY = "info"
OPTIONS: dict = {}
FIX = "none"


def check(ds, options):
    ids = ds.images.id
    if len(ids) == 0:
        return
    rows = ds.ann_image_row
    annotated = np.zeros(len(ids), bool)
    annotated[rows[rows >= 0]] = True
    _, first = np.unique(ids, return_index=True)
    first_of_its_id = np.zeros(len(ids), bool)
    first_of_its_id[first] = True  # annotations resolve a repeated id to its first image (LL010)
    for row in np.flatnonzero(~annotated & first_of_its_id).tolist():
        yield Problem("image has no annotations: fine if it is an intended negative (background) image, "
                      "otherwise its labels are missing", image=row, score=0.2)
