"""`labellint evaluate` against pycocotools COCOeval on a large synthetic detection set.

    python benchmarks/bench_evaluate.py                    # 5,000 images, 500,000 detections
    python benchmarks/bench_evaluate.py --images 500 --detections 50000 --keep /tmp/bench

Makes a ground truth (80 classes, about 7 boxes per image, all sizes) and detections around it
(jittered true boxes, confused classes, background boxes, random scores), then times:

* labellint: the command line, end to end (``python -m labellint evaluate GT PRED -f json`` in a
  new process: start-up, reading and checking both files, hotcoco evaluation, the report), the
  best of --repeat runs before and --repeat runs after pycocotools; also the ``labellint`` console
  script, which imports the whole command line;
* pycocotools: ``COCO(gt)``, ``loadRes(pred)``, ``evaluate()``, ``accumulate()``, ``summarize()``.

The labellint processes get a bytecode cache (a temporary PYTHONPYCACHEPREFIX, filled by a
warm-up run), as an installed package has its .pyc files: with PYTHONDONTWRITEBYTECODE set (as on
some development machines) every run would otherwise compile labellint's modules again.

It fails (exit 1) unless the 12 stats are identical and labellint is at least --min-speedup
times faster.
"""

from __future__ import annotations

import argparse
import contextlib
import io
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


def make(n_images: int, n_dets: int, seed: int = 0, n_classes: int = 80):
    rng = np.random.default_rng(seed)
    w, h = 640, 480
    images = [{"id": i, "file_name": f"{i:06d}.jpg", "width": w, "height": h} for i in range(1, n_images + 1)]
    categories = [{"id": c, "name": f"class{c}", "supercategory": "thing"} for c in range(1, n_classes + 1)]
    per_image = rng.poisson(7, n_images) + 1
    img_of = np.repeat(np.arange(1, n_images + 1), per_image)
    n = len(img_of)
    side = np.exp(rng.uniform(np.log(8), np.log(300), n))  # small, medium and large objects
    aspect = np.exp(rng.normal(0, 0.4, n))
    bw = np.minimum(side * aspect, w - 1)
    bh = np.minimum(side / aspect, h - 1)
    bx = rng.uniform(0, w - bw)
    by = rng.uniform(0, h - bh)
    cats = rng.integers(1, n_classes + 1, n)
    crowd = (rng.random(n) < 0.01).astype(int)
    annotations = [{"id": k + 1, "image_id": int(img_of[k]), "category_id": int(cats[k]),
                    "bbox": [round(float(bx[k]), 2), round(float(by[k]), 2), round(float(bw[k]), 2),
                             round(float(bh[k]), 2)],
                    "area": round(float(bw[k] * bh[k]), 2), "iscrowd": int(crowd[k]), "segmentation": []}
                   for k in range(n)]
    gt = {"images": images, "annotations": annotations, "categories": categories}

    # detections: ~60% jittered copies of true boxes (10% with a confused class), the rest background
    n_true = int(n_dets * 0.6)
    src = rng.integers(0, n, n_true)
    jitter = rng.normal(0, 0.12, (n_true, 4)) * np.stack([bw[src], bh[src], bw[src], bh[src]], axis=1)
    tx = bx[src] + jitter[:, 0]
    ty = by[src] + jitter[:, 1]
    tw = np.maximum(bw[src] + jitter[:, 2], 1)
    th = np.maximum(bh[src] + jitter[:, 3], 1)
    tc = np.where(rng.random(n_true) < 0.1, rng.integers(1, n_classes + 1, n_true), cats[src])
    timg = img_of[src]
    n_bg = n_dets - n_true
    bside = np.exp(rng.uniform(np.log(8), np.log(300), n_bg))
    gw, gh = np.minimum(bside, w - 1), np.minimum(bside * np.exp(rng.normal(0, 0.4, n_bg)), h - 1)
    gx, gy = rng.uniform(0, w - gw), rng.uniform(0, h - gh)
    gimg = rng.integers(1, n_images + 1, n_bg)
    gc = rng.integers(1, n_classes + 1, n_bg)
    img = np.concatenate([timg, gimg])
    box = np.concatenate([np.stack([tx, ty, tw, th], 1), np.stack([gx, gy, gw, gh], 1)])
    cat = np.concatenate([tc, gc])
    score = np.concatenate([rng.beta(4, 2, n_true), rng.beta(2, 4, n_bg)])
    order = np.argsort(img, kind="stable")
    dets = [{"image_id": int(img[k]), "category_id": int(cat[k]),
             "bbox": [round(float(v), 2) for v in box[k]], "score": round(float(score[k]), 4)} for k in order]
    return gt, dets


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def time_pycocotools(gt_path: Path, pred_path: Path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    start, cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        dt = gt.loadRes(str(pred_path))
        core = time.perf_counter()
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    end = time.perf_counter()
    return end - start, time.process_time() - cpu, end - core, [float(s) for s in ev.stats]


def time_hotcoco_core(gt_path: Path, pred_path: Path) -> float:
    """hotcoco's COCOeval alone on loaded data: the part of the work that pycocotools' COCOeval does."""
    import hotcoco

    gt = hotcoco.COCO(str(gt_path))
    dt = gt.load_res(str(pred_path))
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        ev = hotcoco.COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return time.perf_counter() - start


def labellint_env(cache: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def time_labellint(gt_path: Path, pred_path: Path, env: dict, script: bool = False):
    console_script = Path(sys.executable).with_name("labellint")
    exe = [str(console_script)] if script else [sys.executable, "-m", "labellint"]
    exe += ["evaluate", str(gt_path), str(pred_path), "--output-format", "json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(exe, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        sys.exit(f"labellint evaluate failed ({proc.returncode}): {proc.stderr.strip()}")
    return elapsed, cpu, json.loads(proc.stdout)["stats"]


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--detections", type=int, default=500_000)
    ap.add_argument("--keep", type=Path, help="Write the files here and keep them (default: a temporary folder).")
    ap.add_argument("--repeat", type=int, default=3,
                    help="labellint runs before and again after pycocotools; the best time counts (load noise).")
    ap.add_argument("--min-speedup", type=float, default=50.0)
    args = ap.parse_args(argv)

    folder = args.keep or Path(tempfile.mkdtemp(prefix="labellint-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    gt_path, pred_path = folder / "gt.json", folder / "pred.json"
    t0 = time.perf_counter()
    gt, dets = make(args.images, args.detections)
    gt_path.write_text(json.dumps(gt))
    pred_path.write_text(json.dumps(dets))
    print(f"data: {len(gt['images'])} images, {len(gt['annotations'])} boxes, {len(dets)} detections "
          f"({pred_path.stat().st_size / 1e6:.0f} MB of predictions; made in {time.perf_counter() - t0:.1f}s)")
    print(f"machine: {os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}")

    print(f"load average before: {load_average()} (other work on the machine slows both sides)")
    cache = Path(tempfile.mkdtemp(prefix="labellint-pyc-"))
    env = labellint_env(cache)
    time_labellint(gt_path, pred_path, env)  # warm-up: fills the bytecode cache, reads the files into memory
    # labellint runs before and after the reference: a second of other work on the machine weighs on
    # one short run, while the reference's minute averages it out; all times are printed
    ours = [time_labellint(gt_path, pred_path, env) for _ in range(args.repeat)]
    t_ref, cpu_ref, core_ref, stats_ref = time_pycocotools(gt_path, pred_path)
    ours += [time_labellint(gt_path, pred_path, env) for _ in range(args.repeat)]
    t_ours = min(t for t, _, _ in ours)
    cpu_ours = min(c for _, c, _ in ours)
    stats_ours = ours[0][2]
    print(f"labellint evaluate (python -m labellint, hotcoco, CLI end to end): {t_ours:.2f}s wall, "
          f"{cpu_ours:.2f}s CPU (best of {len(ours)}; wall: {', '.join(f'{t:.2f}' for t, _, _ in ours)}, "
          f"{args.repeat} before and {args.repeat} after pycocotools)")
    print(f"pycocotools (COCO, loadRes, COCOeval evaluate, accumulate, summarize): {t_ref:.2f}s wall, "
          f"{cpu_ref:.2f}s CPU; COCOeval alone {core_ref:.2f}s", flush=True)
    script = [time_labellint(gt_path, pred_path, env, script=True) for _ in range(args.repeat)]
    t_script = min(t for t, _, _ in script)
    print(f"labellint evaluate (the `labellint` console script, which imports the whole CLI): {t_script:.2f}s wall "
          f"(best of {args.repeat}): {t_ref / t_script:.1f}x")
    core_ours = min(time_hotcoco_core(gt_path, pred_path) for _ in range(args.repeat))
    print(f"hotcoco COCOeval alone (the evaluation labellint runs): {core_ours:.2f}s: {core_ref / core_ours:.0f}x")
    print(f"load average after: {load_average()}")
    speedup = t_ref / t_ours
    same = stats_ours == stats_ref and all(r[2] == stats_ref for r in ours + script)
    diff = max(abs(a - b) for a, b in zip(stats_ours, stats_ref))
    median = sorted(t for t, _, _ in ours)[len(ours) // 2]
    print(f"speed-up: {speedup:.1f}x wall-clock ({t_ref / median:.1f}x on the median run), {cpu_ref / cpu_ours:.1f}x "
          f"CPU time; stats identical: {same} (largest difference {diff:.3g})")
    print("stats:", json.dumps(stats_ours))
    shutil.rmtree(cache, ignore_errors=True)
    if not args.keep:
        for p in (gt_path, pred_path):
            p.unlink()
        folder.rmdir()
    ok = same and speedup >= args.min_speedup
    if not ok:
        print(f"FAILED: need identical stats and at least {args.min_speedup:g}x")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
