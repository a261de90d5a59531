"""The loop, measured: does fixing what labellint finds give back the mAP that label errors took?

On the demo's shapes (``labellint demo``: clean labels, and a clean validation split drawn with
another seed), three detectors are trained with one recipe and scored on the same clean val:

* **C**: on the clean labels;
* **A**: on the labels with errors injected (class swaps, dropped, shifted and spurious boxes,
  each on a share of the boxes, seeded);
* **B**: on A's labels after labellint's model-based rules fixed them automatically: out-of-fold
  predictions on A's labels (``labellint train --folds K``), then ``labellint check --fix
  --unsafe-fixes`` with the LL6xx rules (relabels, moved boxes, deleted spurious boxes, added
  overlooked ones, whatever the rules propose) and, with ``--backbone``, LL501's relabels from the
  embedding neighbours.

It prints AP and AP50 of A, B and C (hotcoco, through the run folders' metrics), the recovered
share (B - A) / (C - A), and ``labellint gate``'s paired bootstrap intervals of B - A and C - A.
It also scores the fixes against the injected errors (which injected errors were undone).

Runs are kept in ``--work`` (default /tmp/labellint-loop) and reused when their inputs and recipe
are unchanged (``labellint train`` writes complete run folders atomically; folds resume).

With ``--train-seeds 0,1,2`` each of A, B and C is trained once per training seed (the injected
errors, the out-of-fold predictions and so the fixes stay those of ``--seed``): training noise on
a dataset this small is as large as the effect measured, so the table then gives each model's mean
AP with its spread over the seeds, the recovered share of the means, and each seed's own share.

Usage: python benchmarks/bench_label_loop.py [--images 160] [--val-images 60] [--rate 0.08]
       [--epochs 6] [--image-size 256] [--folds 4] [--seed 0] [--train-seeds S,...] [--work DIR]
       [--backbone ONNX] [--rules LL601,...] [--cv-epochs N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_label_errors import inject as inject_kind, iou  # noqa: E402

KINDS = ("swap", "dropped", "shifted", "spurious")
DEFAULT_RULES = "LL601,LL602,LL603,LL604"


def labellint(*args, check=True) -> subprocess.CompletedProcess:
    env = {**os.environ, "LABELLINT_NO_PROGRESS": "1"}
    proc = subprocess.run([sys.executable, "-m", "labellint", *map(str, args)], capture_output=True, text=True,
                          env=env)
    if check and proc.returncode not in (0, 1):
        raise SystemExit(f"labellint {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return proc


def inject(clean: dict, rate: float, seed: int) -> tuple[dict, dict]:
    """A copy of ``clean`` with ``rate`` of its boxes broken for each kind in turn (the injection
    of bench_label_errors.py), and the truth of each kind."""
    doc, truth = clean, {}
    for kind in KINDS:
        doc, truth[kind] = inject_kind(doc, kind, rate, seed)
    return doc, truth


def undone(fixed: dict, clean: dict, truth: dict) -> dict:
    """Per kind: how many injected errors the fixed file has undone."""
    now = {a["id"]: a for a in fixed["annotations"]}
    was = {a["id"]: a for a in clean["annotations"]}
    boxes: dict = {}
    for a in fixed["annotations"]:
        boxes.setdefault(a["image_id"], []).append(a["bbox"])
    return {"swap": sum(now.get(i, {}).get("category_id") == was[i]["category_id"] for i in truth["swap"]["anns"]),
            "dropped": sum(any(iou(box, b) >= 0.5 for b in boxes.get(image, []))
                           for image, box in truth["dropped"]["dropped"]),
            "shifted": sum(i in now and iou(now[i]["bbox"], was[i]["bbox"]) >= 0.7 for i in truth["shifted"]["anns"]),
            "spurious": sum(i not in now for i in truth["spurious"]["anns"])}


def collateral(noisy: dict, fixed: dict, truth: dict) -> dict:
    """What the fixes did to boxes that carried no injected error: relabelled, moved, deleted."""
    broken = set().union(*(truth[k]["anns"] for k in KINDS if k != "dropped"))
    now = {a["id"]: a for a in fixed["annotations"]}
    sound = [a for a in noisy["annotations"] if a["id"] not in broken]
    return {"relabelled": sum(a["id"] in now and now[a["id"]]["category_id"] != a["category_id"] for a in sound),
            "moved": sum(a["id"] in now and now[a["id"]]["bbox"] != a["bbox"] for a in sound),
            "deleted": sum(a["id"] not in now for a in sound)}


def injected(truth: dict, kind: str) -> int:
    return len(truth[kind]["dropped"] if kind == "dropped" else truth[kind]["anns"])


def train(name: str, ann: Path, data: Path, work: Path, recipe: list[str], folds: int | None = None) -> Path:
    """A run folder for ``ann``, trained unless one for the same bytes and recipe is there."""
    out = work / "runs" / name
    args = ["train", ann, "--images", data / "images", "--out", out, *recipe]
    args += ["--folds", folds] if folds else ["--val", data / "val.json"]
    stamp = {"labels": hashlib.sha256(ann.read_bytes()).hexdigest(), "args": [str(a) for a in args]}
    if (out / "predictions.json").is_file() and (out / "bench-stamp.json").is_file() \
            and json.loads((out / "bench-stamp.json").read_text()) == stamp:
        print(f"  {name}: trained earlier, kept", flush=True)
        return out
    t = time.perf_counter()
    labellint(*args)
    (out / "bench-stamp.json").write_text(json.dumps(stamp))
    print(f"  trained {name} ({time.perf_counter() - t:.0f} s)", flush=True)
    return out


def stats(run: Path) -> tuple[float, float]:
    s = json.loads((run / "metrics.json").read_text())["bbox"]["stats"]
    return s[0], s[1]


def gate(data: Path, a: Path, b: Path) -> dict:
    proc = labellint("gate", "--gt", data / "val.json", "--baseline", a, "--candidate", b, "--max-drop", "1",
                     "--output-format", "json", check=False)
    return json.loads(proc.stdout)["overall"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=160)
    ap.add_argument("--val-images", type=int, default=60)
    ap.add_argument("--rate", type=float, default=0.08, help="share of the boxes broken, per kind")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--cv-epochs", type=int, default=None,
                    help="epochs of the fold models that find the errors (default: --epochs)")
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is often fastest on a busy machine)")
    ap.add_argument("--train-seeds", default="", help="training seeds for A, B and C (default: --seed only)")
    ap.add_argument("--rules", default=DEFAULT_RULES)
    ap.add_argument("--backbone", type=Path, default=None,
                    help="an ONNX embedding model: LL501 joins the fixes (e.g. ../shared/models/"
                         "mobilenetv2-12-int8-embed.onnx)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/labellint-loop"))
    args = ap.parse_args()
    recipe = ["--epochs", args.epochs, "--image-size", args.image_size, "--rpn-proposals", 300, "--roi-batch", 64,
              "--seed", args.seed, "--device", "auto", "--threads", args.threads]
    key = hashlib.sha256(json.dumps([vars(args)[k] for k in ("images", "val_images", "rate", "seed")]).encode())
    work = args.work / key.hexdigest()[:12]
    data = work / "demo"
    if not (data / "val.json").is_file():
        shutil.rmtree(data, ignore_errors=True)
        labellint("demo", data, "--images", args.images, "--val-images", args.val_images, "--seed", args.seed)
    clean = json.loads((data / "clean.json").read_text())
    noisy, truth = inject(clean, args.rate, args.seed)
    (work / "noisy.json").write_text(json.dumps(noisy))
    print(f"{len(clean['annotations'])} clean boxes on {len(clean['images'])} images; injected per kind: "
          + ", ".join(f"{k} {injected(truth, k)}" for k in KINDS), flush=True)

    seeds = [int(v) for v in args.train_seeds.split(",") if v.strip()] or [args.seed]
    cv_epochs = args.cv_epochs or args.epochs
    cv_recipe = recipe[:1] + [cv_epochs] + recipe[2:]
    cv_name = "cv" if cv_epochs == args.epochs else f"cv-e{cv_epochs}"
    cv = train(cv_name, work / "noisy.json", data, work, cv_recipe, folds=args.folds)
    rules, embed = args.rules, []
    if args.backbone:
        rules, embed = rules + ",LL501", ["--images", data / "images", "--backbone", args.backbone]
    # B's labels and runs are named by the rules that fixed them, so that fix sets sit side by side
    fix_set = rules if cv_epochs == args.epochs else f"{rules}|{cv_name}"
    tag = "" if fix_set == DEFAULT_RULES else "-" + hashlib.sha256(fix_set.encode()).hexdigest()[:6]
    fixed = work / f"fixed{tag}.json"
    shutil.copyfile(work / "noisy.json", fixed)
    proc = labellint("check", fixed, "--predictions", cv / "predictions.json", "--select", rules, *embed,
                     "--fix", "--unsafe-fixes", "--exit-zero", check=False)
    if proc.returncode != 0:
        raise SystemExit(f"check --fix failed ({proc.returncode}): {proc.stderr[-2000:]}")
    fixed_doc = json.loads(fixed.read_text())
    print(f"fixes: {len(noisy['annotations'])} -> {len(fixed_doc['annotations'])} boxes; injected errors undone: "
          + ", ".join(f"{k} {v}/{injected(truth, k)}" for k, v in undone(fixed_doc, clean, truth).items())
          + "; sound boxes changed: " + ", ".join(f"{k} {v}" for k, v in collateral(noisy, fixed_doc, truth).items()),
          flush=True)
    labels = {"C": data / "clean.json", "A": work / "noisy.json", "B": fixed}
    runs: dict = {}  # (model, training seed) -> run folder
    for seed in seeds:
        seeded = recipe[:recipe.index("--seed")] + ["--seed", seed] + recipe[recipe.index("--seed") + 2:]
        for name in "CAB":
            run = (name + tag if name == "B" else name) + ("" if seed == args.seed else f"-s{seed}")
            runs[name, seed] = train(run, labels[name], data, work, seeded)

    print("\n| model | labels | AP | AP50 |\n|---|---|---|---|")
    for name, what in (("C", "clean"), ("A", "errors injected"), ("B", "A fixed by labellint")):
        print(f"| {name} | {what} | {_spread([stats(runs[name, s])[0] for s in seeds])} "
              f"| {_spread([stats(runs[name, s])[1] for s in seeds])} |")
    for metric, i in (("AP", 0), ("AP50", 1)):
        a, b, c = (sum(stats(runs[n, s])[i] for s in seeds) / len(seeds) for n in "ABC")
        share = (b - a) / (c - a) if c != a else float("nan")
        mean = "means " if len(seeds) > 1 else ""
        print(f"\nrecovered share of {metric} ({mean}over {len(seeds)} training seed(s)): (B - A) / (C - A) = "
              f"({b:.3f} - {a:.3f}) / ({c:.3f} - {a:.3f}) = {share:.2f}")
        if len(seeds) > 1:
            per = [(stats(runs["B", s])[i] - stats(runs["A", s])[i]) / (stats(runs["C", s])[i] - stats(runs["A", s])[i])
                   if stats(runs["C", s])[i] != stats(runs["A", s])[i] else float("nan") for s in seeds]
            print("  per training seed: " + ", ".join(f"seed {s}: {v:.2f}" for s, v in zip(seeds, per)))
            ba = [stats(runs["B", s])[i] - stats(runs["A", s])[i] for s in seeds]
            ca = [stats(runs["C", s])[i] - stats(runs["A", s])[i] for s in seeds]
            print(f"  B - A {_mean_se(ba)}, C - A {_mean_se(ca)} (mean ± standard error over seeds); "
                  f"the share's 90% interval, resampling the seeds: {_share_interval(ba, ca)}")
    for seed in seeds:
        ba, ca = gate(data, runs["A", seed], runs["B", seed]), gate(data, runs["A", seed], runs["C", seed])
        for label, g in (("B - A", ba), ("C - A", ca)):
            o = g["AP"]
            print(f"seed {seed}, {label}: AP {o['delta']:+.3f} (95% CI {o['ci_lower']:+.3f} .. {o['ci_upper']:+.3f}, "
                  "gate's paired bootstrap)")


def _mean_se(values: list[float]) -> str:
    mean = sum(values) / len(values)
    sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{mean:+.3f} ± {sd / len(values) ** 0.5:.3f}"


def _share_interval(ba: list[float], ca: list[float], draws: int = 10_000) -> str:
    """5th and 95th percentiles of mean(B - A) / mean(C - A) over the seeds resampled with
    replacement (draws whose C - A mean is not positive count as undefined and are left out)."""
    import random

    rng, n, shares = random.Random(0), len(ba), []
    for _ in range(draws):
        pick = [rng.randrange(n) for _ in range(n)]
        c = sum(ca[j] for j in pick)
        if c > 0:
            shares.append(sum(ba[j] for j in pick) / c)
    shares.sort()
    if len(shares) < draws // 2:
        return "undefined (C - A not positive in most resamples)"
    return f"{shares[int(0.05 * len(shares))]:.2f} .. {shares[int(0.95 * len(shares)) - 1]:.2f}"


def _spread(values: list[float]) -> str:
    """Mean, and with several values their sample standard deviation and range."""
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.3f}"
    sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{mean:.3f} ± {sd:.3f} ({min(values):.3f} .. {max(values):.3f})"

if __name__ == "__main__":
    main()
