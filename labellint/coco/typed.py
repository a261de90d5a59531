"""The typed decode: msgspec Structs of the declared fields (labellint.coco.fields), then columns.

Any value of the wrong type fails it (:class:`TypedFailed`), and the tolerant path reads the file
instead. Segmentation is not decoded here: rules that want it get a column that decodes it on
first use (:func:`decode_segmentations`).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from itertools import chain

import msgspec
import numpy as np

from labellint.coco.dataset import Categories, Images
from labellint.coco.fields import document_struct, float_columns, typed_columns, typed_struct
from labellint.coco.gcpause import gc_paused

_Annotation = typed_struct("_Annotation", "annotations")
_Doc = document_struct("_Doc", {"images": typed_struct("_Image", "images"), "annotations": _Annotation,
                                "categories": typed_struct("_Category", "categories")})


class _SegmentationOnly(msgspec.Struct, gc=False):
    segmentation: msgspec.Raw = msgspec.Raw()


class _SegmentationDoc(msgspec.Struct):
    annotations: list[_SegmentationOnly] = []


doc_decoder = msgspec.json.Decoder(_Doc)
_segmentation_decoder = msgspec.json.Decoder(_SegmentationDoc)


def image_columns(items: list) -> Images:
    return Images(**typed_columns("images", items))


def category_columns(items: list) -> Categories:
    return Categories(**typed_columns("categories", items))


def annotation_columns(items: list) -> dict[str, np.ndarray]:
    return typed_columns("annotations", items)


@dataclass
class Typed:
    """What the typed decode produced, before it becomes a Dataset."""

    images: Images | None = None
    annotations: list[dict] = field(default_factory=list)  # column parts, in file order
    categories: Categories | None = None
    has_annotations: bool = False
    layout: dict = field(default_factory=dict)  # hints for positions.py


class TypedFailed(Exception):
    """The typed decode cannot represent this file: the tolerant path must read it."""


def typed_from_doc(doc) -> Typed:
    """The columns of a decoded document (a _Doc, or a Struct with its fields)."""
    out = Typed()
    if doc.images is not msgspec.UNSET:
        out.images = image_columns(doc.images)
    if doc.annotations is not msgspec.UNSET:
        out.annotations.append(annotation_columns(doc.annotations))
        out.has_annotations = True
    if doc.categories is not msgspec.UNSET:
        out.categories = category_columns(doc.categories)
    return out


def decode_serial(buf) -> Typed:
    try:
        doc = doc_decoder.decode(buf)
        return typed_from_doc(doc)
    except (msgspec.ValidationError, msgspec.DecodeError, OverflowError) as exc:
        # OverflowError: an integer beyond int64, which the tolerant path reports
        raise TypedFailed from exc


def finish_typed(t: Typed) -> tuple[Images, dict, Categories, dict]:
    images = t.images if t.images is not None else image_columns([])
    categories = t.categories if t.categories is not None else category_columns([])
    parts = t.annotations or [annotation_columns([])]
    ann = parts[0] if len(parts) == 1 else {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    # strict JSON has no Infinity, but 1e999 overflows to it: let the tolerant path report that
    floats = chain((getattr(images, k) for k in float_columns("images")), (ann[k] for k in float_columns("annotations")),
                   (getattr(categories, k) for k in float_columns("categories")))
    if any(np.isinf(a).any() for a in floats):
        raise TypedFailed
    sections = {"images": "array"} if t.images is not None else {}
    if t.has_annotations:
        sections["annotations"] = "array"
    if t.categories is not None:
        sections["categories"] = "array"
    return images, ann, categories, sections


def decode_segmentations(buf) -> list:
    """Every annotation's segmentation as msgspec.Raw (an empty one when absent), in file order.

    All items are Raw, so that callers can treat them in bulk (labellint.geometry joins them)."""
    with gc_paused():
        return list(map(operator.attrgetter("segmentation"), _segmentation_decoder.decode(buf).annotations))
