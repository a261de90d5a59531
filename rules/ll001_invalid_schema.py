"""Sections, entries or fields that do not have the type COCO requires.

## What it does
Reports every value the loader could not take as it is: a missing `images`, `annotations` or
`categories` section, a section that is not an array, an entry that is not an object, a missing
required key (`id`, `image_id`, `category_id`, `bbox`, `width`, `height`, `file_name`, `name`),
a field of the wrong type, such as a string id (`"id": "12"`) or a float id, and a top-level key
written twice (reported at the second).

## Why it matters
pycocotools, detectron2, mmdetection and torchvision either crash on such values or, worse,
silently skip or mis-match them: a string `image_id` never matches the integer image id, so the
box is dropped from training and evaluation without a word.
A key written twice is read differently by different tools: JSON readers keep the last value,
others the first, so two tools see two datasets in one file (and `--fix` refuses to edit it).

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

import numpy as np

from labellint.findings import Problem, entity_problem
from labellint.toolkit import idvalues

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
            pointer = "/" + str(issue.field).replace("~", "~0").replace("/", "~1")
        elif issue.field is not None:
            pointer = f"/{issue.section}/{issue.index}/{issue.field}"
        yield entity_problem(issue.section, issue.index, _explained(ds, issue), pointer=pointer,
                             key=f"{issue.kind}:{issue.field}", offset=issue.offset)


def _explained(ds, issue) -> str:
    """The loader's message, and for an id written as a string or a float what it stands for:
    "'image_id' must be an integer, got a string ('5'): image 5 exists, but the string '5' is not
    the number 5 ..." rather than a box that merely seems to have an unknown image."""
    if issue.kind != "field-type":
        return issue.message
    n = idvalues.meant(issue.value)
    if n is None:
        return issue.message
    fix = f"write {n} without quotes" if isinstance(issue.value, str) else f"write {n}"
    if issue.section == "annotations" and issue.field in idvalues.TARGETS:
        section, noun = idvalues.TARGETS[issue.field]
        _, _, target = idvalues.references(ds, issue.field).get(issue.index, (None, None, None))
        if target is None:
            return f"{issue.message}; no {noun} has the id {n} either"
        name = f" ('{ds.category_name(target)}')" if section == "categories" else ""
        if not isinstance(issue.value, str):
            return f"{issue.message}: it stands for {noun} {n}{name}, which exists; {fix}"
        lost = "belongs to no image" if section == "images" else "has no class"
        return (f"{issue.message}: {noun} {n}{name} exists, but {idvalues.shown(issue.value)} is not "
                f"{idvalues.number(issue.value)}, so this box {lost} (pycocotools matches ids as written); {fix}")
    if issue.section in ("images", "categories") and issue.field == "id" and isinstance(issue.value, str):
        field = "image_id" if issue.section == "images" else "category_id"
        refs = _reference_counts(ds, field).get(n, 0)
        noun = "image" if issue.section == "images" else "category"
        if refs:
            return (f"{issue.message}: {refs} annotation{'s' * (refs != 1)} refer{'s' * (refs == 1)} to {noun} {n} "
                    f"by {idvalues.number(issue.value)} and match{'es' * (refs == 1)} no {noun}; {fix}")
    return f"{issue.message}; {fix}"


def _reference_counts(ds, field: str) -> dict[int, int]:
    def compute():
        values, counts = np.unique(getattr(ds.annotations, field), return_counts=True)
        return dict(zip(values.tolist(), counts.tolist()))
    return ds.shared(f"ll001.references.{field}", compute)
