"""The same picture in two of the files linted together (train/validation leakage).

## What it does
When several COCO files are linted in one run (say `train.json val.json test.json`), reports
each image of a later file whose bytes, or whose perceptual hash within `max_distance` bits,
match an image of an earlier file (the same picture re-encoded, resized or recoloured; the
thumbnail check of LL410 keeps apart photos of one scene in which something moved). The finding sits on the later file's entry and names the
earlier one.

## Why it matters
A validation or test picture that was also trained on measures memory, not generalisation:
the score goes up and means less. Near-duplicates (consecutive video frames, re-encodes) leak
the same way.

## Example
`labellint check train.json val.json --images data/`, where `train.json` lists `a.jpg` (64x48)
and `val.json` lists `a_again.jpg`, the same picture re-encoded as JPEG. Reported on `val.json`:
```json bad
{"images": [{"id": 1, "file_name": "a_again.jpg", "width": 64, "height": 48}],
 "annotations": [], "categories": [{"id": 1, "name": "cat"}]}
```
With a picture that `train.json` does not hold, `b.jpg`:
```json good
{"images": [{"id": 1, "file_name": "b.jpg", "width": 64, "height": 48}],
 "annotations": [], "categories": [{"id": 1, "name": "cat"}]}
```

## Options
- `max_distance` (int, default 4): perceptual-hash bits that may differ; -1 for identical bytes
  only.

## Fix
None automatically: remove the image (and its boxes) from one of the files, usually the later
split; which split keeps it is a person's call.
"""

import numpy as np

from labellint.findings import Problem, Severity
from labellint.toolkit import images

CODE = "LL411"
NAME = "image-leakage"
SEVERITY = "error"
OPTIONS = {"max_distance": 4}
OPTION_RANGES = {"max_distance": (-1, 64)}
FIX = "none"
REQUIRES = ("images",)
#: what the examples' image root holds (tests/rule_examples.py builds it)
EXAMPLE_IMAGES = {"a.jpg": "64x48", "a_again.jpg": "a.jpg as JPEG", "b.jpg": "64x48"}
#: the files linted before the example (which plays val.json), and the images each lists
EXAMPLE_EARLIER_FILES = {"train.json": ["a.jpg"]}


def check(ds, options, context):
    return iter(())  # one file alone cannot leak: the images pass keeps each file's scan for check_many


def check_many(datasets, options):
    """(dataset position, Problem) for images of a later file also present in an earlier one."""
    max_distance = int(options["max_distance"])
    entries = []  # (file position, image row, info) of every hashed image
    for pos, ds in enumerate(datasets):
        entries.extend((pos, row, info) for row, info in enumerate(images.scanned(ds) or [])
                       if info.digest is not None)
    best: dict[tuple[int, int], tuple] = {}  # later (pos, row) -> (distance, earlier (pos, row))

    def offer(a, b, dist):
        if a[0] == b[0]:
            return  # the same file: LL410's business
        early, late = (a, b) if a[0] < b[0] else (b, a)
        if late not in best or dist < best[late][0]:
            best[late] = (dist, early)

    first_by_digest: dict[str, tuple[int, int]] = {}
    for pos, row, info in entries:
        first = first_by_digest.setdefault(info.digest, (pos, row))
        if first != (pos, row):
            offer(first, (pos, row), -1)
    hashed = [(pos, row, info) for pos, row, info in entries if info.phash is not None]
    if max_distance >= 0 and len(hashed) > 1:
        for i, j, dist in images.near_pairs(np.array([h.phash for _, _, h in hashed], np.uint64), max_distance):
            if hashed[i][0] != hashed[j][0] and images.same_picture(hashed[i][2], hashed[j][2]):
                offer(hashed[i][:2], hashed[j][:2], dist)
    for (pos, row), (dist, early) in sorted(best.items()):
        if dist < 0:
            yield pos, _problem(datasets, pos, row, early, "identical bytes", 1.0, Severity.ERROR)
        else:
            yield pos, _problem(datasets, pos, row, early, f"perceptual hash {dist} of 64 bits apart",
                                0.9 - dist / 100, Severity.WARNING)


def _problem(datasets, pos, row, other, how, score, severity):
    opos, orow = other
    ods = datasets[opos]
    return Problem(f"image '{datasets[pos].images.file_name[row]}' is also in {ods.path} as /images/{orow} "
                   f"('{ods.images.file_name[orow]}', id {int(ods.images.id[orow])}): {how}",
                   image=row, score=score, severity=severity)
