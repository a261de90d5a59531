"""The same picture listed twice in one file, byte for byte or nearly (re-encoded, resized).

## What it does
Hashes every image's bytes (sha256) and its look (a 64-bit DCT perceptual hash of a 32x32 grey
thumbnail). Entries with identical bytes, or perceptual hashes at most `max_distance` bits apart
whose 64x64 thumbnails also match pixel for pixel (after brightness and contrast are normalised), are
reported, each pointing to the first entry of its group. The thumbnail check keeps apart photos
of one scene in which an object moved (burst shots of a chess board), which hash alike.

## Why it matters
Duplicates weigh some scenes twice in training and, when their boxes differ, teach two answers
for one picture. Near-duplicates (burst photos, video frames, re-exports) do the same more
quietly and are the usual source of train/validation leakage (see LL411).

## Example
`copy_of_a.jpg` has the same bytes as `a.jpg` (or is its PNG re-encode); `b.jpg` is another
picture:
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
            {"id": 2, "file_name": "copy_of_a.jpg", "width": 64, "height": 48}],
 "annotations": [], "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
            {"id": 2, "file_name": "b.jpg", "width": 64, "height": 48}],
 "annotations": [], "categories": [{"id": 1, "name": "cat"}]}
```

## Options
- `max_distance` (int, default 4): perceptual-hash bits that may differ (0: visually identical
  only; -1: identical bytes only; 64-bit pHash distances of unrelated photos are around 32).

## Fix
Unsafe: delete the later entries (merge their boxes into the first when they hold more).
"""

import numpy as np

from labellint.findings import Fix, Problem
from labellint.toolkit import drop_image
from labellint.toolkit import images

CODE = "LL410"
NAME = "duplicate-images"
SEVERITY = "warning"
OPTIONS = {"max_distance": 4}
OPTION_RANGES = {"max_distance": (-1, 64)}
FIX = "unsafe"
REQUIRES = ("images",)
#: what the examples' image root holds (tests/rule_examples.py builds it; a tuple: the doc's
#: alternatives, the examples run with each)
EXAMPLE_IMAGES = {"a.jpg": "64x48", "copy_of_a.jpg": ("copy of a.jpg", "a.jpg as PNG"), "b.jpg": "64x48"}


def duplicate_pairs(infos, max_distance):
    """(earlier row, later row, distance or 0 for identical bytes, identical?) pairs."""
    rows = [i for i, info in enumerate(infos) if info.digest is not None]
    first_of: dict[str, int] = {}
    pairs = {}
    for r in rows:
        d = infos[r].digest
        if d in first_of:
            pairs[r] = (first_of[d], 0, True)
        else:
            first_of[d] = r
    hashed = [r for r in first_of.values() if infos[r].phash is not None]
    if max_distance >= 0 and len(hashed) > 1:
        hashes = np.array([infos[r].phash for r in hashed], dtype=np.uint64)
        for i, j, dist in images.near_pairs(hashes, int(max_distance)):
            a, b = hashed[i], hashed[j]
            if not images.same_picture(infos[a], infos[b]):
                continue  # one scene with a moved object, not one picture
            if b not in pairs or pairs[b][1] > dist:
                pairs[b] = (a, dist, False)
    return pairs


def check(ds, options, context):
    infos = context.result("images")
    for later, (first, dist, same_bytes) in sorted(duplicate_pairs(infos, options["max_distance"]).items()):
        how = "identical bytes" if same_bytes else f"perceptual hash {dist} of 64 bits apart"
        yield Problem(f"image '{ds.images.file_name[later]}' duplicates /images/{first} "
                      f"('{ds.images.file_name[first]}', id {int(ds.images.id[first])}): {how}",
                      image=later, score=1.0 if same_bytes else 0.9 - dist / 100,
                      fix=Fix("delete the later entry and its annotations", drop_image(ds, later), "unsafe"))
