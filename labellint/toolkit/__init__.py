"""The toolkit for rules: what a rule may use besides numpy, the standard library and the rule
contract (:mod:`labellint.findings`: Problem, Fix, set_field, delete, Severity).

A rule imports from here and nowhere else in labellint (a test checks it), so that the engine's
subsystems can change shape without touching 44 rules, and a helper two rules need lives here
once. What is here:

* the Dataset's vocabulary: ``MISSING_ID``, ``idvalues`` (how ids are shown and compared),
  ``class_label`` (a class name for an annotation, its id when it has no class);
* boxes and shapes (``geometry``): ``box_columns``, ``finite_rows``, overlaps, segmentation
  summaries, RLE checks;
* statistics (:mod:`labellint.toolkit.stats`): ``robust_z``, ``outlier_score``,
  ``class_outliers``;
* ids (:mod:`labellint.toolkit.ids`): ``repeated_rows``, ``annotation_repeats``,
  ``fresh_annotation_ids``;
* fix builders: ``values`` (areas, polygons, entries as the file holds them), ``drop_image``,
  ``area_is_box``, ``clip_safety``;
* the passes' vocabulary: ``images`` (ImageInfo statuses, perceptual hashes), ``embeddings``,
  ``request_crops``, ``nearest_neighbours``, ``judge`` (the LL5xx pieces, imported when first used:
  onnxruntime and hnswlib load only when an embedding rule runs), ``objectlab`` (model-based
  scores over the run's predictions);
* the run: ``limit`` (labellint.limits), ``Phases`` (progress of a long step),
  ``capped_images`` (the note for an image whose overlap search hit its budget).
"""

from __future__ import annotations

import numpy as np

from labellint import geometry, images, limits
from labellint.coco import MISSING_ID, idvalues
from labellint.findings import Problem, Severity
from labellint.fix import values
from labellint.fix.values import area_is_box, drop_image
from labellint.gate import objectlab
from labellint.geometry import box_columns, finite_rows
from labellint.progress import Phases
from labellint.toolkit.ids import annotation_repeats, fresh_annotation_ids, repeated_rows
from labellint.toolkit.stats import class_outliers, outlier_score, robust_z

#: A clip (of a box, of polygons) is a safe fix when it keeps at least this share of the shape:
#: less, and the object probably lies elsewhere, which a reviewer should look at.
KEEP_SAFE = 0.5


def clip_safety(kept: float) -> str:
    """The rating of a clip fix that keeps ``kept`` (0..1) of the shape."""
    return "safe" if kept >= KEEP_SAFE else "unsafe"


def limit(name: str) -> int:
    """The value of one of :mod:`labellint.limits` (its environment variable or the default)."""
    return limits.get(name)


def class_label(ds, row: int) -> str:
    """The class name of annotation ``row``, or ``#<category_id>`` when no category has that id."""
    crow = int(ds.ann_category_row[row])
    return ds.category_name(crow) if crow >= 0 else f"#{int(ds.annotations.category_id[row])}"


def capped_images(ds, image_rows, what: str):
    """One warning per image whose overlap search stopped at its budget (LL201, LL202)."""
    per_box = limits.get("max_overlap_pairs_per_box")
    counts = np.bincount(ds.ann_image_row[ds.ann_image_row >= 0], minlength=len(ds.images))
    for row in image_rows.tolist():
        yield Problem(f"{int(counts[row])} boxes overlap so much that the search for {what} on this image stopped "
                      f"after {per_box} pairs per box (the limit LABELLINT_MAX_OVERLAP_PAIRS_PER_BOX): some may be "
                      "missing", image=row, severity=Severity.WARNING, score=0.0, key="search-stopped")


# -- embeddings: the modules load when first asked for ---------------------------------------------

def request_crops(ds, crop_context: float, context):
    """Ask the images pass for every box's crop with this much context, embedded (a rule's
    ``prepare`` hook)."""
    from labellint import embed

    return embed.request(ds, crop_context, context)


def embeddings(ds, crop_context: float, context):
    """(Embedder, annotation rows, annotation ids, vectors) of the crops :func:`request_crops` asked for."""
    from labellint import embed

    return embed.embeddings(ds, crop_context, context)


def nearest_neighbours(vectors, k: int, groups=None, device: str = "auto", progress=None):
    """The ``k`` nearest neighbours of every vector (labellint.embed.knn.neighbours)."""
    from labellint.embed import knn

    return knn.neighbours(vectors, k, groups, device=device, progress=progress)


def judge(index, similarity, classes, n_classes: int, min_support: int, vectors=None):
    """Class probabilities from the neighbours' classes (labellint.embed.consistency.judge); with
    ``vectors``, averaged with a cross-validated linear probe's on them (fitted on the classes with
    at least ``min_support`` boxes, and only when they hold PROBE_MIN_BOXES boxes or more)."""
    import numpy as np

    from labellint.embed import consistency

    _, judged = consistency.judged_rows(classes, n_classes, min_support)
    probe = None
    if vectors is not None and judged.sum() >= consistency.PROBE_MIN_BOXES:
        probe = consistency.linear_probe(vectors, np.where(judged, classes, -1), n_classes)
    return consistency.judge(index, similarity, classes, n_classes, min_support=min_support, probe=probe)


__all__ = ["KEEP_SAFE", "MISSING_ID", "Phases", "annotation_repeats", "area_is_box", "box_columns", "capped_images",
           "class_label", "class_outliers", "clip_safety", "drop_image", "embeddings", "finite_rows",
           "fresh_annotation_ids", "geometry", "idvalues", "images", "judge", "limit", "nearest_neighbours", "objectlab",
           "outlier_score", "repeated_rows", "request_crops", "robust_z", "values"]
