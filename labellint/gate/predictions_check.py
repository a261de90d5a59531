"""Predictions checked against a ground truth: one-line errors for what evaluation cannot take."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from labellint.errors import InputError

if TYPE_CHECKING:
    from labellint.gate.predictions import Predictions


@dataclass
class GroundTruthIndex:
    """What checking predictions against a ground truth needs to know about it."""

    path: str
    image_ids: np.ndarray  # int64, sorted
    widths: np.ndarray  # aligned with image_ids
    heights: np.ndarray
    category_ids: np.ndarray  # int64, sorted


def check_against(pred: Predictions, gt: GroundTruthIndex, iou_type: str = "bbox") -> None:
    """Raise a one-line InputError when the predictions cannot be evaluated on this ground truth."""
    path = pred.path
    n = len(pred)
    if n == 0:
        return
    pos = np.searchsorted(gt.image_ids, pred.image_id)
    pos_c = np.minimum(pos, max(len(gt.image_ids) - 1, 0))
    known = (len(gt.image_ids) > 0) & (gt.image_ids[pos_c] == pred.image_id) if len(gt.image_ids) else \
        np.zeros(n, bool)
    if not known.all():
        bad = np.unique(pred.image_id[~known])
        i = int(np.flatnonzero(~known)[0])
        raise InputError(f"detection {i} is on image_id {int(pred.image_id[i])}, which is not an image of {gt.path} "
                         f"({int((~known).sum())} detections on {len(bad)} unknown image"
                         f"{'s' * (len(bad) != 1)}; predictions must be made on the ground truth's images)", path)
    cat_known = np.isin(pred.category_id, gt.category_ids)
    if not cat_known.all():
        bad = np.unique(pred.category_id[~cat_known])
        i = int(np.flatnonzero(~cat_known)[0])
        shown = ", ".join(str(int(c)) for c in bad[:5]) + (", ..." if len(bad) > 5 else "")
        raise InputError(f"detection {i} has category_id {int(pred.category_id[i])}, which is not a category of "
                         f"{gt.path} (unknown: {shown}; map the model's labels back to the dataset's ids)", path)
    if iou_type == "segm":
        if not pred.has_segmentation:
            i = 0 if pred.segmentation is None else next(k for k, s in enumerate(pred.segmentation) if not len(s))
            raise InputError(f'detection {i} has no "segmentation": --iou-type segm needs mask results', path)
        return
    if not pred.has_boxes:
        i = int(np.flatnonzero(~np.isfinite(pred.bbox).all(axis=1))[0])
        raise InputError(f'detection {i} (image_id {int(pred.image_id[i])}) has no "bbox"', path)
    _check_box_format(pred, gt, pos_c)


def _check_box_format(pred: Predictions, gt: GroundTruthIndex, image_pos: np.ndarray) -> None:
    bbox = pred.bbox
    x, y, w, h = bbox[:, 0], bbox[:, 1], bbox[:, 2], bbox[:, 3]
    path = pred.path
    neg = (w < 0) | (h < 0)
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        hint = ""
        if (x[neg] > x[neg] + w[neg]).all():
            hint = " (the boxes look like [x1, y1, x2, y2] with x2 < x1?)"
        raise InputError(f"detection {i} (image_id {int(pred.image_id[i])}): bbox {pred.bbox[i].tolist()} has a "
                         f"negative width or height; COCO boxes are [x, y, width, height]{hint}", path)
    # per image first (a few thousand), then gathered per detection
    gw, gh = gt.widths, gt.heights
    with np.errstate(invalid="ignore"):
        sized_image = np.isfinite(gw) & np.isfinite(gh) & (gw > 2) & (gh > 2)
    if not len(gw) or not sized_image.any():
        return
    sized = sized_image[image_pos]
    every = bool(sized.all())
    if not every and not sized.any():
        return

    def pick(a):
        return a if every else a[sized]

    xs, ys, ws, hs = pick(x), pick(y), pick(w), pick(h)
    right, bottom = xs + ws, ys + hs
    # Normalised boxes: every coordinate within [0, 1] on images that are many pixels wide.
    if len(xs) >= 5 and max(xs.max(), ys.max(), right.max(), bottom.max()) <= 1.0 and \
            np.median(pick(gw[image_pos])) > 16:
        raise InputError("every bbox lies within [0, 1]: the boxes look normalised; COCO results use pixel "
                         "[x, y, width, height]", path)
    # Corner boxes: many boxes overflow their image as [x, y, w, h] but fit as [x1, y1, x2, y2].
    tol = 0.05 * np.maximum(gw, gh) + 2
    lim_w, lim_h = pick((gw + tol)[image_pos]), pick((gh + tol)[image_pos])
    overflow = (right > lim_w) | (bottom > lim_h)
    n_over = int(np.count_nonzero(overflow))
    if n_over < max(3, 0.2 * len(xs)):
        return
    o = np.flatnonzero(overflow)
    wo, ho = ws[o], hs[o]
    if ((wo >= xs[o]) & (ho >= ys[o]) & (wo <= lim_w[o]) & (ho <= lim_h[o])).all():
        i = int(np.flatnonzero(sized)[o[0]])
        raise InputError(f"{n_over} of {len(xs)} boxes extend past their image as [x, y, width, height] "
                         f"but fit as [x1, y1, x2, y2] (detection {i}: {pred.bbox[i].tolist()}); convert them: "
                         "width = x2 - x1, height = y2 - y1", path)
