"""Robust statistics shared by the distribution rules."""

from __future__ import annotations

import numpy as np

from labellint.geometry import sort_by_group

#: (quartile - median) / 0.6745 estimates the standard deviation of a normal distribution on each
#: side; mean absolute deviation * 1.2533 is the fallback when more than a quarter of a group
#: holds the median value itself.
_QUARTILE_TO_SIGMA = 0.6745
_MEAN_ABS_TO_SIGMA = 1.2533


#: Up to this many groups, each group's quartiles come from np.partition of its values (no sort of
#: all values, several times faster); above it, one sort by (group, value) does all groups.
_PARTITION_MAX_GROUPS = 1024


def robust_z(values: np.ndarray, groups: np.ndarray, min_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Robust z-score of each value within its group, and the median of its group.

    z = (value - median) / spread, where the spread is measured on the value's own side of the
    median (upper quartile - median above it, median - lower quartile below it): counts and
    sizes are skewed, and a symmetric spread would flag the long side's ordinary tail.
    z is nan for non-finite values, for groups with fewer than ``min_size`` finite values and
    where all values of a group are equal. ``groups`` are non-negative ints (category rows);
    rows with a negative group are left out.
    """
    usable = np.isfinite(values) & (groups >= 0)
    if not usable.any():
        return np.full(len(values), np.nan), np.full(len(values), np.nan)
    # the usual case, every value usable, needs no gather of rows nor scatter of results
    rows = None if usable.all() else np.flatnonzero(usable)
    g = groups if rows is None else groups[rows]
    v = values if rows is None else values[rows]
    top = int(g.max())
    if top >= _PARTITION_MAX_GROUPS:
        z, center = np.full(len(values), np.nan), np.full(len(values), np.nan)
        _robust_z_sorted(values, np.arange(len(values)) if rows is None else rows, g, min_size, z, center)
        return z, center
    sizes = np.bincount(g, minlength=top + 1)
    big = np.flatnonzero((sizes > 0) & (sizes >= min_size))
    if big.size == 0:
        return np.full(len(values), np.nan), np.full(len(values), np.nan)
    # each group's values together (a radix sort of small ints), then its order statistics
    order = np.argsort(g.astype(np.uint16), kind="stable")
    grouped = v[order]
    starts = np.cumsum(sizes) - sizes
    n = sizes[big]
    quartiles = (0.25, 0.5, 0.75)
    pos = [q * (n - 1) for q in quartiles]  # exact: quarters of integers
    lo = [np.floor(p).astype(np.int64) for p in pos]
    hi = [np.minimum(low + 1, n - 1) for low in lo]
    at_lo = [np.empty(len(big)) for _ in quartiles]
    at_hi = [np.empty(len(big)) for _ in quartiles]
    for k, group in enumerate(big.tolist()):
        part = grouped[starts[group]:starts[group] + sizes[group]]
        ranks = [(int(low[k]), int(high[k])) for low, high in zip(lo, hi)]
        part = np.partition(part, sorted({r for pair in ranks for r in pair}))
        for j, (low, high) in enumerate(ranks):
            at_lo[j][k], at_hi[j][k] = part[low], part[high]
    q25, median, q75 = (a + (b - a) * (p - low) for a, b, p, low in zip(at_lo, at_hi, pos, lo))
    upper = (q75 - median) / _QUARTILE_TO_SIGMA
    lower = (median - q25) / _QUARTILE_TO_SIGMA
    fallback = np.zeros(len(big))
    for k in np.flatnonzero((upper <= 0) | (lower <= 0)).tolist():
        # the mean absolute deviation, summed in ascending order of the values
        part = np.sort(grouped[starts[big[k]]:starts[big[k]] + n[k]])
        total = np.bincount(np.zeros(n[k], np.intp), weights=np.abs(part - median[k]))
        fallback[k] = (total / n[k] * _MEAN_ABS_TO_SIGMA)[0]
    upper = np.where(upper > 0, upper, fallback)
    lower = np.where(lower > 0, lower, fallback)
    index = np.full(top + 1, -1)
    index[big] = np.arange(len(big))
    slot = index[g]
    in_big = slot >= 0
    if not in_big.all():  # rows of groups too small get no z
        rows = np.flatnonzero(in_big) if rows is None else rows[in_big]
        slot, v = slot[in_big], v[in_big]
    center = median[slot]
    deviation = v - center
    spread = np.where(deviation >= 0, upper[slot], lower[slot])
    keep = spread > 0
    if rows is None and keep.all():
        return deviation / spread, center
    z, out_center = np.full(len(values), np.nan), np.full(len(values), np.nan)
    if rows is None:
        rows = np.arange(len(values))
    z[rows[keep]] = deviation[keep] / spread[keep]
    out_center[rows[keep]] = center[keep]
    return z, out_center


def _robust_z_sorted(values, rows, g, min_size, z, center) -> None:
    """robust_z for many groups: all at once, one sort by (group, value)."""
    order = sort_by_group(g, values[rows])
    rows = rows[order]
    v, g = values[rows], g[order]
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


def outlier_score(z: np.ndarray, threshold: float) -> np.ndarray:
    """Rank outliers by how extreme they are: 0 at the threshold, rising towards 1."""
    return np.clip(1.0 - threshold / np.maximum(np.abs(z), threshold), 0.0, 1.0)


def class_outliers(values: np.ndarray, ds, threshold: float, min_class_size: int,
                   min_factor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Annotations whose ``values`` (a log measure: log side, log aspect ratio) lie far from
    their class's: robust z beyond ``threshold`` and at least ``min_factor`` from the median.
    Returns (flagged rows, z and class median of every annotation, score of each flagged one)."""
    z, median = robust_z(values, ds.ann_category_row, min_class_size)
    with np.errstate(invalid="ignore"):
        flagged = np.flatnonzero((np.abs(z) > threshold) & (np.abs(values - median) >= min_factor))
    return flagged, z, median, outlier_score(z[flagged], threshold)
