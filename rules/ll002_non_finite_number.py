"""Numbers that are `Infinity` or `NaN` in a box, an area or a segmentation.

## What it does
Flags annotations whose `bbox`, `area` or `segmentation` holds `Infinity`, `-Infinity` or
`NaN`. These are not JSON, but Python's `json` module writes and reads them, so they turn up in
real files (the unofficial TACO annotations have them).

## Why it matters
Strict JSON parsers (browsers, Go, Rust, msgspec, hotcoco) reject the whole file; those that
accept it compute IoU and area as `nan`, and every comparison with `nan` is false, so the box
silently never matches anything during evaluation.

## Example
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, Infinity, 4], "area": 12}],
 "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "area": 12}],
 "categories": [{"id": 1, "name": "cat"}]}
```

## Options
None.

## Fix
None: delete or redraw the box.
"""

from labellint.findings import entity_problem

CODE = "LL002"
NAME = "non-finite-number"
SEVERITY = "error"
OPTIONS: dict = {}
FIX = "none"


def check(ds, options):
    # strict JSON cannot hold these: only the loader's tolerant path finds them
    for issue in ds.issues:
        if issue.kind == "non-finite":
            yield entity_problem(issue.section, issue.index, issue.message,
                                 pointer=f"/{issue.section}/{issue.index}/{issue.field}", key=issue.field)
