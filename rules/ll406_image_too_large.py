"""Images over the pixel limit (a decompression bomb, or a picture too big to train on).

## What it does
Checks each image file's size before reading it, and refuses to read it when it has more than
`max_bytes` bytes. Then reads its header only and refuses to decompress it when width x height
is over `max_pixels`. PIL's own limit is set to the same value for the pass, and its warning and
error are caught and reported here.

## Why it matters
A few kilobytes of PNG or GIF can claim 50,000 x 50,000 pixels and take gigabytes of memory to
decode: a denial of service against CI or a training job. Even honest giant scans waste a data
loader's time and are usually meant to be tiled.

## Example
`bomb.png`, an all-black 1-bit PNG of about 190 KB on disk, has a header of 40000x40000
(1.6 billion pixels); `a.jpg` is a 64x48 picture:
```json bad
{"images": [{"id": 1, "file_name": "bomb.png", "width": 40000, "height": 40000}],
 "annotations": [], "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [], "categories": [{"id": 1, "name": "cat"}]}
```

## Options
- `max_pixels` (int, default 268435456, i.e. 16384 x 16384): the largest picture decoded.
- `max_bytes` (int, default 0): the largest image file read, in bytes; 0 takes the run's limit,
  `LABELLINT_MAX_IMAGE_BYTES` (default 1073741824, i.e. 1 GiB).

## Fix
None: downscale or tile the picture (and its boxes), or raise `max_pixels` (`max_bytes`) for trusted data.
"""

from labellint.findings import Problem
from labellint.toolkit import images

CODE = "LL406"
NAME = "image-too-large"
SEVERITY = "error"
OPTIONS = {"max_pixels": images.DEFAULT_MAX_PIXELS, "max_bytes": 0}
OPTION_RANGES = {"max_pixels": (1, 2**62), "max_bytes": (0, 2**62)}
FIX = "none"
REQUIRES = ("images",)
#: what the examples' image root holds (tests/rule_examples.py builds it)
EXAMPLE_IMAGES = {"bomb.png": "40000x40000 bomb", "a.jpg": "64x48"}


def prepare(ds, options, context):
    # the pass refuses images over these limits before decoding them; this rule reports them
    images.prepare(ds, context, max_pixels=options["max_pixels"], max_bytes=options["max_bytes"])


def check(ds, options, context):
    for row, info in enumerate(context.result("images")):
        if info.status == images.TOO_LARGE:
            yield Problem(f"image '{ds.images.file_name[row]}' not decoded: {info.message}", image=row)
