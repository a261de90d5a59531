"""The run inputs that the documented examples of the LL4xx-LL6xx rules need, built from their docs.

A rule whose examples read more than the JSON file says what they read beside ``EXAMPLE_OPTIONS``:

* ``EXAMPLE_IMAGES``: ``{file name under the image root: spec}``; a tuple of specs lists
  alternatives the doc names ("the same bytes, or its PNG re-encode"): the examples run with each.
* ``EXAMPLE_EARLIER_FILES``: for a rule that looks across files, ``{name: [file names]}`` of the
  COCO files linted before the example, which is then linted last, as ``val.json``.
* predictions (LL6xx): the inline JSON list of the Example section, as ``tests/test_model_rules.py``
  reads it.
* a backbone (LL5xx): a colour-average ONNX model built here (``GlobalAveragePool`` of the
  normalised crop: its embedding is the crop's mean colour).

Image specs, built with PIL in the order they are listed:

* ``"64x48"``: a grid of coloured blocks (16 across, the colours seeded by the name), the format
  from the extension; ``"4032x3024 orientation 6"`` adds that EXIF Orientation tag. A 64x48 JPEG
  is about 2 KB, two thirds of it pixel data: cut at 60% it still opens, as the doc of LL403 says;
* ``"40000x40000 bomb"``: a valid all-black 1-bit PNG of that size (streamed through zlib);
* ``"a.jpg cut at 60%"``: the first 60% of the bytes of an earlier file;
* ``"copy of a.jpg"``: the same bytes; ``"a.jpg as PNG"`` (or ``as JPEG``): its decoded pixels
  encoded again;
* ``"360x60 board: pawn yellow disc, knight blue square"``: a plain grey board with, in each box
  of the good example on that picture, the piece its category names, drawn as listed.

The image root is ``data/images`` under a temporary folder, so that a name which climbs out of it
(``../../secrets/key.jpg``) lands beside ``data/``, still inside the temporary folder.
"""

from __future__ import annotations

import itertools
import json
import re
import struct
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from test_images import doc_for, picture

ROOT = Path("data") / "images"
BOARD = (150, 150, 150)

_SIZE = re.compile(r"(\d+)x(\d+)(?: orientation (\d))?")
_BOMB = re.compile(r"(\d+)x(\d+) bomb")
_CUT = re.compile(r"(\S+) cut at (\d+)%")
_COPY = re.compile(r"copy of (\S+)")
_REENCODE = re.compile(r"(\S+) as (PNG|JPEG)")
_BOARD = re.compile(r"(\d+)x(\d+) board: (.+)")


def constant(rule, name: str, default=None):
    """A rule module's example constant (``EXAMPLE_IMAGES``, ...)."""
    return getattr(sys.modules[rule.check.__module__], name, default)


def image_variants(rule) -> list[dict[str, str]]:
    """``EXAMPLE_IMAGES`` once per combination of its alternatives (one dict when there are none)."""
    images = constant(rule, "EXAMPLE_IMAGES", {})
    choices = [spec if isinstance(spec, tuple) else (spec,) for spec in images.values()]
    return [dict(zip(images, combo)) for combo in itertools.product(*choices)]


def build_images(base: Path, specs: dict[str, str], layout: dict) -> Path:
    """The image root under ``base`` holding the pictures ``specs`` describe; ``layout`` is the good
    example (a board draws its boxes)."""
    root = base / ROOT
    root.mkdir(parents=True, exist_ok=True)
    for name, spec in specs.items():
        path = (root / name).resolve()
        assert path.is_relative_to(base.resolve()), f"{name} would be written outside {base}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if m := _BOMB.fullmatch(spec):
            path.write_bytes(bomb_png(int(m[1]), int(m[2])))
        elif m := _SIZE.fullmatch(spec):
            w, h = int(m[1]), int(m[2])
            picture(path, size=(w, h), seed=zlib.crc32(name.encode()), block=max(4, w // 16),
                    exif_orientation=int(m[3]) if m[3] else None)
        elif m := _CUT.fullmatch(spec):
            data = (root / m[1]).read_bytes()
            path.write_bytes(data[: len(data) * int(m[2]) // 100])
        elif m := _COPY.fullmatch(spec):
            path.write_bytes((root / m[1]).read_bytes())
        elif m := _REENCODE.fullmatch(spec):
            with Image.open(root / m[1]) as im:
                im.save(path, format=m[2])  # JPEG at PIL's default quality (75)
        elif m := _BOARD.fullmatch(spec):
            board(path, (int(m[1]), int(m[2])), m[3], layout)
        else:
            raise ValueError(f"unknown example image spec {spec!r} for {name}")
    return root


def bomb_png(width: int, height: int) -> bytes:
    """A complete, valid all-black 1-bit greyscale PNG: zlib shrinks its zero rows about 1000-fold."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = 200
    block = (b"\0" * (1 + (width + 7) // 8)) * rows  # filter byte "none" and the packed bits, per row
    z = zlib.compressobj(9)
    parts = [z.compress(block) for _ in range(height // rows)]
    parts.append(z.compress(block[: (height % rows) * len(block) // rows]))
    parts.append(z.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


def board(path: Path, size, pieces: str, layout: dict) -> None:
    """A plain board with, in each box of ``layout`` on this picture, its class's piece (inset 2 px)."""
    drawn = {}
    for item in pieces.split(","):
        cls, colour, shape = item.split()
        assert shape in ("disc", "square"), f"unknown piece shape {shape!r}"
        drawn[cls] = (colour, shape)
    names = {c["id"]: c["name"] for c in layout["categories"]}
    (image_id,) = [im["id"] for im in layout["images"] if im["file_name"] == path.name]
    im = Image.new("RGB", size, BOARD)
    draw = ImageDraw.Draw(im)
    for ann in layout["annotations"]:
        if ann["image_id"] != image_id:
            continue
        x, y, w, h = ann["bbox"]
        colour, shape = drawn[names[ann["category_id"]]]
        box = [x + 2, y + 2, x + w - 3, y + h - 3]
        (draw.ellipse if shape == "disc" else draw.rectangle)(box, fill=colour)
    im.save(path)


def colour_backbone(path: Path, size: int = 32) -> Path:
    """A tiny ONNX backbone: NCHW float crops (size x size) -> GlobalAveragePool -> Flatten, 3-d."""
    onnx = pytest.importorskip("onnx", reason="building the example backbone needs onnx")
    from onnx import TensorProto, helper

    nodes = [helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["embedding"])]
    graph = helper.make_graph(nodes, "colour", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                              ["batch", 3, size, size])],
                              [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def earlier_docs(rule, root: Path) -> dict[str, dict]:
    """The COCO files ``EXAMPLE_EARLIER_FILES`` names, each image with its real size."""
    out = {}
    for name, files in constant(rule, "EXAMPLE_EARLIER_FILES", {}).items():
        sizes = []
        for f in files:
            with Image.open(root / f) as im:
                sizes.append(im.size)
        out[name] = doc_for(list(files), sizes)
    return out


class ExampleInputs:
    """Per test session: the run contexts (and earlier files) of each rule's examples, built once."""

    def __init__(self, base: Path):
        self.base = base
        self._runs: dict[str, list] = {}
        self._backbone: Path | None = None

    def runs(self, rule) -> list[tuple[dict, dict]]:
        """[(context for engine.lint, {earlier file name: COCO doc})], one per image variant."""
        if rule.code not in self._runs:
            self._runs[rule.code] = [self._build(rule, i, specs) for i, specs in enumerate(image_variants(rule))]
        return self._runs[rule.code]

    def _build(self, rule, index: int, specs: dict) -> tuple[dict, dict]:
        context: dict = {}
        earlier: dict = {}
        if "images" in rule.requires:
            good = json.loads(rule.examples()["good"][0])
            root = build_images(self.base / f"{rule.code}-{index}", specs, good)
            context.update(images=root, no_cache=True)
            earlier = earlier_docs(rule, root)
        if "backbone" in rule.requires:
            pytest.importorskip("onnxruntime", reason="the embedding rules need onnxruntime (the embed extra)")
            if self._backbone is None:
                self._backbone = colour_backbone(self.base / "colour.onnx")
            context.update(backbone=self._backbone, device="cpu")
        if "predictions" in rule.requires:
            from test_model_rules import doc_predictions

            context["predictions"] = doc_predictions(rule)
        missing = [need for need in rule.requires if not context.get(need)]
        assert not missing, f"{rule.code}: tests/rule_examples.py cannot build {missing} for its examples"
        return context, earlier
