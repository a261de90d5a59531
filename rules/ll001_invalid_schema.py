"""Sections, entries or fields that do not have the type COCO requires.

## What it does
Reports every value the loader could not take as it is: a missing `images`, `annotations` or
`categories` section, a section that is not an array, an entry that is not an object, a missing
required key (`id`, `image_id`, `category_id`, `bbox`, `width`, `height`, `file_name`, `name`),
and a field of the wrong type, such as a string id (`"id": "12"`) or a float id.

## Why it matters
pycocotools, detectron2, mmdetection and torchvision either crash on such values or, worse,
silently skip or mis-match them: a string `image_id` never matches the integer image id, so the
box is dropped from training and evaluation without a word.

## Example
```json bad
{"images": [{"id": "1", "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}],
 "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}],
 "categories": [{"id": 1, "name": "cat"}]}
```

## Options
None.

## Fix
None: the right value cannot be guessed (is `"12"` the id 12 or a typo?). Edit the file.
"""

from labellint.findings import Problem, entity_problem

CODE = "LL001"
NAME = "invalid-schema"
SEVERITY = "error"
OPTIONS: dict = {}
FIX = "none"

REQUIRED_SECTIONS = ("images", "annotations", "categories")


def check(ds, options):
    for section in REQUIRED_SECTIONS:
        if section not in ds.sections:
            yield Problem(f"missing '{section}' section", pointer="", key=f"missing-{section}")
    for issue in ds.issues:
        if issue.kind == "non-finite":  # LL002's
            continue
        pointer = None
        if issue.section is None:
            pointer = f"/{issue.field}"
        elif issue.field is not None:
            pointer = f"/{issue.section}/{issue.index}/{issue.field}"
        yield entity_problem(issue.section, issue.index, issue.message, pointer=pointer,
                             key=f"{issue.kind}:{issue.field}")
