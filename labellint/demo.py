"""A demo dataset the project builds itself: shapes on varied backgrounds, with seeded label defects.

``labellint demo OUT`` writes ``OUT/images/*.png``, a clean ``OUT/clean.json`` and
``OUT/annotations.json`` (pretty-printed, like dataset repos keep them) with defects a reviewer
should catch: a box outside its image, a duplicated annotation id, an unknown category, a string
id, swapped classes. ``OUT/DEFECTS.md`` lists what was injected.
"""

from __future__ import annotations

import copy
import json
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


def inject_defects(doc: dict, seed: int = 1) -> tuple[dict, list[str]]:
    rng = np.random.default_rng(seed)
    doc = copy.deepcopy(doc)
    anns = doc["annotations"]
    notes = []
    a = anns[3]
    a["bbox"][0] = doc["images"][0]["width"] - 5
    notes.append(f"annotation {a['id']}: box moved past the right edge of its image (LL105)")
    anns[7]["id"] = anns[6]["id"]
    notes.append(f"annotations {6} and {7} (positions): both carry id {anns[6]['id']} (LL010)")
    anns[10]["category_id"] = 99
    notes.append(f"annotation {anns[10]['id']}: category_id 99 does not exist (LL012)")
    anns[12]["image_id"] = str(anns[12]["image_id"])
    notes.append(f"annotation {anns[12]['id']}: image_id written as a string (LL001)")
    swapped = rng.choice(np.arange(15, len(anns)), size=max(2, len(anns) // 20), replace=False)
    for k in swapped.tolist():
        old = anns[k]["category_id"]
        anns[k]["category_id"] = 1 + (old % len(CLASSES))
        notes.append(f"annotation {anns[k]['id']}: class swapped from {CLASSES[old - 1]} to "
                     f"{CLASSES[anns[k]['category_id'] - 1]} (embedding rule, with --images and a backbone)")
    return doc, notes


def write(out: Path, n_images: int = 40, seed: int = 0, val_images: int = 0) -> Path:
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    pictures, doc = generate(n_images, seed)
    for name, img in pictures:
        img.save(out / "images" / name)
    atomic_write(out / "clean.json", json.dumps(doc, indent=2) + "\n")
    broken, notes = inject_defects(doc)
    atomic_write(out / "annotations.json", json.dumps(broken, indent=2) + "\n")
    atomic_write(out / "DEFECTS.md", "# Injected defects\n\n" + "".join(f"- {n}\n" for n in notes))
    if val_images:  # a clean, fixed benchmark split for `labellint train` and `labellint gate`
        val_pictures, val_doc = generate(val_images, seed + 1000, prefix="val")
        for name, img in val_pictures:
            img.save(out / "images" / name)
        atomic_write(out / "val.json", json.dumps(val_doc, indent=2) + "\n")
    return out / "annotations.json"
