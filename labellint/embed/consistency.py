"""Label issues from neighbours: leave-one-out kNN class probabilities, then confident learning.

The recipe is cleanlab Datalab's for classification (out-of-sample kNN ``pred_probs``, per-class
confident thresholds), applied to box crops, with these changes:

* votes are weighted by cosine similarity, so a near-identical crop counts more than the tenth
  neighbour; a little prior (``smoothing`` votes spread by class frequency) keeps probabilities
  away from exactly 0 and 1 when all neighbours agree;
* classes with fewer than ``min_support`` members neither vote nor get judged (reported apart);
* cleanlab's default filter (prune by noise rate: per off-diagonal cell of the calibrated
  confident joint, the boxes with the largest margin) is kept, but only for a positive margin;
  and a box that none of its voting neighbours supports is flagged even when the joint's count
  for its cell ran out (the count is an estimate for a whole class, the zero is about this box),
  with a probe only when the probe's most probable class is another one too;
* the suggested class is the most probable class (for a flagged box, never the given one).

With ``probe=`` (what LL501 does by default), the kNN probabilities are averaged with a second
out-of-sample estimate: :func:`linear_probe`, a softmax regression on the embeddings whose
probabilities for each box come from a model trained on the other folds. Neighbours answer
"which boxes look like this one as a whole"; the probe learns which directions of the embedding
carry the class, which is what small, low-resolution objects need (in a 16-px crop the
background and the lighting dominate the whole): on small distinct objects it raised F1 from
0.55-0.57 to 0.73-0.77, on the chess photos by 0.006-0.047 (benchmarks/README_embed.md, "Small
objects").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Verdict:
    probs: np.ndarray  # (n, C) out-of-sample class probabilities
    thresholds: np.ndarray  # (C,) per-class confident thresholds (mean self-confidence)
    given: np.ndarray  # (n,) class index, -1 for rows not judged
    suggested: np.ndarray  # (n,) class index the evidence prefers (confident class, else argmax)
    flagged: np.ndarray  # (n,) bool: confident learning says the given class is wrong
    joint: np.ndarray  # (C, C) calibrated confident joint (given class, confident class)
    score: np.ndarray  # (n,) 1 - p(given class): how strongly the neighbours disagree
    votes: np.ndarray  # (n, C) how many of the k neighbours carry each class


def knn_probabilities(nbr_idx: np.ndarray, nbr_sim: np.ndarray, labels: np.ndarray, n_classes: int,
                      voters: np.ndarray | None = None, smoothing: float = 1.0):
    """(probabilities (n, C), neighbour counts (n, C)) from each row's neighbours, itself excluded.

    ``labels`` are class indices (-1: no class); ``voters`` masks rows allowed to vote.
    """
    n = len(labels)
    valid = nbr_idx >= 0
    safe = np.where(valid, nbr_idx, 0)
    nbr_label = np.where(valid, labels[safe], -1)
    if voters is not None:
        nbr_label = np.where(valid & voters[safe], nbr_label, -1)
    w = np.where(nbr_label >= 0, np.clip(np.nan_to_num(nbr_sim, nan=0.0), 0.0, None), 0.0).astype(np.float64)
    mass = np.zeros((n, n_classes), np.float64)
    counts = np.zeros((n, n_classes), np.int64)
    rows = np.repeat(np.arange(n), nbr_idx.shape[1])
    cls = nbr_label.ravel()
    keep = cls >= 0
    np.add.at(mass, (rows[keep], cls[keep]), w.ravel()[keep])
    np.add.at(counts, (rows[keep], cls[keep]), 1)
    judged = labels >= 0 if voters is None else (labels >= 0) & voters
    prior = np.bincount(labels[judged], minlength=n_classes).astype(np.float64)
    prior = prior / prior.sum() if prior.sum() else np.full(n_classes, 1.0 / n_classes)
    probs = (mass + smoothing * prior) / (mass.sum(axis=1, keepdims=True) + smoothing)
    return probs, counts


def confident_joint(probs: np.ndarray, given: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, confident class per row or -1, calibrated confident joint) as in Northcutt et al.

    The threshold of class c is the mean probability of c over the rows labelled c. A row is
    confidently of class c when p(c) reaches that threshold; among several, the most probable.
    The joint counts (given class, confident class) and is calibrated so that each row sums to
    the number of boxes with that given class (rows with no confident class still count).
    """
    n, c = probs.shape
    judged = given >= 0
    counts = np.bincount(given[judged], minlength=c)
    thresholds = np.ones(c)
    for j in np.flatnonzero(counts).tolist():
        thresholds[j] = probs[judged & (given == j), j].mean()
    above = probs >= thresholds[None, :] - 1e-6
    confident = np.where(above.any(axis=1), np.where(above, probs, -1.0).argmax(axis=1), -1)
    ok = judged & (confident >= 0)
    joint = np.zeros((c, c))
    np.add.at(joint, (given[ok], confident[ok]), 1.0)
    rows = joint.sum(axis=1, keepdims=True)
    calibrated = np.where(rows > 0, joint / np.where(rows > 0, rows, 1.0) * counts[:, None], 0.0)
    if calibrated.sum() > 0:
        calibrated *= counts.sum() / calibrated.sum()
    return thresholds, confident, _round_keeping_rows(calibrated)


def _round_keeping_rows(m: np.ndarray) -> np.ndarray:
    """Round to integers so that each row keeps its (rounded) total: largest remainders win."""
    floor = np.floor(m).astype(np.int64)
    short = np.round(m.sum(axis=1)).astype(np.int64) - floor.sum(axis=1)
    rest = m - floor
    for i in np.flatnonzero(short > 0).tolist():
        floor[i, np.argsort(-rest[i], kind="stable")[:short[i]]] += 1
    return floor


def prune_by_noise_rate(probs: np.ndarray, given: np.ndarray, joint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flagged, class that flagged it): cleanlab's default filter.

    For every off-diagonal cell (given y, true c) of the calibrated joint, the boxes labelled y
    with the largest margin p(c) - p(y) are flagged, as many as the cell counts but only where the
    margin is positive. Boxes whose most probable class is their given class are never flagged.
    """
    n, c = probs.shape
    flagged = np.zeros(n, bool)
    best_margin = np.full(n, -np.inf)
    because = np.full(n, -1, np.int64)
    for y in range(c):
        members = np.flatnonzero(given == y)
        if len(members) <= 1:
            continue
        for t in np.flatnonzero(joint[y]).tolist():
            if t == y:
                continue
            margin = probs[members, t] - probs[members, y]
            top = members[np.argsort(-margin, kind="stable")[: joint[y, t]]]
            top = top[probs[top, t] > probs[top, y]]  # never for a class less likely than the given one
            flagged[top] = True
            m = probs[top, t] - probs[top, y]
            better = m > best_margin[top]
            because[top[better]] = t
            best_margin[top[better]] = m[better]
    judged = given >= 0
    flagged &= judged & (probs.argmax(axis=1) != np.where(judged, given, -1))
    return flagged, because


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _fit_softmax(x: np.ndarray, y: np.ndarray, n_classes: int, l2: float, steps: int, lr: float):
    """(weights, bias) of an L2-regularised softmax regression, full-batch Adam from zero."""
    n, d = x.shape
    w, b = np.zeros((d, n_classes), x.dtype), np.zeros(n_classes, x.dtype)
    onehot = np.eye(n_classes, dtype=x.dtype)[y]
    m = [np.zeros_like(w), np.zeros_like(b)]
    v = [np.zeros_like(w), np.zeros_like(b)]
    for t in range(1, steps + 1):
        g = (_softmax(x @ w + b) - onehot) / n
        grads = (x.T @ g + l2 * w, g.sum(axis=0))
        step = lr * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        for j, (param, grad) in enumerate(zip((w, b), grads)):
            m[j] = 0.9 * m[j] + 0.1 * grad
            v[j] = 0.999 * v[j] + 0.001 * grad * grad
            param -= (step * m[j] / (np.sqrt(v[j]) + 1e-8)).astype(x.dtype)
    return w, b


#: below this many judged boxes the probe is not fitted (five folds of a handful of boxes are noise)
PROBE_MIN_BOXES = 50
#: the probe's L2 strengths, one chosen per dataset (see :func:`linear_probe`)
PROBE_L2 = (1e-3, 1e-2, 1e-1)


def _log_loss(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-9, 1.0)).mean())


def linear_probe(features: np.ndarray, labels: np.ndarray, n_classes: int, folds: int = 5,
                 l2: float | tuple[float, ...] = PROBE_L2, steps: int = 300, lr: float = 0.05, seed: int = 0,
                 max_train: int = 50_000) -> np.ndarray:
    """(n, C) out-of-fold class probabilities of a softmax regression on ``features``.

    The rows with a label (0 <= label < C) are split into ``folds`` seeded random folds; each
    fold's probabilities come from a model fitted on the other folds, so no box votes for its own
    label. Rows without a label (-1) get the mean of the fold models' probabilities. Features are
    L2-normalised, centred and scaled by sqrt(dim) (about unit variance per component), so that
    ``l2`` and ``lr`` do not depend on the backbone's scale. float32, numpy only.

    ``l2`` may be several strengths: each is fitted on the first fold's training rows, and the one
    whose probabilities for the first fold's (held-out) labels have the lowest log-loss is used
    for every fold. The labels are the ones under review, mostly right, so this picks the model
    that predicts them best out of sample. ``max_train``: at most this many training rows per
    fold (a seeded sample), which bounds the cost on large sets.
    """
    x = _unit_rows(features)
    x -= x.mean(axis=0)
    x *= np.float32(np.sqrt(x.shape[1]))
    labels = np.asarray(labels)
    n = len(labels)
    probs = np.full((n, n_classes), 1.0 / max(1, n_classes))
    known = np.flatnonzero((labels >= 0) & (labels < n_classes))
    unknown = np.setdiff1d(np.arange(n), known)
    if len(known) == 0:
        return probs
    folds = max(2, min(int(folds), len(known)))
    rng = np.random.default_rng(seed)
    fold = rng.permutation(len(known)) % folds
    if len(unknown):
        probs[unknown] = 0.0
    strengths = tuple(l2) if isinstance(l2, (tuple, list)) else (float(l2),)
    chosen = None
    for f in range(folds):
        train, test = known[fold != f], known[fold == f]
        if len(train) > max_train:
            train = np.sort(rng.choice(train, size=max_train, replace=False))
        if chosen is None:
            fits = [_fit_softmax(x[train], labels[train], n_classes, s, steps, lr) for s in strengths]
            losses = [_log_loss(_softmax(x[test] @ w + b), labels[test]) for w, b in fits]
            chosen = strengths[int(np.argmin(losses))]
            w, b = fits[int(np.argmin(losses))]
        else:
            w, b = _fit_softmax(x[train], labels[train], n_classes, chosen, steps, lr)
        probs[test] = _softmax(x[test] @ w + b)
        if len(unknown):
            probs[unknown] += _softmax(x[unknown] @ w + b) / folds
    return probs


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def judged_rows(labels: np.ndarray, n_classes: int, min_support: int) -> tuple[np.ndarray, np.ndarray]:
    """(members per class, mask of the rows judged): a class needs ``min_support`` members."""
    labels = np.asarray(labels)
    support = np.bincount(labels[labels >= 0], minlength=n_classes)
    return support, (labels >= 0) & (support[np.clip(labels, 0, None)] >= min_support)


def judge(nbr_idx, nbr_sim, labels: np.ndarray, n_classes: int, min_support: int = 10,
          smoothing: float = 1.0, probe: np.ndarray | None = None) -> Verdict:
    """Everything the class-consistency rule reports, for rows with labels in [0, n_classes).

    ``probe``: other out-of-sample (n, C) class probabilities (:func:`linear_probe`), averaged
    with the kNN's before confident learning; None: the kNN's alone."""
    support, judged = judged_rows(labels, n_classes, min_support)
    probs, counts = knn_probabilities(nbr_idx, nbr_sim, labels, n_classes, voters=judged, smoothing=smoothing)
    if probe is not None:
        probe = np.where(support[None, :] >= min_support, np.asarray(probe, np.float64), 0.0)
        total = probe.sum(axis=1, keepdims=True)
        probs = (probs + probe / np.where(total > 0, total, 1.0)) / 2.0
        probe_says = np.where(support[None, :] >= min_support, probe, -1.0).argmax(axis=1)
    small = support < min_support
    probs[:, small] = 0.0  # too-small classes are neither voted for nor suggested
    total = probs.sum(axis=1, keepdims=True)
    probs = probs / np.where(total > 0, total, 1.0)
    given = np.where(judged, labels, -1)
    thresholds, confident, joint = confident_joint(probs, given)
    flagged, because = prune_by_noise_rate(probs, given, joint)
    # The joint's counts are estimates for whole classes and can run short; a box that not one of
    # its (enough) voting neighbours supports is flagged on its own evidence (with a probe, only
    # when the probe's most probable class is another one as well: on small objects many sound
    # boxes have no neighbour of their class, and the probe tells them apart).
    rows = np.arange(len(labels))
    voting = counts.sum(axis=1)
    unsupported = judged & (counts[rows, np.clip(given, 0, None)] == 0) \
        & (voting >= max(3, (nbr_idx.shape[1] + 1) // 2)) & (probs.argmax(axis=1) != given)
    if probe is not None:  # the probe, a second view, must disagree with the given class too
        unsupported &= probe_says != given
    flagged |= unsupported
    other = probs.copy()
    other[np.arange(len(labels))[judged], given[judged]] = -1.0
    # the suggestion: the most probable class other than the given one (for a flagged box, the
    # most probable class of all)
    suggested = other.argmax(axis=1)
    score = np.where(judged, 1.0 - probs[np.arange(len(labels)), np.clip(given, 0, None)], 0.0)
    return Verdict(probs, thresholds, given, suggested, flagged, joint, score, counts)
