"""A demo dataset the project builds itself: shapes on varied backgrounds, with seeded label defects.

``labellint demo OUT`` writes ``OUT/images/*.png``, a clean ``OUT/clean.json`` and
``OUT/annotations.json`` (pretty-printed, like dataset repos keep them) with defects a reviewer
should catch: a box outside its image, a duplicated annotation id, an unknown category, a string
id, swapped classes. ``OUT/DEFECTS.md`` lists what was injected, each annotation by its id, and
whether labellint finds it: checked when the file is written for the defects the file alone
shows (a lint with the built-in settings), and for the class swaps, which need ``--images`` and
a backbone, measured by ``scripts/demo.sh`` after its lint (``python -m labellint.demo record``).
No claim in it is written by hand.
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from labellint.fsutil import atomic_write

CLASSES = ["circle", "square", "triangle"]
COLORS = {"circle": (220, 60, 50), "square": (50, 120, 220), "triangle": (240, 200, 40)}


def _background(rng, size):
    w, h = size
    base = rng.integers(40, 200, 3)
    grad = np.linspace(0, 1, w)[None, :, None] * rng.integers(-60, 60, 3)[None, None, :]
    noise = rng.normal(0, 12, (h, w, 3))
    img = np.clip(base[None, None, :] + grad + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(img).filter(ImageFilter.GaussianBlur(1))


def _draw(draw, cls, box, color):
    x, y, w, h = box
    if cls == "circle":
        draw.ellipse([x, y, x + w, y + h], fill=color)
    elif cls == "square":
        draw.rectangle([x, y, x + w, y + h], fill=color)
    else:
        draw.polygon([(x + w / 2, y), (x + w, y + h), (x, y + h)], fill=color)


def generate(n_images: int = 40, seed: int = 0, size=(160, 120), max_objects: int = 4, object_size=(18, 44),
             prefix: str = "img"):
    """Images (PIL) and a clean COCO dict. ``prefix`` names the files (``img_0001.png``); ``object_size``
    bounds the side of a shape in pixels (low inclusive, high exclusive)."""
    rng = np.random.default_rng(seed)
    images, annotations, pictures = [], [], []
    ann_id = 1
    for i in range(1, n_images + 1):
        img = _background(rng, size)
        draw = ImageDraw.Draw(img)
        placed = []
        for _ in range(int(rng.integers(1, max_objects + 1))):
            cls = CLASSES[int(rng.integers(0, len(CLASSES)))]
            s = int(rng.integers(object_size[0], object_size[1]))
            w = s if cls != "triangle" else int(s * 1.1)
            h = s
            for _try in range(20):
                x = int(rng.integers(0, size[0] - w))
                y = int(rng.integers(0, size[1] - h))
                if all(x + w <= px or px + pw <= x or y + h <= py or py + ph <= y for px, py, pw, ph in placed):
                    break
            else:
                continue
            placed.append((x, y, w, h))
            jitter = rng.integers(-25, 25, 3)
            color = tuple(int(c) for c in np.clip(np.array(COLORS[cls]) + jitter, 0, 255))
            _draw(draw, cls, (x, y, w, h), color)
            annotations.append({"id": ann_id, "image_id": i, "category_id": CLASSES.index(cls) + 1,
                                "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0, "segmentation": []})
            ann_id += 1
        name = f"{prefix}_{i:04d}.png"
        images.append({"id": i, "file_name": name, "width": size[0], "height": size[1]})
        pictures.append((name, img))
    categories = [{"id": k + 1, "name": c, "supercategory": "shape"} for k, c in enumerate(CLASSES)]
    return pictures, {"images": images, "annotations": annotations, "categories": categories}


@dataclass
class Defect:
    """One seeded defect: the annotation (by its id in clean.json), what was done, the rule meant
    to find it and what that rule needs beyond the file."""

    ann_id: int
    what: str
    rule: str
    row: int  # the annotation's position in the array, to match findings' pointers (not shown)
    needs: str | None = None


SWAP_NEEDS = "`--images` and a backbone"


def inject_defects(doc: dict, seed: int = 1) -> tuple[dict, list[Defect]]:
    rng = np.random.default_rng(seed)
    doc = copy.deepcopy(doc)
    anns = doc["annotations"]
    defects = []
    a = anns[3]
    a["bbox"][0] = doc["images"][0]["width"] - 5
    defects.append(Defect(a["id"], "box moved past the right edge of its image", "LL105", 3))
    first, later = anns[6]["id"], anns[7]["id"]
    anns[7]["id"] = first
    defects.append(Defect(later, f"id changed to {first}, which annotation {first} already has", "LL010", 7))
    anns[10]["category_id"] = 99
    defects.append(Defect(anns[10]["id"], "category_id set to 99, which no category has", "LL012", 10))
    image_id = anns[12]["image_id"]
    anns[12]["image_id"] = str(image_id)
    defects.append(Defect(anns[12]["id"], f'image_id written as the string "{image_id}" (image {image_id} exists)',
                          "LL001", 12))
    swapped = rng.choice(np.arange(15, len(anns)), size=max(2, len(anns) // 20), replace=False)
    for k in sorted(swapped.tolist()):
        old = anns[k]["category_id"]
        anns[k]["category_id"] = 1 + (old % len(CLASSES))
        defects.append(Defect(anns[k]["id"], f"class swapped from {CLASSES[old - 1]} to "
                                             f"{CLASSES[anns[k]['category_id'] - 1]}", "LL501", k, SWAP_NEEDS))
    return doc, defects


_ROW = re.compile(r"^/annotations/(\d+)(?:/|$)")


def found_by(defects: list[Defect], findings) -> list[bool]:
    """For each defect, whether a finding of its rule is about its annotation. ``findings``:
    (code, JSON pointer) pairs."""
    seen = set()
    for code, pointer in findings:
        m = _ROW.match(pointer or "")
        if m:
            seen.add((code, int(m.group(1))))
    return [(d.rule, d.row) in seen for d in defects]


def lint_file(path: Path) -> tuple[list[tuple[str, str]], set[str]]:
    """(code, pointer) of every finding of ``labellint check PATH`` with the built-in settings (no
    configuration file, no ``--images``: the default settings), and the codes of the rules that did not run."""
    from labellint import config, engine, registry
    from labellint.coco import load

    rules = registry.by_code()
    ds = load(path, path.name)
    findings, skipped = engine.lint(ds, config.settings_for(config.Config(), rules, path.name, path), {})
    return [(f.code, f.pointer) for f in findings], set(skipped)


def defects_markdown(defects: list[Defect], found: list[bool | None], summary: list[str]) -> str:
    lines = ["# Injected defects", "",
             "`annotations.json` is `clean.json` with these defects. Annotations are named by their `id` "
             "in `clean.json`.", "",
             "| annotation | defect | rule | found with the default settings |", "|---|---|---|---|"]
    for d, hit in zip(defects, found):
        if hit is None:
            mark = "not measured" + (f" (needs {d.needs})" if d.needs else "")
        else:
            mark = "yes" if hit else "**no**"
        lines.append(f"| {d.ann_id} | {d.what} | {d.rule} | {mark} |")
    return "\n".join(lines + [""] + summary) + "\n"


def _tally(defects, found, pick) -> tuple[int, int, list[int]]:
    chosen = [(d, hit) for d, hit in zip(defects, found) if pick(d)]
    return sum(bool(hit) for _, hit in chosen), len(chosen), [d.ann_id for d, hit in chosen if not hit]


def _missed(ids: list[int]) -> str:
    if not ids:
        return ""
    return f" (missed: annotation{'s' * (len(ids) > 1)} {', '.join(map(str, ids))})"


def generated_summary(defects: list[Defect], found: list[bool | None]) -> list[str]:
    n, total, missed = _tally(defects, found, lambda d: d.needs is None)
    swaps = sum(d.needs is not None for d in defects)
    return [f"Checked when this file was written (`labellint check annotations.json`, default settings, "
            f"no `--images`): {n} of the {total} defects the file alone shows are found{_missed(missed)}.",
            "",
            f"The {swaps} class swaps need {SWAP_NEEDS} (LL501); this file does not say whether they are found "
            "until `scripts/demo.sh` has measured it after its lint."]


def record(out: Path, findings_json: Path, backbone: str | None = None) -> str:
    """Rewrite ``OUT/DEFECTS.md`` from a ``labellint check OUT/annotations.json --images OUT/images
    -f json`` report: which seeded defects it found. The defects are those ``write`` injected,
    made again from ``OUT/clean.json``. Returns the summary line."""
    out = Path(out)
    report = json.loads(Path(findings_json).read_text(encoding="utf-8"))
    clean = json.loads((out / "clean.json").read_text(encoding="utf-8"))
    _, defects = inject_defects(clean)
    found: list[bool | None] = list(found_by(defects, [(f["code"], f.get("pointer")) for f in report["findings"]]))
    skipped = {s["code"]: s["reason"] for s in report.get("skipped_rules", [])}
    for k, d in enumerate(defects):
        if d.rule in skipped:
            found[k] = None
    n, total, missed = _tally(defects, found, lambda d: d.needs is None)
    swaps = [d for d in defects if d.needs is not None]
    model = f", backbone {Path(backbone).name}" if backbone else ""
    how = f"`labellint check annotations.json --images images` (default settings{model})"
    if "LL501" in skipped:
        swap_line = (f"The {len(swaps)} class swaps were not measured: LL501 did not run ({skipped['LL501']}).")
    else:
        k, total_swaps, missed_swaps = _tally(defects, found, lambda d: d.needs is not None)
        swap_line = f"LL501 found {k} of the {total_swaps} class swaps{_missed(missed_swaps)}."
    summary = [f"Measured by `scripts/demo.sh` after its lint, with {how}: {swap_line} "
               f"Of the other defects, {n} of {total} are found{_missed(missed)}."]
    atomic_write(out / "DEFECTS.md", defects_markdown(defects, found, summary))
    return summary[0]


def write(out: Path, n_images: int = 40, seed: int = 0, val_images: int = 0) -> Path:
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    pictures, doc = generate(n_images, seed)
    for name, img in pictures:
        img.save(out / "images" / name)
    atomic_write(out / "clean.json", json.dumps(doc, indent=2) + "\n")
    broken, defects = inject_defects(doc)
    atomic_write(out / "annotations.json", json.dumps(broken, indent=2) + "\n")
    findings, skipped = lint_file(out / "annotations.json")
    found = [None if d.needs is not None or d.rule in skipped else hit
             for d, hit in zip(defects, found_by(defects, findings))]
    atomic_write(out / "DEFECTS.md", defects_markdown(defects, found, generated_summary(defects, found)))
    if val_images:  # a clean, fixed benchmark split for `labellint train` and `labellint gate`
        val_pictures, val_doc = generate(val_images, seed + 1000, prefix="val")
        for name, img in val_pictures:
            img.save(out / "images" / name)
        atomic_write(out / "val.json", json.dumps(val_doc, indent=2) + "\n")
    return out / "annotations.json"


def main(argv: list[str]) -> int:
    """``python -m labellint.demo record OUT FINDINGS.json``: what scripts/demo.sh runs after its lint."""
    if len(argv) != 3 or argv[0] != "record":
        print("usage: python -m labellint.demo record OUT FINDINGS.json", file=sys.stderr)
        return 2
    print(record(Path(argv[1]), Path(argv[2]), os.environ.get("LABELLINT_BACKBONE")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
