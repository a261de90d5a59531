"""What the fuzzer starts from: real COCO files when ../shared is there, documents it builds itself
otherwise (and besides), the secondary inputs (predictions, labellint.toml, review decisions) and a
small folder of real and hostile images.

Real files are cut down to a few dozen images with their annotations (crowd RLE and non-finite
values kept when the file has them): a case then lints in a tenth of a second, and a failure is
seldom about size (the mutations that are, flood a section on purpose).
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import struct
import zlib
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("LABELLINT_SHARED", REPO.parent / "shared"))

#: the names of the image folder's files that hold a decodable picture
GOOD_IMAGES = ("ok0.jpg", "ok1.png", "exif6.jpg", "gray16.png", "palette.gif", "cmyk.jpg", "tiny.png", "dup.jpg",
               "upper.JPG", "wide.png", "sub/deep.jpg", "sp ace.jpg", "\u00fc.jpg", "inner_link.jpg", "large.jpg")
#: files that exist but are no picture, or are links to somewhere else
ODD_IMAGES = ("empty.jpg", "text.jpg", "truncated.jpg", "bomb.png", "dir.jpg", "escape_link.jpg", "zero_link.jpg",
              "loop_link.jpg", "dangling_link.jpg", "canary_link.jpg", "new\nline.jpg", "esc\x1b[31m.jpg")
#: names outside the image root: opening any of them is a bug. ``canary.jpg`` beside the root is a
#: real picture that the harness watches (inotify): a run that opens it has escaped the root.
CANARY = "canary.jpg"
CANARY_ABS = "@CANARY_ABS@"  # replaced by the canary's absolute path when the case is written
ESCAPES = ("../canary.jpg", "images/../../canary.jpg", "../../canary.jpg", "..", "../", "/dev/zero", "/etc/hostname",
           "/proc/self/environ", "sub/../../canary.jpg", "./../canary.jpg", CANARY_ABS, CANARY_ABS,
           "file://" + CANARY_ABS, "sub/../" * 3 + "canary.jpg")


def shared_available() -> bool:
    return (SHARED / "data").is_dir()


# -- real files -----------------------------------------------------------------------------------

def _nonfinite(v) -> bool:
    if isinstance(v, float):
        return not math.isfinite(v)
    if isinstance(v, list):
        return any(_nonfinite(x) for x in v)
    if isinstance(v, dict):
        return any(_nonfinite(x) for x in v.values())
    return False


def subset(doc: dict, n_images: int) -> dict:
    """The first images (those with crowd or non-finite annotations first) and their annotations;
    every category and every other top-level key kept."""
    anns = doc.get("annotations", [])
    special = [a["image_id"] for a in anns if a.get("iscrowd") or _nonfinite(a)]
    order = list(dict.fromkeys(special + [im["id"] for im in doc.get("images", [])]))
    keep = set(order[:n_images])
    out = {k: v for k, v in doc.items() if k not in ("images", "annotations")}
    out["images"] = [im for im in doc.get("images", []) if im["id"] in keep]
    out["annotations"] = [a for a in anns if a.get("image_id") in keep]
    return out


@lru_cache(maxsize=1)
def shared_seeds(n_images: int = 24) -> tuple:
    """(name, document, predictions or None) for each real file under ../shared/data."""
    if not shared_available():
        return ()
    data = SHARED / "data"
    out = []
    for name, rel in (("chess-valid", "chess_pieces/valid/_annotations.coco.json"),
                      ("chess-test", "chess_pieces/test/_annotations.coco.json"),
                      ("cocoeval", "cocoeval/cocoapi_val2014_100/instances_val2014_100.json"),
                      ("taco", "taco/annotations.json"),
                      ("taco-unofficial", "taco/annotations_unofficial.json")):
        path = data / rel
        if not path.is_file():
            continue
        doc = subset(json.loads(path.read_text(encoding="utf-8")), n_images)
        preds = None
        if name == "cocoeval":
            ids = {im["id"] for im in doc["images"]}
            results = data / "cocoeval/cocoapi_val2014_100"
            preds = []
            for fname in ("instances_val2014_fakebbox100_results.json", "instances_val2014_fakesegm100_results.json"):
                if (results / fname).is_file():
                    preds += [p for p in json.loads((results / fname).read_text())[:4000] if p["image_id"] in ids]
        out.append((name, doc, preds))
    return tuple(out)


# -- documents built here --------------------------------------------------------------------------

CATEGORY_NAMES = ["cat", "dog", "Cat", "cats", "car", "bus", "person", "person ", "traffic light", "traffic_light",
                  "bishop", "black-bishop", "white-bishop", "pieces"]


def rle_string(counts) -> str:
    """COCO's compressed RLE text of uncompressed run lengths (pycocotools' rleToString)."""
    out = []
    for i, c in enumerate(counts):
        x = int(c)
        if i > 2:
            x -= int(counts[i - 2])
        more = True
        while more:
            ch = x & 0x1F
            x >>= 5
            more = (x != -1) if (ch & 0x10) else (x != 0)
            if more:
                ch |= 0x20
            out.append(chr(ch + 48))
    return "".join(out)


def box_rle(h: int, w: int, x0: int, y0: int, bw: int, bh: int) -> list[int]:
    """Column-major run lengths of a rectangle mask (as COCO stores masks)."""
    counts, run, value = [], 0, 0
    for col in range(w):
        for row in range(h):
            v = int(x0 <= col < x0 + bw and y0 <= row < y0 + bh)
            if v != value:
                counts.append(run)
                run, value = 0, v
            run += 1
    counts.append(run)
    return counts


def gen_doc(rng: random.Random, file_names=None) -> dict:
    """A small valid COCO document with polygons, crowd RLE (both encodings) and a few categories."""
    n_img = rng.randint(1, 8)
    names = list(file_names) if file_names else [f"img{i}.jpg" for i in range(n_img)]
    images = []
    for i in range(n_img):
        w, h = rng.choice([(64, 48), (48, 64), (32, 16), (640, 480), (20000, 2), (1, 1)])
        images.append({"id": i + 1, "file_name": names[i % len(names)], "width": w, "height": h,
                       "license": 1, "date_captured": "2024-01-01 00:00:00"})
    cats = [{"id": i + 1, "name": n, "supercategory": "thing"}
            for i, n in enumerate(rng.sample(CATEGORY_NAMES, rng.randint(1, 6)))]
    anns = []
    for k in range(rng.randint(0, 20)):
        im = rng.choice(images)
        W, H = im["width"], im["height"]
        bw, bh = max(1, rng.randint(1, max(1, W // 2))), max(1, rng.randint(1, max(1, H // 2)))
        x, y = rng.randint(0, max(0, W - bw)), rng.randint(0, max(0, H - bh))
        ann = {"id": k + 1, "image_id": im["id"], "category_id": rng.choice(cats)["id"],
               "bbox": [x, y, bw, bh], "area": bw * bh, "iscrowd": 0}
        shape = rng.random()
        if shape < 0.4:
            ann["segmentation"] = [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]]
        elif shape < 0.6 and W * H <= 100_000:
            counts = box_rle(H, W, x, y, bw, bh)
            ann["iscrowd"] = 1
            ann["segmentation"] = {"size": [H, W], "counts": rle_string(counts) if rng.random() < 0.5 else counts}
        elif shape < 0.8:
            ann["segmentation"] = []
        anns.append(ann)
    return {"info": {"description": "fuzz", "version": "1.0", "year": 2024},
            "licenses": [{"id": 1, "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}],
            "images": images, "annotations": anns, "categories": cats}


def gen_predictions(rng: random.Random, doc) -> list:
    """Detections on the document's images: its boxes moved a little, with scores; some masks."""
    anns = doc.get("annotations") if isinstance(doc, dict) else None
    anns = [a for a in anns if isinstance(a, dict)] if isinstance(anns, list) else []
    preds = []
    for a in anns[:200]:
        bbox = a.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
            continue
        p = {"image_id": a.get("image_id"), "category_id": a.get("category_id"),
             "bbox": [round(v + rng.uniform(-2, 2), 2) for v in bbox], "score": round(rng.random(), 3)}
        if isinstance(a.get("segmentation"), dict) and rng.random() < 0.5:
            p["segmentation"] = a["segmentation"]
        preds.append(p)
    if not preds:
        preds.append({"image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], "score": 0.9})
    return preds


@lru_cache(maxsize=1)
def _rule_options() -> tuple:
    from labellint import registry

    return tuple((r.code, dict(r.options)) for r in registry.all_rules())


def gen_config(rng: random.Random) -> dict:
    """A labellint.toml table: a random choice of its keys, valid values."""
    rules = _rule_options()
    codes = [c for c, _ in rules]
    prefixes = ["LL0", "LL1", "LL2", "LL3", "LL4", "ALL"]
    table: dict = {}
    if rng.random() < 0.4:
        table["select"] = rng.sample(codes + prefixes, rng.randint(1, 4))
    if rng.random() < 0.4:
        table["ignore"] = rng.sample(codes, rng.randint(1, 3))
    if rng.random() < 0.2:
        table["extend-select"] = rng.sample(codes, 1)
    if rng.random() < 0.3:
        table["per-file-ignores"] = {rng.choice(["*.json", "ann.json", "**/*.json", "[", "*"]): rng.sample(codes, 2)}
    if rng.random() < 0.4:
        table["severity"] = {rng.choice(codes): rng.choice(["error", "warning", "info"])}
    if rng.random() < 0.3:
        table["fail-on"] = rng.choice(["error", "warning", "info"])
    with_options = [(c, o) for c, o in rules if o]
    if with_options and (rng.random() < 0.6 or not table):
        code, options = rng.choice(with_options)
        name = rng.choice(list(options))
        table["rules"] = {code: {name: options[name]}}
    return table


def gen_decisions(rng: random.Random, doc, path: str = "ann.json") -> dict:
    """A review-decisions document about some of the document's annotations, made on it as it is."""
    from labellint.fix.state import state_of

    anns = doc.get("annotations") if isinstance(doc, dict) else None
    anns = [a for a in anns if isinstance(a, dict)] if isinstance(anns, list) else []
    cats = [c.get("id") for c in doc.get("categories", []) if isinstance(c, dict)] if isinstance(doc, dict) else []
    items = []
    for a in rng.sample(anns, min(len(anns), rng.randint(1, 5))):
        try:
            st = state_of(a)
        except (TypeError, ValueError):
            st = "0" * 16
        d = {"path": path, "fingerprint": "%016x" % rng.getrandbits(64), "code": rng.choice(["LL501", "LL105", "LL010"]),
             "annotation_id": a.get("id"), "state": st}
        action = rng.choice(["relabel", "delete", "set_bbox", "set_id", "keep"])
        d["action"] = action
        if action == "relabel":
            d["category_id"] = rng.choice(cats or [1])
        elif action == "set_bbox":
            d["bbox"] = [1, 2, 3, 4]
        elif action == "set_id":
            d["new_id"] = 10_000 + len(items)
        items.append(d)
    return {"format": "labellint-decisions", "version": 1, "created": "2024-01-01T00:00:00Z",
            "tool": {"name": "labellint", "version": "0.1.0"}, "report": "review.html", "decisions": items}


# -- the image folder -----------------------------------------------------------------------------

def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but whose data is one short row: a decompression
    bomb's header without its gigabytes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
            + chunk(b"IEND", b""))


def make_image_template(folder: Path) -> Path:
    """Build the image folder once per run under ``folder`` (returned): ``folder/images``, the root
    passed to --images (each case copies it, beside ``canary.jpg`` that no run may open)."""
    from PIL import Image

    root = folder / "images"
    if (folder / ".done").exists() and (folder / CANARY).is_file():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    (root / "sub").mkdir(exist_ok=True)
    (root / "dir.jpg").mkdir(exist_ok=True)

    def save(name, im, **kw):
        buf = io.BytesIO()
        im.save(buf, **kw)
        (root / name).write_bytes(buf.getvalue())
        return buf.getvalue()

    rng = random.Random(7)
    noise = Image.frombytes("RGB", (64, 48), bytes(rng.getrandbits(8) for _ in range(64 * 48 * 3)))
    jpeg = save("ok0.jpg", noise, format="JPEG")
    (root / "dup.jpg").write_bytes(jpeg)
    save("ok1.png", Image.new("RGBA", (48, 64), (10, 200, 30, 128)), format="PNG")
    exif = Image.Exif()
    exif[0x0112] = 6
    save("exif6.jpg", Image.new("RGB", (32, 16), (200, 10, 10)), format="JPEG", exif=exif.tobytes())
    save("gray16.png", Image.new("I;16", (40, 30), 1000), format="PNG")
    save("palette.gif", Image.new("P", (30, 20), 3), format="GIF")
    save("cmyk.jpg", Image.new("CMYK", (30, 20), (0, 50, 100, 0)), format="JPEG")
    save("tiny.png", Image.new("L", (1, 1), 0), format="PNG")
    save("upper.JPG", noise.resize((64, 48)), format="JPEG")
    save("wide.png", Image.new("L", (20000, 2), 0), format="PNG")
    save("sub/deep.jpg", noise, format="JPEG")
    save("sp ace.jpg", noise.transpose(Image.Transpose.FLIP_LEFT_RIGHT), format="JPEG")
    save("\u00fc.jpg", noise.transpose(Image.Transpose.FLIP_TOP_BOTTOM), format="JPEG")
    save("large.jpg", noise.resize((1600, 1200)), format="JPEG", quality=50)
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.jpg").write_text("not an image\n")
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / "bomb.png").write_bytes(_png_header_only(60_000, 60_000))
    (root / "new\nline.jpg").write_bytes(jpeg)
    (root / "esc\x1b[31m.jpg").write_bytes(jpeg)
    (folder / CANARY).write_bytes(jpeg)
    for name, target in (("inner_link.jpg", "ok0.jpg"), ("escape_link.jpg", "/etc/hostname"),
                         ("zero_link.jpg", "/dev/zero"), ("loop_link.jpg", "loop_link.jpg"),
                         ("dangling_link.jpg", "nothing_here.jpg"), ("canary_link.jpg", "../canary.jpg")):
        if not (root / name).is_symlink():
            os.symlink(target, root / name)
    (folder / ".done").write_text("")
    return folder


def copy_tree(src: Path, dst: Path) -> None:
    """Copy a case folder: links stay links and FIFOs are made anew (copying one would block)."""
    import shutil
    import stat

    dst.mkdir(parents=True, exist_ok=True)
    for entry in os.scandir(src):
        target = dst / entry.name
        st = entry.stat(follow_symlinks=False)
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), target)
        elif stat.S_ISFIFO(st.st_mode):
            os.mkfifo(target)
        elif entry.is_dir(follow_symlinks=False):
            copy_tree(Path(entry.path), target)
        elif stat.S_ISREG(st.st_mode):
            shutil.copyfile(entry.path, target)
