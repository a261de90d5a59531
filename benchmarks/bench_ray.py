"""Crops/s of the images + embeddings pass: local against Ray (``--ray``) with 1 and 2 workers.

The chess train split (202 photos, 2,108 boxes; --split to change), LL5 selected, cache off, so
every run reads, decodes, crops and embeds everything. Each configuration runs ``--repeat``
times through labellint's own ``run.check`` (the CLI's path) in this process, which is the
Ray driver, connecting anew for each run; the best time counts (Ray's figure includes checking
the nodes and starting the actors, which Ray Data does for every pipeline it runs: a user pays it
on every `labellint check --ray`). Then the same as `labellint check` commands in fresh processes
("CLI": what a user waits for, interpreter start, imports and Ray's connection included).

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
import subprocess
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


def chess(root: Path, split: str, copies: int) -> tuple[Path, Path]:
    """(image root, annotation file) for a split of the chess photos, or all three merged, each
    photo listed ``copies`` times (new image and annotation ids, the same file)."""
    splits = ("train", "valid", "test") if split == "all" else (split,)
    if splits == (split,) and copies == 1:
        return root / split, root / split / "_annotations.coco.json"
    import tempfile

    out = {"images": [], "annotations": [], "categories": None}
    for name in splits:
        doc = json.loads((root / name / "_annotations.coco.json").read_text())
        out["categories"] = out["categories"] or doc["categories"]
        for _ in range(copies):
            ids = {}
            for im in doc["images"]:
                ids[im["id"]] = len(out["images"]) + 1
                out["images"].append({**im, "id": ids[im["id"]], "file_name": f"{name}/{im['file_name']}"})
            for a in doc["annotations"]:
                out["annotations"].append({**a, "id": len(out["annotations"]) + 1, "image_id": ids[a["image_id"]]})
    path = Path(tempfile.mkdtemp(prefix="bench-ray-")) / f"chess-{split}-x{copies}.json"
    path.write_text(json.dumps(out))
    return root, path


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


def cli(dataset: Path, images: Path, model: Path, ray_address: str | None = None, batch: int = 0) -> tuple[float, list]:
    """The same run as `labellint check` in a fresh process: what a user waits for, interpreter
    start, imports (Ray's too) and connecting to the cluster included."""
    args = [sys.executable, "-m", "labellint", "check", str(dataset), "--images", str(images), "--backbone",
            str(model), "--select", "LL5", "--no-cache", "-f", "json"]
    if ray_address:
        args += ["--ray", ray_address] + (["--ray-batch", str(batch)] if batch else [])
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"labellint failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return seconds, [f["fingerprint"] for f in json.loads(proc.stdout)["findings"]]


def best(repeat: int, run) -> tuple[float, list]:
    times, found = [], None
    for _ in range(repeat):
        seconds, found = run()
        times.append(seconds)
    return min(times), found


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("LABELLINT_SHARED", REPO.parent / "shared")))
    ap.add_argument("--split", default="train", help="train, valid, test, or all (the three merged)")
    ap.add_argument("--copies", type=int, default=1, help="list each photo this many times (a larger dataset "
                    "of the same photos; the cache is off, so each copy is read, cropped and embedded)")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--ray-batch", type=int, default=0, help="images per batch on the cluster (0: labellint's default)")
    args = ap.parse_args(argv)
    os.environ["LABELLINT_NO_PROGRESS"] = "1"
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    model = args.shared / "models" / "mobilenetv2-12-int8-embed.onnx"
    folder, dataset = chess(args.shared / "data" / "chess_pieces", args.split, args.copies)
    boxes = len(json.loads(dataset.read_text())["annotations"])

    import ray
    from ray.cluster_utils import Cluster

    out = {"machine": machine(), "dataset": f"chess {args.split}" + (f" x{args.copies}" if args.copies > 1 else ""), "boxes": boxes, "ray_batch": args.ray_batch,
           "runs": []}
    local_s, local = best(args.repeat, lambda: lint(dataset, folder, model))
    out["runs"].append({"config": "local", "seconds": local_s, "crops_per_s": boxes / local_s})
    print(f"local: {local_s:.2f} s, {boxes / local_s:.0f} crops/s", flush=True)
    local_cli_s, local_cli = best(args.repeat, lambda: cli(dataset, folder, model))
    out["runs"].append({"config": "local, CLI", "seconds": local_cli_s, "same_findings": local_cli == local})
    print(f"local, CLI: {local_cli_s:.2f} s", flush=True)

    def reconnected(address: str):
        ray.shutdown()  # labellint connects, as a `labellint check --ray ADDRESS` does
        return lint(dataset, folder, model, address, batch=args.ray_batch)

    for n in [int(v) for v in args.workers.split(",")]:
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
        try:
            for _ in range(n):
                c.add_node(num_cpus=1)
            c.wait_for_nodes()
            seconds, found = best(args.repeat, lambda: reconnected(c.address))
            ray.shutdown()
            cli_s, cli_found = best(args.repeat, lambda: cli(dataset, folder, model, c.address, args.ray_batch))
        finally:
            ray.shutdown()
            c.shutdown()
        same = found == local and cli_found == local
        name = f"ray, {n} worker{'s' * (n > 1)}"
        out["runs"].append({"config": name, "seconds": seconds, "crops_per_s": boxes / seconds,
                            "vs_local": seconds / local_s, "same_findings": same})
        out["runs"].append({"config": f"{name}, CLI", "seconds": cli_s, "vs_local": cli_s / local_cli_s,
                            "same_findings": same})
        print(f"ray {n} worker(s): {seconds:.2f} s, {boxes / seconds:.0f} crops/s, {seconds / local_s:.2f}x local; "
              f"CLI {cli_s:.2f} s, {cli_s / local_cli_s:.2f}x local CLI; findings {'identical' if same else 'DIFFER'}",
              flush=True)
    out["gpu"] = bench_gpu(dataset, folder, model, boxes, args.repeat)
    (REPO / "benchmarks" / "results").mkdir(exist_ok=True)
    (REPO / "benchmarks" / "results" / f"ray-{args.split}{'-x%d' % args.copies if args.copies > 1 else ''}.json").write_text(json.dumps(out, indent=2) + "\n")
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
