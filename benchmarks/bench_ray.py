"""Crops/s of the images + embeddings pass: local against Ray (``--ray``) with 1 and 2 workers.

The chess train split (202 photos, 2,108 boxes; --split to change), LL5 selected, cache off, so
every run reads, decodes, crops and embeds everything. Each configuration runs ``--repeat``
times through labellint's own ``run.check`` (the CLI's path) in this process, which is the
Ray driver; the best time counts (Ray's figure includes starting the actors, which Ray Data
does for every pipeline it runs: a user pays it on every `labellint check --ray`).

On one machine the cluster is ``ray.cluster_utils.Cluster``: a head with no CPU (it schedules,
it does not work) and N worker nodes of one CPU each, so "N workers" is N CPUs: N fused
read-crop-embed actors. The local run uses every core (decode threads beside a backbone thread).
Findings are compared with the local run's (fingerprints, in order) for each configuration.

With a GPU (onnxruntime's CUDA provider), also crops/s with 1..N GPU actors
(``--ray-actors``): one node, all its GPUs, the CPU stage apart from the GPU actors. Unmeasured
until a GPU machine runs it.

Usage: python benchmarks/bench_ray.py [--workers 1,2] [--repeat 2] [--split train]
Writes benchmarks/results/ray-SPLIT.json. Two splits (test: 376 boxes, train: 2,108) give Ray's fixed
cost per run and its cost per crop, by difference.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def machine() -> str:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    return f"{platform.machine()}, {cores} cores, {platform.python_version()}"


def lint(dataset: Path, images: Path, model: Path, ray_address: str | None = None, actors: int = 0, batch: int = 0):
    from labellint.run import Options, check

    opts = Options(select=["LL5"], images=images, backbone=model, no_cache=True, ray=ray_address,
                   ray_actors=actors, ray_batch=batch)
    t0 = time.perf_counter()
    result = check([dataset], opts)
    seconds = time.perf_counter() - t0
    if result.errors:
        raise SystemExit(f"run failed: {result.errors}")
    return seconds, [f.fingerprint for f in result.findings]


def best(repeat: int, run) -> tuple[float, list]:
    times, found = [], None
    for _ in range(repeat):
        seconds, found = run()
        times.append(seconds)
    return min(times), found


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("LABELLINT_SHARED", REPO.parent / "shared")))
    ap.add_argument("--split", default="train")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--ray-batch", type=int, default=0, help="images per batch on the cluster (0: labellint's default)")
    args = ap.parse_args(argv)
    os.environ["LABELLINT_NO_PROGRESS"] = "1"
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    folder = args.shared / "data" / "chess_pieces" / args.split
    dataset, model = folder / "_annotations.coco.json", args.shared / "models" / "mobilenetv2-12-int8-embed.onnx"
    boxes = len(json.loads(dataset.read_text())["annotations"])

    import ray
    from ray.cluster_utils import Cluster

    out = {"machine": machine(), "dataset": f"chess {args.split}", "boxes": boxes, "ray_batch": args.ray_batch,
           "runs": []}
    local_s, local = best(args.repeat, lambda: lint(dataset, folder, model))
    out["runs"].append({"config": "local", "seconds": local_s, "crops_per_s": boxes / local_s})
    print(f"local: {local_s:.2f} s, {boxes / local_s:.0f} crops/s", flush=True)
    for n in [int(v) for v in args.workers.split(",")]:
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
        try:
            for _ in range(n):
                c.add_node(num_cpus=1)
            c.wait_for_nodes()
            ray.init(address=c.address, logging_level="ERROR", log_to_driver=False)
            seconds, found = best(args.repeat, lambda: lint(dataset, folder, model, c.address, batch=args.ray_batch))
        finally:
            ray.shutdown()
            c.shutdown()
        same = found == local
        out["runs"].append({"config": f"ray, {n} worker{'s' * (n > 1)}", "seconds": seconds,
                            "crops_per_s": boxes / seconds, "vs_local": seconds / local_s, "same_findings": same})
        print(f"ray {n} worker(s): {seconds:.2f} s, {boxes / seconds:.0f} crops/s, {seconds / local_s:.2f}x local, "
              f"findings {'identical' if same else 'DIFFER'}", flush=True)
    out["gpu"] = bench_gpu(dataset, folder, model, boxes, args.repeat)
    (REPO / "benchmarks" / "results").mkdir(exist_ok=True)
    (REPO / "benchmarks" / "results" / f"ray-{args.split}.json").write_text(json.dumps(out, indent=2) + "\n")
    return 0


def bench_gpu(dataset: Path, folder: Path, model: Path, boxes: int, repeat: int) -> list | None:
    """Crops/s with 1..N GPU actors on this machine's GPUs (None without a CUDA provider)."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        print("gpu: no CUDA provider here; not measured", flush=True)
        return None
    import ray

    gpus = int(ray.init(logging_level="ERROR", log_to_driver=False) and ray.cluster_resources().get("GPU", 0))
    rows = []
    try:
        for actors in range(1, gpus + 1):
            seconds, _ = best(repeat, lambda: lint(dataset, folder, model, "auto", actors))
            rows.append({"actors": actors, "seconds": seconds, "crops_per_s": boxes / seconds,
                         "crops_per_s_per_gpu": boxes / seconds / actors})
            print(f"gpu, {actors} actor(s): {boxes / seconds:.0f} crops/s", flush=True)
    finally:
        ray.shutdown()
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
