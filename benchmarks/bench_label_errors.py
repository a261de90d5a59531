"""Label-error benchmark: do the model-based rules (LL60x) find injected errors, and how does
cleanlab's ObjectLab do on the same labels and predictions?

The chess-pieces dataset (all splits of /work/shared/data/chess_pieces merged, ids renumbered)
is the clean truth. For each noise kind a copy gets errors injected on ``--rate`` of its boxes
(seeded), and the ground truth of what was corrupted is kept:

* ``swap``: a box gets another class;
* ``dropped``: a box is deleted (found when an LL601 finding on its image proposes a box at IoU
  >= 0.5 with it);
* ``shifted``: a box moves by 30-70% of its width/height in a random direction (kept in the image);
* ``spurious``: a box is added where there is no object (IoU < 0.1 with every true box), with a
  size typical of a random class and that class;
* ``resized``: a box's width and height are scaled about its centre by 0.5-0.7 or 1.4-1.8.

Predictions are simulated from the *clean* labels as a good detector would give them
(``simulate_predictions``, parameters below), so every figure measures the rules, not a model.
labellint runs as a user runs it (``python -m labellint check NOISY --predictions PRED -f json
--select <every LL60x rule>``); ObjectLab (``cleanlab.object_detection``) gets the same labels and
predictions converted to its format.

Per kind it prints a markdown table: the rule meant for the kind, box-level precision and recall
of that rule, box recall of any LL60x rule, image-level precision/recall/F1 of any LL60x finding,
ObjectLab's image-level precision/recall/F1 (``find_label_issues``), ObjectLab's precision among
the N images its ``get_label_quality_scores`` ranks worst (N = the truly bad images: the ranking
apart from its threshold), and the counts. It also counts the false alarms of both on the clean
labels. Figures and their discussion: benchmarks/README_label_errors.md.

Usage: python benchmarks/bench_label_errors.py [--kinds swap,dropped,shifted,spurious,resized]
       [--rate 0.03] [--seed 0] [--data DIR] [--json]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "chess_pieces"
SPLITS = ("train", "valid", "test")
KINDS = ("swap", "dropped", "shifted", "spurious", "resized")

# The rule meant to find each kind, for the box-level figures (LL604 only exists in some trees).
KIND_RULE = {"swap": "LL603", "dropped": "LL601", "shifted": "LL602", "spurious": "LL604", "resized": "LL602"}

# --- Simulated detector (a good one, predicting the clean labels) ---
TRUE_SCORE = (0.96, 1.0)  # confidence of a true box the model finds well
JITTER = 0.03  # position and size of a predicted true box move by up to this share of its size
WEAK_RATE = 0.05  # share of true boxes the model finds only weakly ...
WEAK_SCORE = (0.3, 0.6)  # ... at this confidence
FP_PER_IMAGE = (0, 3)  # low-score false positives per image, inclusive range
FP_SCORE = (0.02, 0.3)
SECOND_CLASS_RATE = 0.1  # share of true boxes that also get a low-score prediction of another class
SECOND_CLASS_SCORE = (0.01, 0.2)

# --- Noise ---
SHIFT = (0.3, 0.7)  # shift as a share of the box's width/height
SHRINK = (0.5, 0.7)  # resize factors: shrink or grow, half the boxes each
GROW = (1.4, 1.8)
SPURIOUS_MAX_IOU = 0.1  # an added box overlaps every true box by less than this
DROP_MATCH_IOU = 0.5  # an LL601 finding at this IoU with a deleted box found it
PLACEMENT_TRIES = 200  # random placements tried for a spurious box before another image is tried
MIN_CLASS_BOXES = 10  # classes with fewer boxes are never the class of a swap, an added box or a false positive

# The JSON report gives an LL601 finding's proposed box only in its message: "... at [x, y, w, h] ...".
BOX_IN_MESSAGE = re.compile(r" at \[([-0-9.e, ]+)\]")

# ---------------------------------------------------------------- data


def load_clean(data: Path) -> dict:
    """All splits as one COCO dataset; image and annotation ids renumbered (1..n) to stay unique."""
    images, annotations, categories = [], [], None
    for split in SPLITS:
        coco = json.loads((data / split / "_annotations.coco.json").read_text())
        categories = categories or coco["categories"]
        new_id = {}
        for img in coco["images"]:
            new_id[img["id"]] = len(images) + 1
            images.append({**img, "id": new_id[img["id"]], "file_name": f"{split}/{img['file_name']}"})
        for ann in coco["annotations"]:
            annotations.append({**ann, "id": len(annotations) + 1, "image_id": new_id[ann["image_id"]]})
    return {"images": images, "annotations": annotations, "categories": categories}


def real_classes(coco: dict) -> list[int]:
    """Classes with at least MIN_CLASS_BOXES boxes: the chess export lists its supercategory
    'pieces' (no box) and a bare 'bishop' (one box in 2,870), which an annotator would not pick
    and a detector would not invent."""
    counts = Counter(a["category_id"] for a in coco["annotations"])
    return sorted(c for c, n in counts.items() if n >= MIN_CLASS_BOXES)


def image_sizes(coco: dict) -> dict[int, tuple[float, float]]:
    return {img["id"]: (float(img["width"]), float(img["height"])) for img in coco["images"]}


def iou(a, b) -> float:
    """IoU of two COCO [x, y, w, h] boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def clip_box(x, y, w, h, width, height) -> list[float]:
    """The part of a box inside the image, rounded as an annotation tool would store it."""
    x1, y1 = max(0.0, x), max(0.0, y)
    x2, y2 = min(width, x + w), min(height, y + h)
    return [round(x1, 2), round(y1, 2), round(max(1.0, x2 - x1), 2), round(max(1.0, y2 - y1), 2)]


# ---------------------------------------------------------------- simulated predictions


def simulate_predictions(clean: dict, seed: int) -> list[dict]:
    """COCO results of a good detector on the clean labels (see the constants above)."""
    rng = np.random.default_rng(seed)
    sizes = image_sizes(clean)
    classes = real_classes(clean)
    preds = []
    for ann in clean["annotations"]:
        width, height = sizes[ann["image_id"]]
        x, y, w, h = ann["bbox"]
        dx, dy, dw, dh = rng.uniform(-JITTER, JITTER, 4)
        box = clip_box(x + dx * w, y + dy * h, w * (1 + dw), h * (1 + dh), width, height)
        score = rng.uniform(*WEAK_SCORE) if rng.random() < WEAK_RATE else rng.uniform(*TRUE_SCORE)
        preds.append({"image_id": ann["image_id"], "category_id": ann["category_id"], "bbox": box,
                      "score": round(float(score), 4)})
        if rng.random() < SECOND_CLASS_RATE:
            other = int(rng.choice([c for c in classes if c != ann["category_id"]]))
            preds.append({"image_id": ann["image_id"], "category_id": other, "bbox": box,
                          "score": round(float(rng.uniform(*SECOND_CLASS_SCORE)), 4)})
    typical = [a["bbox"][2:] for a in clean["annotations"]]
    for img in clean["images"]:
        for _ in range(int(rng.integers(FP_PER_IMAGE[0], FP_PER_IMAGE[1] + 1))):
            w, h = typical[int(rng.integers(len(typical)))]
            x, y = rng.uniform(0, max(1.0, img["width"] - w)), rng.uniform(0, max(1.0, img["height"] - h))
            preds.append({"image_id": img["id"], "category_id": int(rng.choice(classes)),
                          "bbox": clip_box(x, y, w, h, img["width"], img["height"]),
                          "score": round(float(rng.uniform(*FP_SCORE)), 4)})
    return preds


# ---------------------------------------------------------------- noise


def inject(clean: dict, kind: str, rate: float, seed: int) -> tuple[dict, dict]:
    """A noisy copy and its ground truth: ``anns`` (ids of corrupted or added annotations),
    ``images`` (ids of images with an error) and ``dropped`` ((image id, bbox) of deleted boxes)."""
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    noisy = copy.deepcopy(clean)
    n = max(1, round(rate * len(clean["annotations"])))
    if kind == "spurious":
        return noisy, add_spurious(noisy, n, rng)
    picked = [noisy["annotations"][i] for i in rng.choice(len(noisy["annotations"]), n, replace=False)]
    truth = {"anns": set(), "images": {a["image_id"] for a in picked}, "dropped": []}
    if kind == "dropped":
        gone = {a["id"] for a in picked}
        noisy["annotations"] = [a for a in noisy["annotations"] if a["id"] not in gone]
        truth["dropped"] = [(a["image_id"], a["bbox"]) for a in picked]
        return noisy, truth
    sizes = image_sizes(noisy)
    classes = real_classes(clean)
    for ann in picked:
        truth["anns"].add(ann["id"])
        if kind == "swap":
            ann["category_id"] = int(rng.choice([c for c in classes if c != ann["category_id"]]))
        elif kind == "shifted":
            ann["bbox"] = shifted(ann["bbox"], sizes[ann["image_id"]], rng)
        else:
            ann["bbox"] = resized(ann["bbox"], sizes[ann["image_id"]], rng)
        ann["area"] = round(ann["bbox"][2] * ann["bbox"][3], 2)
    return noisy, truth


def shifted(bbox, size, rng) -> list[float]:
    """Moved whole, so its size is unchanged; kept inside the image (a box at the border moves
    less far, as an annotator's drag would stop there)."""
    x, y, w, h = bbox
    width, height = size
    angle = rng.uniform(0, 2 * math.pi)
    share = rng.uniform(*SHIFT)
    nx = min(max(0.0, x + share * w * math.cos(angle)), width - w)
    ny = min(max(0.0, y + share * h * math.sin(angle)), height - h)
    return [round(nx, 2), round(ny, 2), w, h]


def resized(bbox, size, rng) -> list[float]:
    x, y, w, h = bbox
    factor = rng.uniform(*(SHRINK if rng.random() < 0.5 else GROW))
    cx, cy = x + w / 2, y + h / 2
    return clip_box(cx - factor * w / 2, cy - factor * h / 2, factor * w, factor * h, *size)


def add_spurious(noisy: dict, n: int, rng) -> dict:
    """Adds n boxes on no object: random image, random class, a size that class has somewhere in
    the data, a free place (IoU < SPURIOUS_MAX_IOU with every box there)."""
    by_image = {}
    for ann in noisy["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann["bbox"])
    by_class = {}
    for ann in noisy["annotations"]:
        by_class.setdefault(ann["category_id"], []).append(ann["bbox"][2:])
    classes = real_classes(noisy)
    truth = {"anns": set(), "images": set(), "dropped": []}
    next_id = max(a["id"] for a in noisy["annotations"]) + 1
    while len(truth["anns"]) < n:
        img = noisy["images"][int(rng.integers(len(noisy["images"])))]
        cls = int(rng.choice(classes))
        box = free_place(img, by_class[cls], by_image.get(img["id"], []), rng)
        if box is None:
            continue
        noisy["annotations"].append({"id": next_id, "image_id": img["id"], "category_id": cls, "bbox": box,
                                     "area": round(box[2] * box[3], 2), "segmentation": [], "iscrowd": 0})
        by_image.setdefault(img["id"], []).append(box)  # the next spurious box avoids this one too
        truth["anns"].add(next_id)
        truth["images"].add(img["id"])
        next_id += 1
    return truth


def free_place(img, class_sizes, boxes, rng):
    for _ in range(PLACEMENT_TRIES):
        w, h = class_sizes[int(rng.integers(len(class_sizes)))]
        if w >= img["width"] or h >= img["height"]:
            continue
        x, y = rng.uniform(0, img["width"] - w), rng.uniform(0, img["height"] - h)
        box = [round(float(x), 2), round(float(y), 2), w, h]
        if all(iou(box, other) < SPURIOUS_MAX_IOU for other in boxes):
            return box
    return None


# ---------------------------------------------------------------- labellint


def model_rule_codes() -> list[str]:
    from labellint import registry

    return sorted(code for code in registry.by_code() if code.startswith("LL60"))


def run_labellint(noisy: dict, pred_path: Path, codes: list[str], work: Path) -> list[dict]:
    """Findings of the real CLI, as a user gets them."""
    path = work / "noisy.json"
    path.write_text(json.dumps(noisy))
    out = subprocess.run(
        [sys.executable, "-m", "labellint", "check", str(path), "--predictions", str(pred_path), "-f", "json",
         "--select", ",".join(codes), "--exit-zero", "--no-cache"],
        capture_output=True, text=True, cwd=work, check=True)
    return json.loads(out.stdout)["findings"]


def finding_box(finding: dict):
    """The box an LL601 finding proposes, in COCO [x, y, w, h]."""
    match = BOX_IN_MESSAGE.search(finding.get("message", ""))
    return [float(v) for v in match.group(1).split(",")] if match else None


# ---------------------------------------------------------------- ObjectLab (cleanlab)


def run_objectlab(noisy: dict, preds: list[dict]):
    """ObjectLab's verdict, ``{"flagged": image ids with an issue, "ranked": image ids worst
    first by label quality score}``, or None and the reason it could not run."""
    try:
        from cleanlab.object_detection.filter import find_label_issues
        from cleanlab.object_detection.rank import get_label_quality_scores
    except ImportError as exc:
        return None, f"cleanlab not importable ({exc}); pip install cleanlab==2.9.0"
    labels, predictions, ids = to_cleanlab(noisy, preds)
    is_issue = find_label_issues(labels, predictions)
    quality = get_label_quality_scores(labels, predictions, verbose=False)
    return {"flagged": {ids[i] for i in np.flatnonzero(is_issue)},
            "ranked": [ids[i] for i in np.argsort(quality, kind="stable")]}, None


def to_cleanlab(coco: dict, preds: list[dict]):
    """cleanlab's format: per image, labels {'bboxes': (L, 4) x1y1x2y2, 'labels': (L,)} and
    predictions as K arrays (n, 5) [x1, y1, x2, y2, score], one per category id 0..K-1."""
    k = max(c["id"] for c in coco["categories"]) + 1
    ids = [img["id"] for img in coco["images"]]
    row = {image_id: i for i, image_id in enumerate(ids)}
    boxes, classes = [[] for _ in ids], [[] for _ in ids]
    for ann in coco["annotations"]:
        boxes[row[ann["image_id"]]].append(xyxy(ann["bbox"]))
        classes[row[ann["image_id"]]].append(ann["category_id"])
    labels = [{"bboxes": np.array(b, dtype=np.float32).reshape(-1, 4), "labels": np.array(c, dtype=int),
               "image_name": str(image_id)} for b, c, image_id in zip(boxes, classes, ids)]
    per_class = [[[] for _ in range(k)] for _ in ids]
    for p in preds:
        per_class[row[p["image_id"]]][p["category_id"]].append([*xyxy(p["bbox"]), p["score"]])
    predictions = [np.array([np.array(c, dtype=np.float32).reshape(-1, 5) for c in image], dtype=object)
                   for image in per_class]
    return labels, predictions, ids


def xyxy(bbox) -> list[float]:
    x, y, w, h = bbox
    return [x, y, x + w, y + h]


# ---------------------------------------------------------------- metrics


def ratio(num: int, den: int):
    return num / den if den else None


def prf(flagged: set, bad: set) -> dict:
    tp = len(flagged & bad)
    p, r = ratio(tp, len(flagged)), ratio(tp, len(bad))
    f1 = 2 * p * r / (p + r) if p and r else (0.0 if p is not None and r is not None else None)
    return {"precision": p, "recall": r, "f1": f1, "flagged": len(flagged), "bad": len(bad)}


def box_hits(kind: str, truth: dict, findings: list[dict]) -> tuple[int, set]:
    """(findings that hit an injected error, injected errors found) among the given findings;
    an injected error is an annotation id, or for dropped boxes its index in truth['dropped']."""
    if kind != "dropped":
        hit = [f for f in findings if f.get("annotation_id") in truth["anns"]]
        return len(hit), {f["annotation_id"] for f in hit}
    good, found = 0, set()
    for f in findings:
        box = finding_box(f)
        match = {i for i, (image_id, gone) in enumerate(truth["dropped"])
                 if box is not None and f.get("image_id") == image_id and iou(box, gone) >= DROP_MATCH_IOU}
        good += bool(match)
        found |= match
    return good, found


def score_kind(kind: str, truth: dict, findings: list[dict], codes: list[str], objectlab) -> dict:
    rule = KIND_RULE[kind]
    injected = len(truth["dropped"]) or len(truth["anns"])
    own = [f for f in findings if f["code"] == rule]
    good, found = box_hits(kind, truth, own)
    _, found_any = box_hits(kind, truth, findings)
    return {
        "kind": kind,
        "rule": rule if rule in codes else f"{rule} (absent)",
        "injected": injected,
        "rule_findings": len(own),
        "all_findings": len(findings),
        "box_precision": ratio(good, len(own)),
        "box_recall": ratio(len(found), injected),
        "box_recall_any": ratio(len(found_any), injected),
        "image": prf({f["image_id"] for f in findings if f.get("image_id") is not None}, truth["images"]),
        "objectlab_image": prf(objectlab["flagged"], truth["images"]) if objectlab else None,
        "objectlab_precision_at_bad": precision_at_bad(objectlab["ranked"], truth["images"]) if objectlab else None,
    }


def precision_at_bad(ranked: list, bad: set):
    """Share of truly bad images among the len(bad) worst by ObjectLab's quality score: how well
    the score ranks, apart from find_label_issues' threshold."""
    return ratio(len(set(ranked[:len(bad)]) & bad), len(bad))


# ---------------------------------------------------------------- report


def pct(v) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def prf_text(m) -> str:
    return "skipped" if m is None else f"{pct(m['precision'])} / {pct(m['recall'])} / {pct(m['f1'])}"


def table(rows: list[dict]) -> str:
    head = ("| kind | rule | box P | box R | box R (any LL60x) | image P / R / F1 (any LL60x) | "
            "ObjectLab image P / R / F1 | ObjectLab P@bad | injected | rule findings | all findings | "
            "images bad / flagged / OL flagged |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        ol = r["objectlab_image"]
        lines.append(
            f"| {r['kind']} | {r['rule']} | {pct(r['box_precision'])} | {pct(r['box_recall'])} | "
            f"{pct(r['box_recall_any'])} | {prf_text(r['image'])} | {prf_text(ol)} | "
            f"{pct(r['objectlab_precision_at_bad'])} | {r['injected']} | "
            f"{r['rule_findings']} | {r['all_findings']} | {r['image']['bad']} / {r['image']['flagged']} / "
            f"{'-' if ol is None else ol['flagged']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated subset of " + ",".join(KINDS))
    ap.add_argument("--rate", type=float, default=0.03, help="share of boxes corrupted per kind")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=DATA, help="chess_pieces folder with train/valid/test")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    args = ap.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        ap.error(f"unknown kinds {unknown}; choose from {', '.join(KINDS)}")
    if not (args.data / SPLITS[0] / "_annotations.coco.json").is_file():
        print(f"skipped: the chess dataset is not at {args.data} (../shared absent?)")
        return 0
    started = time.perf_counter()
    clean = load_clean(args.data)
    preds = simulate_predictions(clean, args.seed)
    codes = model_rule_codes()
    rows, baseline_note = [], None
    with tempfile.TemporaryDirectory(prefix="bench-label-errors-") as tmp:
        work = Path(tmp)
        pred_path = work / "predictions.json"
        pred_path.write_text(json.dumps(preds))
        clean_findings = run_labellint(clean, pred_path, codes, work)
        for kind in kinds:
            noisy, truth = inject(clean, kind, args.rate, args.seed)
            findings = run_labellint(noisy, pred_path, codes, work)
            objectlab, baseline_note = run_objectlab(noisy, preds)
            rows.append(score_kind(kind, truth, findings, codes, objectlab))
        clean_objectlab, _ = run_objectlab(clean, preds)
    meta = {"images": len(clean["images"]), "annotations": len(clean["annotations"]), "predictions": len(preds),
            "rules": codes, "rate": args.rate, "seed": args.seed,
            "clean_findings": {c: sum(f["code"] == c for f in clean_findings) for c in codes},
            "clean_objectlab_flagged": len(clean_objectlab["flagged"]) if clean_objectlab else None,
            "objectlab": baseline_note or "cleanlab object_detection: find_label_issues, get_label_quality_scores",
            "seconds": round(time.perf_counter() - started, 1)}
    if args.json:
        print(json.dumps({"meta": meta, "kinds": rows}, indent=2, default=list))
        return 0
    print(f"chess_pieces merged: {meta['images']} images, {meta['annotations']} boxes; {meta['predictions']} "
          f"simulated predictions; rules {', '.join(codes)}; rate {args.rate}, seed {args.seed}")
    print(f"on the clean labels (false alarms): findings {meta['clean_findings']}; images ObjectLab flags: "
          f"{meta['clean_objectlab_flagged']}")
    if baseline_note:
        print(f"ObjectLab baseline skipped: {baseline_note}")
    print()
    print(table(rows))
    print(f"\n{meta['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
