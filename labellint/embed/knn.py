"""k nearest neighbours by cosine similarity: exact (numpy) for small sets, hnswlib above, and
exact on a GPU at any size when torch sees CUDA.

The HNSW search breadth ``ef`` is not a guess: it is raised until the recall measured against
exact search on a sample of queries reaches ``target_recall``. On a GPU the all-pairs product is
cheap (1M x 1M x 512 is 5e14 multiply-adds: tens of seconds on one data-centre GPU, hours on two
CPU cores), so there the search is exact whatever the data: recall 1, no graph to build.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Up to this many vectors exact search is cheaper than building an HNSW graph. Measured on 2
#: cores, 1280-d clustered vectors, all 10-NN: exact 2.0 s / 4.4 s / 19.6 s for 5k / 10k / 20k,
#: HNSW (M 16, ef_construction 200, build + query) 7.0 s / 13.4 s / 41 s; 40k: HNSW 92 s, exact
#: about 80 s (quadratic). See benchmarks/README_embed.md.
EXACT_BELOW = 40_000
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 200


@dataclass
class Neighbours:
    index: np.ndarray  # (n, k) int64 row of each neighbour, -1 where there are fewer than k
    similarity: np.ndarray  # (n, k) float32 cosine similarity, nan where index is -1
    method: str = "exact"
    ef: int | None = None
    recall: float | None = None  # measured on a sample, for hnsw


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def _exact_rows(x: np.ndarray, rows: np.ndarray, k: int, groups, block: int = 1024):
    n = len(x)
    idx = np.full((len(rows), k), -1, np.int64)
    sim = np.full((len(rows), k), np.nan, np.float32)
    for start in range(0, len(rows), block):
        q = rows[start:start + block]
        s = x[q] @ x.T
        s[np.arange(len(q)), q] = -np.inf
        if groups is not None:
            s[groups[q][:, None] == groups[None, :]] = -np.inf
        kk = min(k, n - 1)
        if kk <= 0:
            continue
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        ps = np.take_along_axis(s, part, axis=1)
        order = np.argsort(-ps, axis=1, kind="stable")
        part, ps = np.take_along_axis(part, order, 1), np.take_along_axis(ps, order, 1)
        ok = np.isfinite(ps)
        idx[start:start + len(q), :kk] = np.where(ok, part, -1)
        sim[start:start + len(q), :kk] = np.where(ok, ps, np.nan)
    return idx, sim


def _exact_rows_torch(x: np.ndarray, rows: np.ndarray, k: int, groups, device: str, block: int = 1024):
    """As _exact_rows, with torch on ``device`` (blocked matmul and topk; the same results as
    numpy up to float32 rounding among near-equal similarities)."""
    import torch

    n = len(x)
    kk = min(k, n - 1)
    idx = np.full((len(rows), k), -1, np.int64)
    sim = np.full((len(rows), k), np.nan, np.float32)
    if kk <= 0:
        return idx, sim
    with torch.no_grad():
        xt = torch.from_numpy(np.ascontiguousarray(x)).to(device)
        gt = None if groups is None else torch.from_numpy(np.asarray(groups, np.int64)).to(device)
        for start in range(0, len(rows), block):
            q = torch.from_numpy(rows[start:start + block]).to(device)
            s = xt[q] @ xt.T
            s[torch.arange(len(q), device=device), q] = -torch.inf
            if gt is not None:
                s[gt[q][:, None] == gt[None, :]] = -torch.inf
            ps, part = torch.topk(s, kk, dim=1)  # sorted, largest first
            ps, part = ps.cpu().numpy(), part.cpu().numpy()
            ok = np.isfinite(ps)
            idx[start:start + len(q), :kk] = np.where(ok, part, -1)
            sim[start:start + len(q), :kk] = np.where(ok, ps, np.nan)
    return idx, sim


def gpu_device(device: str = "auto") -> str | None:
    """``"cuda"`` when the search should run on a GPU: asked for (or ``auto``), torch installed and
    a CUDA device visible. torch is imported only if it is installed."""
    if device not in ("auto", "cuda"):
        return None
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    return "cuda" if torch.cuda.is_available() else None


def exact(x: np.ndarray, k: int, groups=None) -> Neighbours:
    x = normalise(x)
    idx, sim = _exact_rows(x, np.arange(len(x)), k, groups)
    return Neighbours(idx, sim, "exact")


def build_hnsw(x: np.ndarray, m: int = HNSW_M, ef_construction: int = HNSW_EF_CONSTRUCTION, threads: int = -1,
               seed: int = 100):
    import hnswlib

    index = hnswlib.Index(space="cosine", dim=x.shape[1])
    index.init_index(max_elements=len(x), ef_construction=ef_construction, M=m, random_seed=seed)
    index.add_items(x, np.arange(len(x)), num_threads=threads)
    return index


def tune_ef(index, x: np.ndarray, k: int, target_recall: float, sample: int = 256, seed: int = 0,
            threads: int = -1, ef_max: int = 2048) -> tuple[int, float]:
    """The smallest ef (doubling from 2k) whose recall@k on a sample reaches ``target_recall``."""
    rng = np.random.default_rng(seed)
    q = rng.choice(len(x), size=min(sample, len(x)), replace=False)
    kk = min(k, len(x))
    truth = np.argpartition(-(x[q] @ x.T), kk - 1, axis=1)[:, :kk]
    ef = max(2 * kk, 16)
    while True:
        index.set_ef(ef)
        labels, _ = index.knn_query(x[q], k=kk, num_threads=threads)
        recall = float(np.mean([len(set(a) & set(b)) / kk for a, b in zip(labels.tolist(), truth.tolist())]))
        if recall >= target_recall or ef >= ef_max:
            return ef, recall
        ef *= 2


def neighbours(x: np.ndarray, k: int, groups=None, *, exact_below: int = EXACT_BELOW,
               target_recall: float = 0.98, threads: int = -1, device: str = "auto") -> Neighbours:
    """The k most similar other rows of every row; rows sharing a ``groups`` value are skipped.
    ``device``: ``auto`` or ``cuda`` searches exactly on a GPU when torch sees one."""
    x = normalise(x)
    n = len(x)
    groups = None if groups is None else np.asarray(groups)
    gpu = gpu_device(device) if n > exact_below else None
    if gpu is not None:
        idx, sim = _exact_rows_torch(x, np.arange(n), k, groups, gpu)
        return Neighbours(idx, sim, "exact-gpu", recall=1.0)
    if n <= exact_below:
        idx, sim = _exact_rows(x, np.arange(n), k, groups)
        return Neighbours(idx, sim, "exact")
    extra = 1
    if groups is not None:
        _, counts = np.unique(groups, return_counts=True)
        extra += int(min(counts.max() - 1, 2 * k))
    want = min(n, k + extra)
    index = build_hnsw(x, threads=threads)
    ef, recall = tune_ef(index, x, want, target_recall, threads=threads)
    index.set_ef(max(ef, want))
    labels, dist = index.knn_query(x, k=want, num_threads=threads)
    labels = labels.astype(np.int64)
    sims = (1.0 - dist).astype(np.float32)
    bad = labels == np.arange(n)[:, None]
    if groups is not None:
        bad |= groups[labels] == groups[:, None]
    idx = np.full((n, k), -1, np.int64)
    sim = np.full((n, k), np.nan, np.float32)
    order = np.argsort(bad, axis=1, kind="stable")  # good ones first, keeping similarity order
    labels, sims, bad = (np.take_along_axis(a, order, 1) for a in (labels, sims, bad))
    kk = min(k, want)
    idx[:, :kk] = np.where(bad[:, :kk], -1, labels[:, :kk])
    sim[:, :kk] = np.where(bad[:, :kk], np.nan, sims[:, :kk])
    short = np.flatnonzero((idx < 0).any(axis=1) & ((~bad).sum(axis=1) < min(k, n - 1)))
    if len(short):  # too many same-group hits among the candidates: exact search for those rows
        idx[short], sim[short] = _exact_rows(x, short, k, groups)
    return Neighbours(idx, sim, "hnsw", ef, recall)
