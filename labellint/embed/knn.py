"""k nearest neighbours by cosine similarity: exact search where it is affordable, hnswlib above.

Exact search runs in one of three ways, all with the same results: numpy (float32 products);
torch on the CPU, where an int8 product (VNNI on x86) picks candidates and float32 re-ranks them
(8-11x numpy on 2 cores, so exact search stays the cheaper choice up to 100k vectors rather
than 40k); and torch on a GPU when it sees CUDA, at any size (1M x 1M x 512 is
5e14 multiply-adds: tens of seconds on one data-centre GPU).

The HNSW search breadth ``ef`` is not a guess: it is raised until the recall measured against
exact search on a sample of queries reaches ``target_recall``. When no ef reaches it (vectors
without structure, such as iid Gaussian ones, where every distance is about the same and the
graph carries no information), the search falls back to exact, slow or not, rather than return
neighbours below the recall it promised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: Told ``(phase, done, total)`` as the search goes (a progress bar's update); phases: "exact
#: search", "checking a graph on a sample", "building the graph", "searching the graph".
Progress = Callable[[str, int, int], None]

#: Up to this many vectors exact search (numpy) is cheaper than building an HNSW graph: exact
#: grows with n^2, the graph about with n (the crossover measured on 2 cores with 1280-d vectors
#: is in benchmarks/README_embed.md).
EXACT_BELOW = 40_000
#: The same crossover with torch's int8 candidate search (_exact_rows_int8), set below where the
#: graph starts to win, so that wider backbones (2,048-d) stay on the exact side.
EXACT_BELOW_INT8 = 100_000
#: Below this many vectors numpy's exact search takes less than importing torch.
INT8_FROM = 4_000
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 200
#: Above 4x this many vectors, a graph is first built on a random sample of this many: when no ef
#: reaches the recall there, none will on the whole set (recall only falls as the set grows), and
#: the full build (about 23 min for 1M 512-d vectors on 2 cores) is skipped.
PROBE = 50_000
#: The recall@k that neighbours() promises: a graph whose measured recall stays below it is not used.
TARGET_RECALL = 0.98
#: Candidates beyond k that the int8 product keeps for the float32 re-rank. Its rounding (127
#: levels up to the largest component) typically moves a similarity by under 1e-3, so a true
#: neighbour misses the first k + 16 by int8 only when 16 others lie that close to it, and then
#: they all but tie with it. Checked against numpy's exact search in tests/test_embed.py and, on
#: 1M iid vectors, in benchmarks/bench_embed_speed.py.
INT8_MARGIN = 16


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


def _empty(rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((len(rows), k), -1, np.int64), np.full((len(rows), k), np.nan, np.float32)


def _put(idx: np.ndarray, sim: np.ndarray, start: int, part: np.ndarray, ps: np.ndarray) -> None:
    """Store a block's neighbours (most similar first) from row ``start``; -inf ones are none."""
    ok = np.isfinite(ps)
    rows, kk = part.shape
    idx[start:start + rows, :kk] = np.where(ok, part, -1)
    sim[start:start + rows, :kk] = np.where(ok, ps, np.nan)


def _steps(total: int, size: int, progress: Progress | None, phase: str):
    """range(0, total, size), telling ``progress`` after each step is done."""
    for start in range(0, total, size):
        yield start
        if progress is not None:
            progress(phase, min(start + size, total), total)


#: Scratch memory of numpy's exact search: a block of rows takes about 20 bytes per vector each
#: (similarities, their negation, the partition's indexes), so blocks shrink as sets grow (1,024
#: rows up to 50k vectors, 53 at 1M) instead of taking 16 GiB.
EXACT_SCRATCH_BYTES = 1 << 30


def _exact_rows(x: np.ndarray, rows: np.ndarray, k: int, groups, block: int | None = None,
                progress: Progress | None = None):
    n = len(x)
    if block is None:
        block = max(1, min(1024, EXACT_SCRATCH_BYTES // (20 * max(n, 1))))
    idx, sim = _empty(rows, k)
    for start in _steps(len(rows), block, progress, "exact search"):
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
        _put(idx, sim, start, np.take_along_axis(part, order, 1), np.take_along_axis(ps, order, 1))
    return idx, sim


def _exact_rows_torch(x: np.ndarray, rows: np.ndarray, k: int, groups, device: str, block: int = 1024,
                      progress: Progress | None = None):
    """As _exact_rows, with torch on ``device`` (blocked matmul and topk; the same results as
    numpy up to float32 rounding among near-equal similarities)."""
    import torch

    n = len(x)
    kk = min(k, n - 1)
    idx, sim = _empty(rows, k)
    if kk <= 0:
        return idx, sim
    with torch.no_grad():
        xt = torch.from_numpy(np.ascontiguousarray(x)).to(device)
        gt = None if groups is None else torch.from_numpy(np.asarray(groups, np.int64)).to(device)
        for start in _steps(len(rows), block, progress, "exact search"):
            q = torch.from_numpy(rows[start:start + block]).to(device)
            s = xt[q] @ xt.T
            s[torch.arange(len(q), device=device), q] = -torch.inf
            if gt is not None:
                s[gt[q][:, None] == gt[None, :]] = -torch.inf
            ps, part = torch.topk(s, kk, dim=1)  # sorted, largest first
            _put(idx, sim, start, part.cpu().numpy(), ps.cpu().numpy())
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


def int8_search() -> bool:
    """Whether torch is installed and its int8 matrix product runs here (checked once)."""
    global _INT8
    if _INT8 is None:
        import importlib.util

        _INT8 = False
        if importlib.util.find_spec("torch") is not None:
            try:
                import torch

                a = torch.tensor([[1, -2, 3], [4, 5, -6]], dtype=torch.int8)
                _INT8 = bool(torch.equal(torch._int_mm(a, a.T), a.int() @ a.int().T))
            except Exception:  # an old torch, or a build without it: numpy does the work
                _INT8 = False
    return _INT8


_INT8: bool | None = None
_INT32_MIN = -(2**31)


def _exact_rows_int8(x: np.ndarray, rows: np.ndarray, k: int, groups, *, margin: int = INT8_MARGIN,
                     block: int = 1024, chunk: int = 65_536, progress: Progress | None = None):
    """As _exact_rows, on the CPU with torch: an int8 product of the rows against the vectors
    picks k + ``margin`` candidates per row, and their float32 similarities decide. Memory: one
    int32 tile of ``block`` x ``chunk`` (256 MiB) at a time."""
    import torch

    n = len(x)
    kk = min(k, n - 1)
    idx, sim = _empty(rows, k)
    if kk <= 0:
        return idx, sim
    top = min(n, kk + margin)
    peak = float(np.abs(x).max()) or 1.0
    xi8 = np.empty(x.shape, np.int8)
    for s0 in range(0, n, chunk):  # in slices: no float copy of the whole set (2 GiB at 1M x 512)
        xi8[s0:s0 + chunk] = np.rint(x[s0:s0 + chunk] * (127.0 / peak))
    xi = torch.from_numpy(xi8)
    gt = None if groups is None else torch.from_numpy(np.asarray(groups, np.int64))
    width = min(chunk, n)
    tile = torch.empty((min(block, len(rows)), width), dtype=torch.int32)  # reused: no page faults per tile
    with torch.no_grad():
        for start in _steps(len(rows), block, progress, "exact search"):
            q = rows[start:start + block]
            qt = torch.from_numpy(np.ascontiguousarray(q, np.int64))
            xq = xi[qt]
            values, where = [], []
            for c0 in range(0, n, chunk):
                if n - c0 >= width:
                    s = torch._int_mm(xq, xi[c0:c0 + width].T, out=tile[:len(q)])
                else:
                    s = torch._int_mm(xq, xi[c0:].T)
                own = torch.nonzero((qt >= c0) & (qt < c0 + s.shape[1]))[:, 0]
                s[own, qt[own] - c0] = _INT32_MIN
                if gt is not None:
                    s[gt[qt][:, None] == gt[None, c0:c0 + chunk]] = _INT32_MIN
                v, i = torch.topk(s, min(top, s.shape[1]), dim=1)
                values.append(v)
                where.append(i + c0)
            v, i = torch.cat(values, 1), torch.cat(where, 1)
            if len(values) > 1:
                v, pick = torch.topk(v, min(top, v.shape[1]), dim=1)
                i = torch.gather(i, 1, pick)
            cand, ok = i.numpy(), v.numpy() > _INT32_MIN
            exact_sim = np.einsum("qd,qcd->qc", x[q], x[cand], dtype=np.float32)
            exact_sim[~ok] = -np.inf
            order = np.argsort(-exact_sim, axis=1, kind="stable")[:, :kk]
            _put(idx, sim, start, np.take_along_axis(cand, order, 1), np.take_along_axis(exact_sim, order, 1))
    return idx, sim


def exact_rows(x: np.ndarray, rows: np.ndarray, k: int, groups=None, progress: Progress | None = None):
    """Exact search for ``rows`` of normalised ``x``: torch's int8 candidates when it pays, else
    numpy."""
    if len(x) >= INT8_FROM and int8_search():
        return _exact_rows_int8(x, rows, k, groups, progress=progress)
    return _exact_rows(x, rows, k, groups, progress=progress)


def exact(x: np.ndarray, k: int, groups=None) -> Neighbours:
    x = normalise(x)
    idx, sim = exact_rows(x, np.arange(len(x)), k, groups)
    return Neighbours(idx, sim, "exact")


#: Vectors added to (or searched in) the graph per call, between progress updates.
GRAPH_STEP = 20_000


def build_hnsw(x: np.ndarray, m: int = HNSW_M, ef_construction: int = HNSW_EF_CONSTRUCTION, threads: int = -1,
               seed: int = 100, progress: Progress | None = None, phase: str = "building the graph"):
    import hnswlib

    index = hnswlib.Index(space="cosine", dim=x.shape[1])
    index.init_index(max_elements=len(x), ef_construction=ef_construction, M=m, random_seed=seed)
    for start in _steps(len(x), GRAPH_STEP, progress, phase):
        index.add_items(x[start:start + GRAPH_STEP], np.arange(start, min(start + GRAPH_STEP, len(x))),
                        num_threads=threads)
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


def probe(x: np.ndarray, k: int, target_recall: float, threads: int = -1, progress: Progress | None = None):
    """(ef, recall@k) of an HNSW graph on PROBE sampled rows of ``x``, ef tuned towards
    ``target_recall``: what a graph can do on this data, at a fraction of a full build."""
    sample = x[np.sort(np.random.default_rng(0).choice(len(x), PROBE, replace=False))]
    graph = build_hnsw(sample, threads=threads, progress=progress, phase="checking a graph on a sample")
    return tune_ef(graph, sample, k, target_recall, threads=threads)


def _exact_instead(x: np.ndarray, k: int, groups, ef: int, recall: float, progress: Progress | None) -> Neighbours:
    """No ef reached the recall asked for (vectors with no structure for a graph to use): keep the
    promise with exact search, however long it takes; ``recall`` says what the graph reached."""
    idx, sim = exact_rows(x, np.arange(len(x)), k, groups, progress)
    return Neighbours(idx, sim, "exact-after-hnsw", ef, recall)


def exact_limit() -> int:
    """Up to how many vectors exact search is the cheaper choice on this machine's CPU."""
    return EXACT_BELOW_INT8 if int8_search() else EXACT_BELOW


def neighbours(x: np.ndarray, k: int, groups=None, *, exact_below: int | None = None,
               target_recall: float = TARGET_RECALL, threads: int = -1, device: str = "auto",
               progress: Progress | None = None) -> Neighbours:
    """The k most similar other rows of every row; rows sharing a ``groups`` value are skipped.
    ``device``: ``auto`` or ``cuda`` searches exactly on a GPU when torch sees one. Above
    ``exact_below`` (default: :func:`exact_limit`) an HNSW graph is searched with the ef that
    reaches ``target_recall``; when none does, the search is exact after all. ``progress`` hears
    how far each phase has got."""
    x = normalise(x)
    n = len(x)
    groups = None if groups is None else np.asarray(groups)
    limit = EXACT_BELOW if exact_below is None else exact_below
    gpu = gpu_device(device) if n > limit else None  # where numpy would not do, a GPU does it all
    if gpu is not None:
        idx, sim = _exact_rows_torch(x, np.arange(n), k, groups, gpu, progress=progress)
        return Neighbours(idx, sim, "exact-gpu", recall=1.0)
    if exact_below is None and n > limit:
        limit = exact_limit()
    if n <= limit:
        idx, sim = exact_rows(x, np.arange(n), k, groups, progress)
        return Neighbours(idx, sim, "exact")
    extra = 1
    if groups is not None:
        _, counts = np.unique(groups, return_counts=True)
        extra += int(min(counts.max() - 1, 2 * k))
    want = min(n, k + extra)
    if n >= 4 * PROBE:
        ef, recall = probe(x, want, target_recall, threads=threads, progress=progress)
        if recall < target_recall:
            return _exact_instead(x, k, groups, ef, recall, progress)
    index = build_hnsw(x, threads=threads, progress=progress)
    ef, recall = tune_ef(index, x, want, target_recall, threads=threads)
    if recall < target_recall:
        del index
        return _exact_instead(x, k, groups, ef, recall, progress)
    index.set_ef(max(ef, want))
    labels = np.empty((n, want), np.int64)
    dist = np.empty((n, want), np.float32)
    for start in _steps(n, GRAPH_STEP, progress, "searching the graph"):
        found, d = index.knn_query(x[start:start + GRAPH_STEP], k=want, num_threads=threads)
        labels[start:start + len(found)], dist[start:start + len(found)] = found, d
    sims = (1.0 - dist).astype(np.float32)
    bad = labels == np.arange(n)[:, None]
    if groups is not None:
        bad |= groups[labels] == groups[:, None]
    idx, sim = _empty(labels, k)
    order = np.argsort(bad, axis=1, kind="stable")  # good ones first, keeping similarity order
    labels, sims, bad = (np.take_along_axis(a, order, 1) for a in (labels, sims, bad))
    kk = min(k, want)
    idx[:, :kk] = np.where(bad[:, :kk], -1, labels[:, :kk])
    sim[:, :kk] = np.where(bad[:, :kk], np.nan, sims[:, :kk])
    short = np.flatnonzero((idx < 0).any(axis=1) & ((~bad).sum(axis=1) < min(k, n - 1)))
    if len(short):  # too many same-group hits among the candidates: exact search for those rows
        idx[short], sim[short] = exact_rows(x, short, k, groups)
    return Neighbours(idx, sim, "hnsw", ef, recall)
