"""Detection quality of LL501 (embedding-neighbour class consistency) on the chess set.

All three splits of shared/data/chess_pieces are merged into one COCO file (ids made unique,
file names prefixed with the split folder). Class swaps are injected into 5% of the boxes with a
fixed seed, each to a visually similar class: the same piece in the other colour, or another
piece of the same colour (one of the two kinds at random). Then, on the same embeddings
(shared/models/mobilenetv2-12-int8-embed.onnx, LL501's default crops), compare:

  (a) LL501 at its defaults (leave-one-out similarity-weighted kNN + confident learning),
  (b) Encord Active's score: share of the 9 nearest neighbours with the same class (flag < 0.5),
  (c) cleanlab Datalab label issues from the same (L2-normalised) embeddings.

Real label errors already in the data would count as false positives for every method. The
annotation ids in REAL_ERRORS were flagged by LL501 on the unmodified files and confirmed by eye
(the crop shows another piece or colour); they are left out of the injection and out of the
scoring (neither positive nor negative), for all three methods alike. Numbers without that
exclusion are printed too. The list comes from LL501's own flags, so real errors that LL501
misses are not in it (they stay in the scoring as negatives, where they cost every method).

Small objects (issue 14 part 5): ``--box-side 28`` first shrinks every photo (written to a
temporary folder, PNG, Lanczos) by one factor so that the median box side, sqrt(w * h), becomes
about 28 px; boxes and image sizes are scaled alike; the injection and the scoring are unchanged.
A proxy for sets of small, low-resolution objects (faces in crowds). Row (a-) is LL501 with its
neighbours alone (``linear_probe`` false, the default until 2026-12-06).

Usage: python benchmarks/bench_embed_quality.py [--shared ../shared] [--seed 0] [--rate 0.05] [--box-side 28]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# (split, annotation id): what the crop shows, checked by eye on the unmodified data
REAL_ERRORS = {
    ("train", 1349): "black-knight", ("train", 1350): "black-knight", ("train", 1491): "black-rook",
    ("valid", 289): "white-bishop", ("train", 2070): "white-rook", ("train", 355): "black-rook",
    ("train", 461): "black-knight", ("train", 1729): "black-knight", ("train", 1228): "white-knight",
    ("train", 460): "black-knight", ("train", 98): "black-king", ("train", 455): "black-bishop",
    ("train", 1227): "white-knight", ("train", 45): "white-rook", ("train", 490): "black-knight",
    ("train", 897): "black-knight", ("train", 896): "black-knight", ("train", 1492): "black-rook",
    ("train", 356): "black-rook", ("train", 25): "black-bishop", ("valid", 174): "white-knight",
}
SPLITS = ("train", "valid", "test")


def merged_coco(root: Path) -> tuple[dict, list]:
    """One COCO document for all splits, and (split, original id) per annotation."""
    out = {"images": [], "annotations": [], "categories": None}
    origin = []
    for s, split in enumerate(SPLITS):
        doc = json.loads((root / split / "_annotations.coco.json").read_text())
        out["categories"] = out["categories"] or doc["categories"]
        for im in doc["images"]:
            out["images"].append({**im, "id": s * 100000 + im["id"], "file_name": f"{split}/{im['file_name']}"})
        for a in doc["annotations"]:
            out["annotations"].append({**a, "id": s * 100000 + a["id"], "image_id": s * 100000 + a["image_id"]})
            origin.append((split, a["id"]))
    return out, origin


def inject(doc: dict, origin: list, rate: float, seed: int, kinds: dict | None = None) -> np.ndarray:
    """Swap the class of ``rate`` of the boxes to a similar class; returns the swapped positions
    (and fills ``kinds``: position -> "colour" or "piece")."""
    rng = np.random.default_rng(seed)
    names = {c["id"]: c["name"] for c in doc["categories"]}
    by_name = {v: k for k, v in names.items()}
    eligible = [i for i, a in enumerate(doc["annotations"])
                if "-" in names[a["category_id"]] and origin[i] not in REAL_ERRORS]
    chosen = np.sort(rng.choice(eligible, size=int(round(rate * len(doc["annotations"]))), replace=False))
    pieces = sorted({n.split("-")[1] for n in names.values() if "-" in n})
    for i in chosen.tolist():
        colour, piece = names[doc["annotations"][i]["category_id"]].split("-")
        if rng.random() < 0.5:
            new = f"{'white' if colour == 'black' else 'black'}-{piece}"
            kind = "colour"
        else:
            new = f"{colour}-{rng.choice([p for p in pieces if p != piece])}"
            kind = "piece"
        if kinds is not None:
            kinds[i] = kind
        doc["annotations"][i]["category_id"] = by_name[new]
    return chosen


def box_side(doc: dict) -> float:
    """The median box side, sqrt(w * h), in pixels."""
    b = np.array([a["bbox"] for a in doc["annotations"]], dtype=np.float64).reshape(-1, 4)
    return float(np.median(np.sqrt(np.clip(b[:, 2], 0, None) * np.clip(b[:, 3], 0, None))))


def downscale(doc: dict, root: Path, out: Path, side: float) -> float:
    """Shrink every image of ``doc`` (under ``root``) into ``out`` so that the median box side
    becomes about ``side`` px; scale boxes, areas and image sizes in ``doc`` alike. Returns the
    factor."""
    from PIL import Image

    factor = side / box_side(doc)
    if not 0 < factor < 1:
        raise SystemExit(f"--box-side {side}: the median box side is {box_side(doc):.0f} px already")
    scale = {}
    for im in doc["images"]:
        w, h = max(1, round(im["width"] * factor)), max(1, round(im["height"] * factor))
        dest = out / im["file_name"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(root / im["file_name"]) as pic:
            pic.convert("RGB").resize((w, h), Image.Resampling.LANCZOS).save(dest.with_suffix(".png"))
        scale[im["id"]] = (w / im["width"], h / im["height"])
        im.update(width=w, height=h, file_name=str(Path(im["file_name"]).with_suffix(".png")))
    for a in doc["annotations"]:
        sx, sy = scale[a["image_id"]]
        x, y, bw, bh = a["bbox"]
        a["bbox"] = [x * sx, y * sy, bw * sx, bh * sy]
        a["area"] = a["bbox"][2] * a["bbox"][3]
    return factor


def metrics(truth: np.ndarray, flagged: np.ndarray, score: np.ndarray, keep: np.ndarray) -> dict:
    from sklearn.metrics import roc_auc_score

    t, f, s = truth[keep], flagged[keep], score[keep]
    tp = int((t & f).sum())
    p = tp / max(1, int(f.sum()))
    r = tp / max(1, int(t.sum()))
    return {"precision": p, "recall": r, "f1": 2 * p * r / max(1e-12, p + r), "auroc": float(roc_auc_score(t, s)),
            "flagged": int(f.sum()), "tp": tp}


def baselines(vectors: np.ndarray, rows: np.ndarray, classes: np.ndarray, n: int):
    """Per-box (score, flag) over ``n`` boxes (``rows``: the embedded ones) of Encord's 9-NN share
    (flag < 0.5) and of cleanlab Datalab's label issues on the same embeddings (None without
    ``cleanlab[datalab]``)."""
    from labellint.embed import knn

    same = (classes[knn.exact(vectors, 9).index] == classes[:, None]).mean(axis=1)
    enc_score, enc_flag = np.zeros(n), np.zeros(n, bool)
    enc_score[rows], enc_flag[rows] = 1.0 - same, same < 0.5
    try:
        from cleanlab import Datalab

        lab = Datalab(data={"label": classes.astype(int)}, label_name="label", verbosity=0)
    except ImportError:
        return (enc_score, enc_flag), None
    lab.find_issues(features=knn.normalise(vectors), issue_types={"label": {}})
    issues = lab.get_issues("label")
    cl_flag, cl_score = np.zeros(n, bool), np.zeros(n)
    cl_flag[rows], cl_score[rows] = issues["is_label_issue"].to_numpy(), 1.0 - issues["label_score"].to_numpy()
    return (enc_score, enc_flag), (cl_score, cl_flag)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("LABELLINT_SHARED", REPO.parent / "shared")))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rate", type=float, default=0.05)
    ap.add_argument("--k", type=int, default=None, help="override LL501's k (default: the rule's)")
    ap.add_argument("--box-side", type=float, default=None,
                    help="shrink the photos so that the median box side sqrt(w*h) is about this many px")
    args = ap.parse_args(argv)
    root = args.shared / "data" / "chess_pieces"
    model = args.shared / "models" / "mobilenetv2-12-int8-embed.onnx"
    if not root.is_dir() or not model.is_file():
        print(f"needs {root} and {model}", file=sys.stderr)
        return 2

    from labellint import embed
    from labellint.coco import load
    from labellint.context import RunContext
    from labellint import toolkit
    from labellint.embed import consistency, knn
    from labellint.rules import ll501_class_inconsistent as rule

    doc, origin = merged_coco(root)
    kinds: dict = {}
    swapped = inject(doc, origin, args.rate, args.seed, kinds)
    full_side = box_side(doc)
    with tempfile.TemporaryDirectory() as tmp:
        images = root
        if args.box_side:
            images = Path(tmp) / "images"
            downscale(doc, root, images, args.box_side)
        path = Path(tmp) / "chess_all.json"
        path.write_text(json.dumps(doc))
        ds = load(path, "chess_all.json")
        options = dict(rule.OPTIONS)
        if args.k:
            options["k"] = args.k
        context = RunContext(images=images, backbone=str(model), source=path)
        t0 = time.perf_counter()
        problems = list(rule.check(ds, options, context))
        t_rule = time.perf_counter() - t0
        _, rows, _, vectors = embed.embeddings(ds, float(options["context"]), context)

    n = len(ds.annotations)
    truth = np.zeros(n, bool)
    truth[swapped] = True
    real = np.array([origin[i] in REAL_ERRORS for i in range(n)])
    keep_all = np.zeros(n, bool)
    keep_all[rows] = True
    keep_clean = keep_all & ~real
    judged_classes = ds.ann_category_row[rows]

    # (a) LL501: flags from the rule itself, scores for every crop from the same computation
    ours_flag = np.zeros(n, bool)
    for p in problems:
        if p.annotation is not None:
            ours_flag[p.annotation] = True
    nb = knn.neighbours(vectors, options["k"])
    verdict = toolkit.judge(nb.index, nb.similarity, judged_classes, len(ds.categories),
                            min_support=options["min_class_support"],
                            vectors=vectors if options["linear_probe"] else None)
    ours_score = np.zeros(n)
    ours_score[rows] = verdict.score
    assert set(np.flatnonzero(ours_flag)) == set(rows[verdict.flagged].tolist())
    t1 = time.perf_counter()
    (enc_score, enc_flag), datalab = baselines(vectors, rows, judged_classes, n)
    t_cl = time.perf_counter() - t1
    if datalab is None:
        print("row (c) needs cleanlab Datalab: pip install 'cleanlab[datalab]'", file=sys.stderr)
        return 2
    cl_score, cl_flag = datalab

    print(f"median box side sqrt(w*h): {box_side(doc):.1f} px (full resolution {full_side:.1f} px; "
          f"photos {doc['images'][0]['width']}x{doc['images'][0]['height']})")
    print(f"chess_pieces, all splits: {n} boxes, {len(rows)} embedded, {int(truth.sum())} swaps injected "
          f"(rate {args.rate}, seed {args.seed}); {int(real.sum())} confirmed real errors excluded")
    print(f"LL501 options: {{k: {options['k']}, exclude_same_image: {options['exclude_same_image']}, "
          f"min_class_support: {options['min_class_support']}, context: {options['context']}, "
          f"linear_probe: {options['linear_probe']}}}; rule time {t_rule:.1f} s (embedding included), "
          f"Encord + Datalab {t_cl:.1f} s")
    methods = [("(a) LL501", ours_flag, ours_score)]
    if options["linear_probe"]:  # the neighbours alone, as LL501 was before the probe became its default
        alone = consistency.judge(nb.index, nb.similarity, judged_classes, len(ds.categories),
                                  min_support=options["min_class_support"])
        alone_flag, alone_score = np.zeros(n, bool), np.zeros(n)
        alone_flag[rows], alone_score[rows] = alone.flagged, alone.score
        methods.append(("(a-) LL501 kNN only", alone_flag, alone_score))
    methods += [("(b) Encord 9-NN share", enc_flag, enc_score), ("(c) cleanlab Datalab", cl_flag, cl_score)]
    rows_out = []
    for name, flag, score in methods:
        m = metrics(truth, flag, score, keep_clean)
        s = metrics(truth, flag, score, keep_all)
        rows_out.append((name, m, s))
        print(f"{name:24s} precision {m['precision']:.3f} recall {m['recall']:.3f} F1 {m['f1']:.3f} "
              f"AUROC {m['auroc']:.3f} (flagged {m['flagged']}, tp {m['tp']}) | real errors counted as FP: "
              f"precision {s['precision']:.3f} F1 {s['f1']:.3f}")
    real_rows = np.flatnonzero(real)
    print(f"confirmed real errors flagged: LL501 {int(ours_flag[real_rows].sum())}/{len(real_rows)}, "
          f"Encord {int(enc_flag[real_rows].sum())}/{len(real_rows)}, Datalab {int(cl_flag[real_rows].sum())}/{len(real_rows)}")
    missed = np.flatnonzero(truth & ~ours_flag & keep_clean)
    by_kind = {k: sum(1 for i in missed.tolist() if kinds[i] == k) for k in ("colour", "piece")}
    total = {k: sum(1 for v in kinds.values() if v == k) for k in ("colour", "piece")}
    pos = {int(r): j for j, r in enumerate(rows.tolist())}
    p_given = [float(verdict.probs[pos[i], verdict.given[pos[i]]]) for i in missed.tolist()]
    print(f"LL501 missed swaps: {len(missed)} (colour swaps {by_kind['colour']}/{total['colour']}, "
          f"piece swaps {by_kind['piece']}/{total['piece']}); median p(given class) of the missed "
          f"{np.median(p_given) if p_given else float('nan'):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
