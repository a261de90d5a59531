"""Images whose real size differs from the `width` and `height` in the JSON.

## What it does
Compares each decoded picture's size with the entry's `width` and `height`. A size that matches
the EXIF-rotated view (width and height swapped, orientation 5-8) is left to LL405.

## Why it matters
Boxes are in the pixel frame of the size the annotator saw. If the file was resized or replaced
after labelling, every box is off by the scale; loaders that trust the JSON size allocate wrong
buffers, and rules that check boxes against the image bounds check the wrong bounds.

## Example
With `a.jpg` a 64x48 picture:
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}],
 "annotations": [], "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [], "categories": [{"id": 1, "name": "cat"}]}
```

## Options
None.

## Fix
Unsafe: set `width` and `height` to the real size (the boxes may need rescaling as well).
"""

import math

from labellint.findings import Fix, Problem, set_field
from labellint.toolkit import images

CODE = "LL404"
NAME = "image-size-mismatch"
SEVERITY = "error"
OPTIONS: dict = {}
FIX = "unsafe"
REQUIRES = ("images",)
#: what the examples' image root holds (tests/rule_examples.py builds it)
EXAMPLE_IMAGES = {"a.jpg": "64x48"}


def check(ds, options, context):
    for row, info in enumerate(context.result("images")):
        if info.width is None or info.status not in (images.OK, images.UNREADABLE):
            continue
        w, h = ds.images.width[row], ds.images.height[row]
        if not (math.isfinite(w) and math.isfinite(h)):
            continue  # missing or non-numeric sizes are the schema rules' business
        declared = (int(round(w)), int(round(h)))
        if declared in ((info.width, info.height), info.displayed_size()):
            continue
        ratio = max(info.width / max(w, 1), w / max(info.width, 1), info.height / max(h, 1), h / max(info.height, 1))
        yield Problem(f"image '{ds.images.file_name[row]}' is {info.width}x{info.height} but the file says "
                      f"{w:g}x{h:g}", image=row, score=min(1.0, 0.5 + (ratio - 1) / 2),
                      fix=Fix(f"set the size to {info.width}x{info.height}",
                              (set_field("images", row, "width", info.width),
                               set_field("images", row, "height", info.height)), "unsafe"))
