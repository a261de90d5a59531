"""RLE masks that do not decode to their image.

## What it does
Reports RLE segmentations (`{"size": [h, w], "counts": ...}`) that lack `size` or `counts`,
whose `counts` is neither a list of non-negative integers nor a valid compressed string, whose
`size` differs from the image's `[height, width]`, or whose run lengths do not sum to exactly
`height * width` pixels. pycocotools counts in unsigned 32-bit integers, so a run, or a mask,
of more than 4294967295 pixels is invalid too (it would raise, or silently wrap), as is a
`size` that holds no pixels.

## Why it matters
pycocotools decodes RLE without checking: runs that sum short leave the rest of the mask
unset, runs that sum long write past the mask buffer (garbage masks or a crash), and a mask
of another size is silently misaligned with its image. Masks pasted from another resolution
are the usual cause.

## Example
```json bad
{"images": [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 3}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 0, 2, 3], "iscrowd": 1,
                  "segmentation": {"size": [3, 4], "counts": [3, 6, 2]}}],
 "categories": [{"id": 1, "name": "cat"}]}
```
```json good
{"images": [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 3}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 0, 2, 3], "iscrowd": 1,
                  "segmentation": {"size": [3, 4], "counts": [3, 6, 3]}}],
 "categories": [{"id": 1, "name": "cat"}]}
```

## Options
None.

## Fix
None: re-export the mask at the image's resolution.
"""

from labellint.findings import Problem
from labellint.toolkit import geometry

CODE = "LL108"
NAME = "invalid-rle"
SEVERITY = "error"
OPTIONS: dict = {}
FIX = "none"
REQUIRES = ("segmentations",)  # the polygon summary: a late pass (labellint.passes)


def check(ds, options):
    summary = geometry.rles(ds)
    for row, problem in zip(summary.rows.tolist(), summary.problem):
        if problem is not None:
            yield Problem(problem, annotation=row, pointer=f"/annotations/{row}/segmentation")
