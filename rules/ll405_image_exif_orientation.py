"""Images with an EXIF orientation other than 1 (the pixels are stored rotated or mirrored).

## What it does
Reports pictures whose EXIF `Orientation` tag is 2-8 and says which view the boxes fit: the
stored pixels or the rotated view that EXIF-aware viewers and annotation tools show.

## Why it matters
Viewers and most annotation tools rotate the picture; many training loaders do not
(`PIL.Image.open`, `torchvision.io.decode_image` by default). The same boxes then land on a
rotated picture in training: a silent, large label error on every phone photo.

## Example
A phone photo stored 4032x3024 with Orientation 6, annotated in a tool that showed it
upright, so the JSON lists the rotated size (`rotated.jpg`); `a.jpg` has no orientation tag:
```json bad
{"images": [{"id": 1, "file_name": "rotated.jpg", "width": 3024, "height": 4032}],
 "annotations": [], "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [], "categories": [{"id": 1, "name": "cat"}]}
```

## Options
None.

## Fix
None automatically: bake the rotation into the pixels (`PIL.ImageOps.exif_transpose`) and drop
the tag, keeping the boxes of the view they were drawn on.
"""

from labellint.findings import Problem
from labellint.toolkit import images

CODE = "LL405"
NAME = "image-exif-orientation"
SEVERITY = "warning"
OPTIONS: dict = {}
FIX = "none"
REQUIRES = ("images",)
#: what the examples' image root holds (tests/rule_examples.py builds it)
EXAMPLE_IMAGES = {"rotated.jpg": "4032x3024 orientation 6", "a.jpg": "64x48"}

_WHAT = {2: "mirrored", 3: "rotated 180°", 4: "flipped upside down", 5: "transposed",
         6: "rotated 90° clockwise", 7: "transversed", 8: "rotated 90° counter-clockwise"}


def check(ds, options, context):
    for row, info in enumerate(context.result("images")):
        if info.width is None or info.orientation == 1 or info.orientation not in _WHAT:
            continue
        shown = "x".join(map(str, info.displayed_size()))
        if images.exif_applies(info, ds.images.width[row], ds.images.height[row]):
            where = (f"the JSON size is the rotated view ({shown}), so the boxes fit it; loaders that "
                     "ignore EXIF will read the unrotated pixels")
        else:
            where = (f"viewers show it {shown}, the boxes fit the stored {info.width}x{info.height} pixels; "
                     "EXIF-aware loaders will rotate the picture under them")
        yield Problem(f"image '{ds.images.file_name[row]}' has EXIF orientation {info.orientation} "
                      f"({_WHAT[info.orientation]}): {where}", image=row,
                      score=0.9 if info.orientation in (5, 6, 7, 8) else 0.7)
