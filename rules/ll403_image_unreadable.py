"""Image files that cannot be decoded: truncated, corrupt, or not an image.

## What it does
Decodes every image once, completely, and reports the ones that fail: a truncated download
(`image file is truncated`), a corrupt stream, a file that is not a picture at all, or one that
cannot be read (a folder, no permission).

## Why it matters
A truncated JPEG often opens (its header is fine) and fails only when its pixels are needed, in
the middle of a training epoch, or decodes with a grey lower half that the boxes no longer match.

## Example
With `a.jpg` a whole 64x48 JPEG and `cut.jpg` the same file cut off after 60% of its
bytes by an interrupted copy: `cut.jpg` opens (its header is whole) and its decode stops at the
cut (`image file is truncated`):
```json bad
{"images": [{"id": 1, "file_name": "cut.jpg", "width": 64, "height": 48}],
 "annotations": [], "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [], "categories": [{"id": 1, "name": "cat"}]}
```

## Options
None.

## Fix
None: fetch the file again from its source.
"""

from labellint.findings import Problem
from labellint.toolkit import images

CODE = "LL403"
NAME = "image-unreadable"
SEVERITY = "error"
OPTIONS: dict = {}
FIX = "none"
REQUIRES = ("images",)
#: what the examples' image root holds (tests/rule_examples.py builds it)
EXAMPLE_IMAGES = {"a.jpg": "64x48", "cut.jpg": "a.jpg cut at 60%"}


def check(ds, options, context):
    for row, info in enumerate(context.result("images")):
        if info.status == images.UNREADABLE:
            yield Problem(f"image '{ds.images.file_name[row]}' {info.message}", image=row)
