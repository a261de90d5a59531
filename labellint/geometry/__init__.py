"""Vectorised geometry that several rules share: box overlaps, polygon and RLE summaries.

Everything works on whole numpy columns. Segmentations are summarised once per Dataset and
cached (:mod:`.shared`), because several rules read them and reading them is the expensive part
of linting a big file. The summary is per annotation (kind, summed polygon area, extent of the
points) plus the few polygons LL106 reports: no rule needs a Python object, or even a number,
per polygon. For large files the loader's two decoding children work it out for their half of
the annotations while this process runs the first rules (labellint.coco.split), with the same
code (:func:`summarise`).

* :mod:`.boxes`, :mod:`.overlaps`: box arithmetic, the pair search of the duplicate rules;
* :mod:`.segmentation`: the summary, read from the raw JSON text (:mod:`.decimals` parses its
  numbers), :mod:`.polygons` the exact reading of one value and the polygon arithmetic;
* :mod:`.rle`: RLE masks checked, with pycocotools' area and box;
* :mod:`.shared`: what rules ask for, computed once per Dataset.
"""

from __future__ import annotations

import sys
import types

from labellint.geometry import boxes, decimals, overlaps, polygons, rle, segmentation, shared
from labellint.geometry.boxes import box_iou, finite_rows
from labellint.geometry.decimals import _FRONT, _PAD, parse_decimal_ends, parse_decimals
from labellint.geometry.overlaps import Pairs, components, overlapping_pairs, sort_by_group
from labellint.geometry.polygons import (
    MALFORMED,
    NONE,
    POLYGONS,
    RLE,
    _annotation_shapes,
    _invalid_polygons,
    classify,
    decode_raw,
    polygon_summaries,
)
from labellint.geometry.rle import (
    RLE_MAX_RUN,
    _RLE_CHARS_AT_ONCE,
    RleSummary,
    _compressed_rle_totals,
    _uncompressed_total,
    compressed_rle_totals,
)
from labellint.geometry.segmentation import _BATCH, Segmentations, pack_segmentations, summarise
from labellint.geometry.shared import (
    box_columns,
    invalid_polygons,
    rles,
    same_image_overlaps,
    segmentation_shapes,
    segmentations,
)

__all__ = [
    "MALFORMED", "NONE", "POLYGONS", "RLE", "RLE_MAX_RUN", "Pairs", "RleSummary", "Segmentations", "box_columns",
    "box_iou", "classify", "components", "compressed_rle_totals", "decode_raw", "finite_rows", "invalid_polygons",
    "overlapping_pairs", "pack_segmentations", "parse_decimal_ends", "parse_decimals", "polygon_summaries", "rles",
    "same_image_overlaps", "segmentation_shapes", "segmentations", "sort_by_group", "summarise",
    # tuned, or checked on their own, by tests
    "_BATCH", "_FRONT", "_PAD", "_RLE_CHARS_AT_ONCE", "_annotation_shapes", "_compressed_rle_totals",
    "_invalid_polygons", "_uncompressed_total",
]

_PARTS = (boxes, decimals, overlaps, polygons, rle, segmentation, shared)


class _Package(types.ModuleType):
    """A name set on the package (``monkeypatch.setattr(geometry, "_BATCH", 3)``) is set as well
    in each part that holds the same object, where the code that reads it looks it up: setting
    a name behaves as it did when the package was one module."""

    def __setattr__(self, name: str, value) -> None:
        if name in self.__dict__:
            old = self.__dict__[name]
            for part in _PARTS:
                if name in part.__dict__ and part.__dict__[name] is old:
                    setattr(part, name, value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
