"""Category names that differ only by case, spaces, hyphens or underscores.

## What it does
Reports every category whose name equals an earlier category's name once both are lower-cased
and stripped of spaces, hyphens and underscores (`Traffic light`, `traffic-light`,
`traffic_light`, `TrafficLight`). Exactly equal names are LL017's.

## Why it matters
Such pairs are nearly always one class typed two ways, often after merging files from two
annotators or tools. The model then learns to tell apart two names for the same thing, and the
per-class metrics of both are wrong.

## Example
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
                 {"id": 2, "image_id": 1, "category_id": 2, "bbox": [20, 20, 5, 5]}],
 "categories": [{"id": 1, "name": "traffic light"}, {"id": 2, "name": "Traffic_Light"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
                 {"id": 2, "image_id": 1, "category_id": 2, "bbox": [20, 20, 5, 5]}],
 "categories": [{"id": 1, "name": "traffic light"}, {"id": 2, "name": "stop sign"}]}
```

## Options
None.

## Fix
None automatically: merge the two categories (relabel the annotations of one to the other) if
they are one class; which name is right is a person's call.
"""

import re

from labellint.findings import Problem

CODE = "LL018"
NAME = "similar-category-names"
SEVERITY = "warning"
OPTIONS: dict = {}
FIX = "none"

_SEPARATORS = re.compile(r"[\s_\-]+")


def check(ds, options):
    first_row: dict[str, int] = {}
    names = ds.categories.name
    for row, name in enumerate(names):
        if not isinstance(name, str):
            continue
        first = first_row.setdefault(_SEPARATORS.sub("", name).casefold(), row)
        if first != row and names[first] != name:
            yield Problem(f"category name {name!r} differs from {names[first]!r} (category id "
                          f"{int(ds.categories.id[first])}) only by case or separators: one class typed two ways?",
                          category=row, suggestion=names[first], score=0.8)
