"""Speed of the embedding path: end-to-end crops/s, kNN at scale, warm re-lint.

1. e2e: the chess train split (202 images, 2108 boxes), cache off. End-to-end crops/s (read,
   decode, crop, preprocess, infer; decoding overlaps inference) against the backbone alone on
   the very same crops, in the batches an uncounted first pass formed (a counted pass may cut
   them differently: the embedder hands the backbone a partial batch whenever it is idle), in the
   same process, alternating; the best of ``--repeat`` for each.
2. knn: N random 512-d vectors (iid Gaussian, and clustered like real embeddings): HNSW build
   and query time for every vector's 10 neighbours, recall@10 against exact search on a sample
   of 200 queries, resident memory; ef is chosen by measured recall as in the rule.
   Random iid 512-d vectors are the worst case for any graph index (every distance is nearly the
   same); clustered vectors are what embeddings look like. Query time for all N is measured on
   20,000 of them and scaled.
   knn-exact: the exact search labellint runs on the CPU when torch is installed (int8
   candidates, float32 re-rank; knn._exact_rows_int8), on the same vectors: time for every
   vector's 10 neighbours measured on ``--knn-queries`` of them and scaled (exact search costs the
   same for every query), recall@10 against numpy's float32 search on 1,024 of them, and numpy's
   time for those, scaled the same way. With
   ``--knn-hnsw``, the HNSW path on the same vectors too (build, ef tuning, query), for the
   crossover that sets knn.EXACT_BELOW_INT8.
   knn-rule: what LL501 runs, knn.neighbours, on the same vectors, end to end: which search it
   chose (exact, hnsw, or exact after a graph missed the recall), the time of each phase,
   recall@10 against numpy on 200 queries, peak memory.
3. warm: `labellint check` on the three chess files (LL4 + LL5) with an empty cache, then again
   after shifting 1% of the boxes by 2 px: warm time / cold time. Each run is a fresh process
   with a bytecode cache, as an installed package has.

Usage: python benchmarks/bench_embed_speed.py [--part e2e,knn,knn-exact,knn-rule,warm] [--knn-n 1000000]
       [--knn-data random] [--knn-d 512] [--knn-queries 20000] [--knn-hnsw]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import onnxruntime

    return (f"{cpu}, {len(os.sched_getaffinity(0))} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
            f"Python {platform.python_version()}, numpy {np.__version__}, onnxruntime {onnxruntime.__version__}")


def bench_e2e(shared: Path, repeat: int) -> dict:
    from labellint import images
    from labellint.coco import load
    from labellint.context import RunContext
    from labellint.embed import backbone as backbone_mod
    from labellint.embed.embedder import Embedder

    root = shared / "data" / "chess_pieces" / "train"
    model = shared / "models" / "mobilenetv2-12-int8-embed.onnx"
    batches: list = []

    class Recording(Embedder):
        def _infer(self, part, x):
            if record:
                batches.append(x)
            super()._infer(part, x)

    results = {"e2e": [], "backbone": []}
    # run 0 records the batches (holding 66 x 19 MB costs page faults) and is not counted
    for r in range(repeat + 1):
        record = r == 0
        ds = load(root / "_annotations.coco.json", "train.json")
        context = RunContext(images=root, backbone=str(model), no_cache=True,
                             decode_threads=int(os.environ.get("BENCH_DECODE_THREADS", "0")))
        bb = backbone_mod.load(model)
        emb = Recording(ds, bb, context=0.1, cache=None)
        images.prepare(ds, context, visitor=emb)
        t0 = time.perf_counter()
        images.scan(ds, context)
        dt = time.perf_counter() - t0
        if record:
            continue
        results["e2e"].append(emb.embedded / dt)
        crops = sum(len(b) for b in batches)
        t0 = time.perf_counter()
        for b in batches:
            bb.run(b)
        results["backbone"].append(crops / (time.perf_counter() - t0))
        print(f"  run {r}: end-to-end {results['e2e'][-1]:.1f} crops/s, backbone alone "
              f"{results['backbone'][-1]:.1f} crops/s on the same crops in {len(batches)} batches", flush=True)
    e2e, alone = max(results["e2e"]), max(results["backbone"])
    return {"crops": crops, "batches": len(batches), "threads": bb.threads, "batch_size": bb.batch_size,
            "e2e_crops_per_s": e2e, "backbone_crops_per_s": alone, "ratio": e2e / alone,
            "e2e_all": results["e2e"], "backbone_all": results["backbone"]}


def rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def vectors(n: int, kind: str, d: int, rng) -> np.ndarray:
    """Unit vectors: iid Gaussian ("random"), or n/500 centres plus noise ("clustered")."""
    from labellint.embed import knn

    if kind == "clustered":
        centres = rng.standard_normal((max(100, n // 500), d), dtype=np.float32)
        x = centres[rng.integers(0, len(centres), n)]
        x += 0.7 * rng.standard_normal((n, d), dtype=np.float32)
    else:
        x = rng.standard_normal((n, d), dtype=np.float32)
    return knn.normalise(x)


def bench_knn(n: int, kind: str, d: int = 512, k: int = 10, ef_max: int = 2048, x=None) -> dict:
    from labellint.embed import knn

    rng = np.random.default_rng(0)
    x = vectors(n, kind, d, rng) if x is None else x
    base = rss_gib()
    t0 = time.perf_counter()
    index = knn.build_hnsw(x)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    ef, sample_recall = knn.tune_ef(index, x, k + 1, target_recall=0.95, ef_max=ef_max)
    tune = time.perf_counter() - t0
    q = rng.choice(n, size=200, replace=False)
    truth = np.argpartition(-(x[q] @ x.T), k, axis=1)[:, : k + 1]
    index.set_ef(ef)
    labels, _ = index.knn_query(x[q], k=k + 1)
    recall = float(np.mean([len(set(a) & set(b)) / (k + 1) for a, b in zip(labels.tolist(), truth.tolist())]))
    sample = x[rng.choice(n, size=min(n, 20000), replace=False)]
    t0 = time.perf_counter()
    index.knn_query(sample, k=k + 1)
    query = (time.perf_counter() - t0) * n / len(sample)  # every vector's neighbours, from a 20k sample
    return {"n": n, "d": d, "data": kind, "M": knn.HNSW_M, "ef_construction": knn.HNSW_EF_CONSTRUCTION, "ef": ef,
            "recall_at_10": recall, "build_s": build, "ef_tuning_s": tune, "query_all_s_estimated": query,
            "peak_rss_gib": rss_gib(), "rss_growth_gib": rss_gib() - base}


def bench_knn_exact(n: int, kind: str, d: int = 512, k: int = 10, queries: int = 20_000, hnsw: bool = False) -> dict:
    from labellint.embed import knn

    if not knn.int8_search():
        raise SystemExit("knn-exact needs torch with its int8 product (pip install -e .[train])")
    import torch

    rng = np.random.default_rng(0)
    x = vectors(n, kind, d, rng)
    base = rss_gib()
    probe = None
    if n >= 4 * knn.PROBE:  # what knn.neighbours decides first for a set this large
        t0 = time.perf_counter()
        ef, rec = knn.probe(x, k + 1, knn.TARGET_RECALL)
        probe = {"n": knn.PROBE, "ef": ef, "recall": rec, "s": time.perf_counter() - t0,
                 "decision": "hnsw" if rec >= knn.TARGET_RECALL else "exact"}
    rows = np.sort(rng.choice(n, size=min(n, queries), replace=False))
    t0 = time.perf_counter()
    idx, _ = knn._exact_rows_int8(x, rows, k, None)
    took = time.perf_counter() - t0
    search_peak = rss_gib()  # before numpy's reference search below
    pick = np.sort(rng.choice(len(rows), size=min(1024, len(rows)), replace=False))
    t0 = time.perf_counter()
    truth, _ = knn._exact_rows(x, rows[pick], k, None)
    numpy_s = (time.perf_counter() - t0) * n / len(pick)
    recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(idx[pick].tolist(), truth.tolist())]))
    out = {"n": n, "d": d, "data": kind, "torch_threads": torch.get_num_threads(), "queries": len(rows),
           "queries_s": took, "all_knn_s_estimated": took * n / len(rows), "recall_at_10": recall,
           "numpy_all_knn_s_estimated": numpy_s, "speedup_vs_numpy": numpy_s / (took * n / len(rows)),
           "peak_rss_gib": search_peak, "rss_growth_gib": search_peak - base, "peak_rss_with_numpy_gib": rss_gib(),
           "probe": probe}
    if hnsw:
        out["hnsw"] = bench_knn(n, kind, d, k, x=x)
    return out


def bench_knn_rule(n: int, kind: str, d: int = 512, k: int = 10) -> dict:
    from labellint.embed import knn

    rng = np.random.default_rng(0)
    x = vectors(n, kind, d, rng)
    base = rss_gib()
    phases: dict = {}
    started = time.perf_counter()
    last = [started]

    def heard(phase, done, total):  # a phase runs from the previous report to its own last one
        now = time.perf_counter()
        phases[phase] = (phases[phase][0] if phase in phases else last[0], now)
        last[0] = now

    nb = knn.neighbours(x, k, progress=heard)
    took = time.perf_counter() - started
    q = rng.choice(n, size=min(200, n), replace=False)
    truth, _ = knn._exact_rows(x, q, k, None)
    recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(nb.index[q].tolist(), truth.tolist())]))
    return {"n": n, "d": d, "data": kind, "method": nb.method, "ef": nb.ef, "graph_recall": nb.recall, "s": took,
            "phases_s": {p: round(b - a, 1) for p, (a, b) in phases.items()}, "recall_at_10": recall,
            "peak_rss_gib": rss_gib(), "rss_growth_gib": rss_gib() - base}


def bench_knn_gpu(n: int, kind: str, d: int = 512, k: int = 10) -> dict | None:
    """The exact all-pairs search labellint runs when torch sees a GPU (knn.neighbours with device
    auto): time for every vector's k neighbours, and recall@10 against numpy's exact search on 200
    sampled queries (1 unless float32 rounding reorders near-equal neighbours)."""
    from labellint.embed import knn

    device = knn.gpu_device("auto")
    if device is None:
        return None
    import torch

    rng = np.random.default_rng(0)
    x = vectors(n, kind, d, rng)
    t0 = time.perf_counter()
    idx, _ = knn._exact_rows_torch(x, np.arange(n), k, None, device)
    if device == "cuda":
        torch.cuda.synchronize()
    took = time.perf_counter() - t0
    q = rng.choice(n, size=200, replace=False)
    truth, _ = knn._exact_rows(x, q, k, None)
    recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(idx[q].tolist(), truth.tolist())]))
    on_gpu = device == "cuda"
    return {"n": n, "d": d, "data": kind, "device": torch.cuda.get_device_name(0) if on_gpu else device,
            "all_knn_s": took, "recall_at_10": recall,
            "peak_gpu_gib": torch.cuda.max_memory_allocated() / 2**30 if on_gpu else 0.0, "peak_rss_gib": rss_gib()}


def bench_warm(shared: Path) -> dict:
    root = shared / "data" / "chess_pieces"
    model = shared / "models" / "mobilenetv2-12-int8-embed.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = []
        for split in ("train", "valid", "test"):
            doc = json.loads((root / split / "_annotations.coco.json").read_text())
            for im in doc["images"]:
                im["file_name"] = f"{split}/{im['file_name']}"
            path = tmp / f"{split}.json"
            path.write_text(json.dumps(doc))
            files.append(path)
        # a bytecode cache, as an installed package has its .pyc files (this machine sets
        # PYTHONDONTWRITEBYTECODE, so every run would compile its modules again; bench_spine.py
        # does the same), filled by an unmeasured run on the smallest split with a throwaway cache
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update({"PYTHONPYCACHEPREFIX": str(tmp / "pycache"), "LABELLINT_CACHE_DIR": str(tmp / "cache"),
                    "LABELLINT_NO_PROGRESS": "1"})

        def command(paths):
            return [sys.executable, "-m", "labellint", "check", *map(str, paths), "--images", str(root),
                    "--backbone", str(model), "--select", "LL4,LL5", "-f", "json", "--exit-zero"]

        subprocess.run(command(files[-1:]), env={**env, "LABELLINT_CACHE_DIR": str(tmp / "warmup")},
                       capture_output=True, check=True)
        cmd = command(files)

        def run():
            t0 = time.perf_counter()
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            return time.perf_counter() - t0, json.loads(out.stdout)

        cold, r1 = run()
        rng = np.random.default_rng(0)
        total = changed = 0
        for path in files:
            doc = json.loads(path.read_text())
            total += len(doc["annotations"])
            for a in doc["annotations"]:
                if rng.random() < 0.01:
                    a["bbox"][0] += 2
                    changed += 1
            path.write_text(json.dumps(doc))
        warm, r2 = run()
        unchanged, _ = run()
        shutil.rmtree(tmp / "cache")
    return {"cold_s": cold, "warm_after_edit_s": warm, "warm_unchanged_s": unchanged, "ratio": warm / cold,
            "boxes": total, "boxes_changed": changed, "findings_cold": len(r1["findings"]),
            "findings_warm": len(r2["findings"])}


def say_knn(r: dict) -> None:
    print(f"knn {r['data']} n={r['n']} d={r['d']} M={r['M']} efC={r['ef_construction']}: build {r['build_s']:.1f} s, "
          f"ef {r['ef']} (tuning {r['ef_tuning_s']:.1f} s), recall@10 {r['recall_at_10']:.3f}, "
          f"query all (from a 20k sample) {r['query_all_s_estimated']:.1f} s, peak RSS {r['peak_rss_gib']:.2f} GiB", flush=True)


def say_knn_exact(r: dict) -> None:
    print(f"knn-exact {r['data']} n={r['n']} d={r['d']} (int8 + float32 re-rank, {r['torch_threads']} torch threads): "
          f"{r['queries']} queries {r['queries_s']:.1f} s, all {r['n']} (scaled) {r['all_knn_s_estimated']:.0f} s, "
          f"recall@10 {r['recall_at_10']:.3f} vs numpy float32 (numpy: all {r['numpy_all_knn_s_estimated']:.0f} s "
          f"from {min(1024, r['queries'])} queries, {r['speedup_vs_numpy']:.1f}x slower), peak RSS {r['peak_rss_gib']:.2f} GiB "
          f"({r['rss_growth_gib']:.2f} GiB over the vectors and their generation; with numpy's search {r['peak_rss_with_numpy_gib']:.2f} GiB)",
          flush=True)
    if r["probe"]:
        pr = r["probe"]
        print(f"  labellint's probe (HNSW on {pr['n']} sampled vectors): ef {pr['ef']}, recall@10 {pr['recall']:.3f} "
              f"in {pr['s']:.0f} s -> {pr['decision']} search", flush=True)
    if "hnsw" in r:
        h = r["hnsw"]
        print(f"  hnsw on the same vectors: build {h['build_s']:.1f} s + ef tuning {h['ef_tuning_s']:.1f} s "
              f"(ef {h['ef']}, recall@10 {h['recall_at_10']:.3f}) + query all {h['query_all_s_estimated']:.1f} s = "
              f"{h['build_s'] + h['ef_tuning_s'] + h['query_all_s_estimated']:.0f} s", flush=True)


def say_knn_rule(r: dict) -> None:
    graph = f", the graph reached {r['graph_recall']:.3f} at ef {r['ef']}" if r["graph_recall"] is not None else ""
    print(f"knn-rule {r['data']} n={r['n']} d={r['d']}: knn.neighbours chose {r['method']}{graph}; {r['s']:.0f} s "
          f"(phases, seconds: {r['phases_s']}), recall@10 {r['recall_at_10']:.3f} vs numpy, "
          f"peak RSS {r['peak_rss_gib']:.2f} GiB", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("LABELLINT_SHARED", REPO.parent / "shared")))
    ap.add_argument("--part", default="e2e,knn,warm")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--knn-n", type=int, default=1_000_000)
    ap.add_argument("--knn-data", default="random,clustered")
    ap.add_argument("--knn-d", type=int, default=512)
    ap.add_argument("--knn-queries", type=int, default=20_000, help="knn-exact: queries timed (scaled to all N)")
    ap.add_argument("--knn-hnsw", action="store_true", help="knn-exact: also time HNSW on the same vectors")
    ap.add_argument("--knn-device", default="cpu", help="cpu (hnswlib), or cpu,cuda to also time the exact GPU search "
                    "(also: --part knn-gpu)")
    args = ap.parse_args(argv)
    parts = set(args.part.split(","))
    print(f"machine: {machine()}", flush=True)
    out = {}
    if "e2e" in parts:
        r = out["e2e"] = bench_e2e(args.shared, args.repeat)
        print(f"e2e: {r['crops']} crops in {r['batches']} batches of {r['batch_size']}, onnxruntime threads "
              f"{r['threads']}: end-to-end {r['e2e_crops_per_s']:.1f} crops/s, backbone alone "
              f"{r['backbone_crops_per_s']:.1f} crops/s, ratio {r['ratio']:.2f}", flush=True)
    kinds = args.knn_data.split(",")

    def each(run, say) -> list:  # every kind of data, each figure printed as soon as it is known
        results = []
        for kind in kinds:
            results.append(run(kind))
            say(results[-1])
        return results

    if "knn" in parts:
        out["knn"] = each(lambda kind: bench_knn(args.knn_n, kind, args.knn_d), say_knn)
    if "knn-exact" in parts:
        out["knn_exact"] = each(lambda kind: bench_knn_exact(args.knn_n, kind, args.knn_d, queries=args.knn_queries,
                                                             hnsw=args.knn_hnsw), say_knn_exact)
    if "knn-rule" in parts:
        out["knn_rule"] = each(lambda kind: bench_knn_rule(args.knn_n, kind, args.knn_d), say_knn_rule)
    if "knn-gpu" in parts or ("knn" in parts and "cuda" in args.knn_device):
        out["knn_gpu"] = []
        for kind in args.knn_data.split(","):
            r = bench_knn_gpu(args.knn_n, kind)
            if r is None:
                print("knn-gpu: no CUDA device visible to torch: skipped", flush=True)
                break
            out["knn_gpu"].append(r)
            print(f"knn-gpu {kind} n={r['n']} d={r['d']} on {r['device']}: exact all-pairs {r['all_knn_s']:.1f} s, "
                  f"recall@10 {r['recall_at_10']:.3f}, peak GPU memory {r['peak_gpu_gib']:.1f} GiB", flush=True)
    if "warm" in parts:
        r = out["warm"] = bench_warm(args.shared)
        print(f"warm: cold {r['cold_s']:.1f} s, after changing {r['boxes_changed']} of {r['boxes']} boxes "
              f"{r['warm_after_edit_s']:.1f} s (ratio {r['ratio']:.3f}), unchanged {r['warm_unchanged_s']:.1f} s",
              flush=True)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
