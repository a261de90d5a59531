"""Whole-column box arithmetic."""

from __future__ import annotations

import numpy as np


def finite_rows(boxes: np.ndarray) -> np.ndarray:
    """Whether each row of an (n, 4) array (boxes, extents) is all finite: ``np.isfinite(boxes)
    .all(axis=1)``, ten times faster (numpy reduces short rows slowly; here each row's four bools
    are read as one 32-bit word)."""
    finite = np.isfinite(boxes)
    if finite.ndim == 2 and finite.shape[1] == 4 and finite.flags.c_contiguous:
        return finite.view(np.uint32)[:, 0] == 0x01010101
    return finite.all(axis=1)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of two (n, 4) arrays of [x, y, w, h] boxes (0 where the union is empty)."""
    ix = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    iy = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)
