"""Robust statistics shared by the distribution rules (not a rule: the registry skips ``_`` modules)."""

from __future__ import annotations

import numpy as np

from labellint.geometry import sort_by_group

#: (quartile - median) / 0.6745 estimates the standard deviation of a normal distribution on each
#: side; mean absolute deviation * 1.2533 is the fallback when more than a quarter of a group
#: holds the median value itself.
_QUARTILE_TO_SIGMA = 0.6745
_MEAN_ABS_TO_SIGMA = 1.2533


def robust_z(values: np.ndarray, groups: np.ndarray, min_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Robust z-score of each value within its group, and the median of its group.

    z = (value - median) / spread, where the spread is measured on the value's own side of the
    median (upper quartile - median above it, median - lower quartile below it): counts and
    sizes are skewed, and a symmetric spread would flag the long side's ordinary tail.
    z is nan for non-finite values, for groups with fewer than ``min_size`` finite values and
    where all values of a group are equal. ``groups`` are non-negative ints (category rows);
    rows with a negative group are left out. All groups at once: one sort by (group, value).
    """
    z = np.full(len(values), np.nan)
    center = np.full(len(values), np.nan)
    rows = np.flatnonzero(np.isfinite(values) & (groups >= 0))
    if rows.size == 0:
        return z, center
    rows = rows[sort_by_group(groups[rows], values[rows])]
    v, g = values[rows], groups[rows]
    starts = np.flatnonzero(np.concatenate([[True], g[1:] != g[:-1]]))
    sizes = np.diff(np.append(starts, len(v)))

    def quantile(q):
        pos = starts + q * (sizes - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, starts + sizes - 1)
        return v[lo] + (v[hi] - v[lo]) * (pos - lo)

    group_of = np.repeat(np.arange(len(starts)), sizes)
    median = quantile(0.5)
    deviation = v - median[group_of]
    fallback = np.bincount(group_of, weights=np.abs(deviation)) / sizes * _MEAN_ABS_TO_SIGMA
    upper = (quantile(0.75) - median) / _QUARTILE_TO_SIGMA
    lower = (median - quantile(0.25)) / _QUARTILE_TO_SIGMA
    upper = np.where(upper > 0, upper, fallback)
    lower = np.where(lower > 0, lower, fallback)
    spread = np.where(deviation >= 0, upper[group_of], lower[group_of])
    keep = (sizes[group_of] >= min_size) & (spread > 0)
    z[rows[keep]] = deviation[keep] / spread[keep]
    center[rows[keep]] = median[group_of][keep]
    return z, center


def outlier_score(z: np.ndarray, threshold: float) -> np.ndarray:
    """Rank outliers by how extreme they are: 0 at the threshold, rising towards 1."""
    return np.clip(1.0 - threshold / np.maximum(np.abs(z), threshold), 0.0, 1.0)
