"""Two images, two annotations or two categories that share an id.

## What it does
Reports every entry whose `id` was already used by an earlier entry of the same section
(images, annotations or categories). The first use is kept; each later one is reported.

## Why it matters
Every COCO tool indexes by id: pycocotools keeps the last entry with a given id and silently
drops the others, so boxes vanish from training, and annotations of one image get attached to
another. Evaluation numbers computed on such a file are wrong without a warning.

## Example
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
                 {"id": 7, "image_id": 1, "category_id": 1, "bbox": [20, 20, 5, 5]}],
 "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
                 {"id": 8, "image_id": 1, "category_id": 1, "bbox": [20, 20, 5, 5]}],
 "categories": [{"id": 1, "name": "cat"}]}
```

## Options
None.

## Fix
Safe for annotations: `--fix` gives the later duplicate a fresh id (nothing refers to annotation
ids). None for images and categories: annotations point at them by id, and which one they meant
cannot be known from the file.
"""

from labellint.findings import Fix, entity_problem, set_field
from labellint.toolkit import annotation_repeats, fresh_annotation_ids, repeated_rows

CODE = "LL010"
NAME = "duplicate-id"
SEVERITY = "error"
OPTIONS: dict = {}
FIX = "safe"

_SINGULAR = {"images": "image", "annotations": "annotation", "categories": "category"}


def check(ds, options):
    for section in ("images", "annotations", "categories"):
        ids = getattr(ds, section).id
        if len(ids) < 2:
            continue
        rows, firsts = annotation_repeats(ds) if section == "annotations" else repeated_rows(ids)
        fresh = fresh_annotation_ids(ds) if section == "annotations" else {}
        for row, first in zip(rows.tolist(), firsts.tolist()):
            fix = None
            if section == "annotations":  # one fresh id each (shared with LL014), so fixes never collide
                fix = Fix(f"give the later annotation the unused id {fresh[row]}",
                          (set_field("annotations", row, "id", fresh[row]),))
            yield entity_problem(
                section, row,
                f"{_SINGULAR[section]} id {int(ids[row])} is already used by /{section}/{first}",
                key=f"dup{row - first}", fix=fix,
            )
