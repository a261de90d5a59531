"""Image file names that would be read from outside the image root.

## What it does
Reports images whose `file_name` is absolute (`/etc/passwd`, `C:/x.jpg`), climbs out with `..`,
or resolves outside the `--images` root through a symlink. Such files are never opened.

## Why it matters
A dataset is often linted in CI on files that anyone can send in a pull request. A crafted
`file_name` must not make the linter (or a training job that trusts the same field) read
arbitrary files of the machine. Absolute paths also break as soon as the data moves.

## Example
With `--images data/images` and a file `secrets/key.jpg` beside `data/`, a file name that
climbs out of the root to it is refused, never opened:
```json bad
{"images": [{"id": 1, "file_name": "../../secrets/key.jpg", "width": 64, "height": 48}],
 "annotations": [], "categories": [{"id": 1, "name": "cat"}]}
```
A path relative to the root is read:
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
 "annotations": [], "categories": [{"id": 1, "name": "cat"}]}
```

## Options
None.

## Fix
None: move the file under the image root and make `file_name` relative to it.
"""

from labellint.findings import Problem
from labellint.toolkit import images

CODE = "LL401"
NAME = "image-path-unsafe"
SEVERITY = "error"
OPTIONS: dict = {}
FIX = "none"
REQUIRES = ("images",)
#: what the examples' image root holds (tests/rule_examples.py builds it)
EXAMPLE_IMAGES = {"a.jpg": "64x48", "../../secrets/key.jpg": "64x48"}


def check(ds, options, context):
    for row, info in enumerate(context.result("images")):
        if info.status == images.UNSAFE:
            yield Problem(f"refused: {info.message}", image=row)
