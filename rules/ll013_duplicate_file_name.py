"""Two images that share a `file_name`.

## What it does
Reports every image whose `file_name` was already used by an earlier image entry. The first
entry is kept; each later one is reported with the id of the first.

## Why it matters
One picture with two image entries has its boxes split between two ids: training sees the
picture twice with half of its objects each time (the other half as background), and
evaluation counts every box on the "other" entry as missed. It is almost always a merge or
re-export accident. Splitting a dataset by image id also puts the same picture into train and
test.

## Example
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
            {"id": 2, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
                 {"id": 2, "image_id": 2, "category_id": 1, "bbox": [20, 20, 5, 5]}],
 "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
                 {"id": 2, "image_id": 1, "category_id": 1, "bbox": [20, 20, 5, 5]}],
 "categories": [{"id": 1, "name": "cat"}]}
```

## Options
None.

## Fix
None automatically: merge the entries (point the later entry's annotations at the first image and
delete it) if they really are one picture, which cannot be known from the file alone.
"""

from labellint.findings import Problem

CODE = "LL013"
NAME = "duplicate-file-name"
SEVERITY = "error"
OPTIONS: dict = {}
FIX = "none"


def check(ds, options):
    first_row: dict[str, int] = {}
    ids = ds.images.id
    for row, name in enumerate(ds.images.file_name):  # one dict lookup per image, not per box
        if not isinstance(name, str):
            continue
        first = first_row.setdefault(name, row)
        if first != row:
            yield Problem(f"file_name {name!r} is already used by image id {int(ids[first])} (/images/{first}): "
                          "the picture's boxes are split between two entries", image=row)
