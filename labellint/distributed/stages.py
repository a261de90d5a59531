"""What runs on the cluster's workers: the images pass's per-image work and the backbone.

Both reuse the local pass's functions (:func:`labellint.images.scanning.read_and_examine`,
:func:`labellint.embed.crops.cut` and its Normaliser, :class:`labellint.embed.backbone.Backbone`),
so a worker's results are a local run's by construction. No Ray import here: the functions take
and return plain numpy batches, so the tests can call them without a cluster.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

import labellint
from labellint.embed import crops
from labellint.images.info import ImageInfo
from labellint.images.scanning import as_boxes_see_it, pil_limits, read_and_examine

#: What one image's record holds on its way back (numpy batch columns).
COLUMNS = ("row", "info", "size", "mtime", "anns", "crops")


def info_record(info: ImageInfo) -> str:
    return json.dumps(asdict(info))


def info_from_record(text: str) -> ImageInfo:
    """An ImageInfo from a worker of this run (not the cache's codec: a record here is never
    read from disk, and carries the path)."""
    return ImageInfo(**json.loads(text))


def _names(requests: dict, i: int) -> str:
    offsets = requests["name_offsets"]
    raw = requests["names"][offsets[i]:offsets[i + 1]].tobytes()
    return raw.decode("utf-8", "surrogateescape")


def scan_batch(batch: dict, requests: list) -> dict:
    """CPU stage: read, check and crop the images ``batch["data"]`` index in ``requests``."""
    req = _fetch(requests[0])
    root, bases = Path(req["root"]), tuple(Path(b) for b in req["bases"])
    job = req["job"]
    out = {k: [] for k in COLUMNS}
    with pil_limits(req["max_pixels"]):
        for i in np.asarray(batch["data"]).tolist():
            row = int(req["rows"][i])
            info, rgb, st = read_and_examine(root, bases, _names(req, i), req["max_bytes"], req["max_pixels"])
            anns = req["anns"][req["box_offsets"][i]:req["box_offsets"][i + 1]]
            kept, cut = [], []
            if rgb is not None and job is not None and len(anns):
                rgb, _ = as_boxes_see_it(rgb, info, req["width"][i], req["height"][i])
                for ann, box in zip(anns.tolist(), req["boxes"][req["box_offsets"][i]:req["box_offsets"][i + 1]]):
                    arr = crops.cut(rgb, box, job.size, job.context, job.fill)
                    if arr is not None:
                        kept.append(ann)
                        cut.append(arr)
            out["row"].append(row)
            out["info"].append(info_record(info))
            out["size"].append(st[0] if st else -1)
            out["mtime"].append(st[1] if st else -1)
            out["anns"].append(np.asarray(kept, np.int64).tobytes())
            out["crops"].append(np.stack(cut).tobytes() if cut else b"")
    return {k: _column(v) for k, v in out.items()}


def _column(values: list) -> np.ndarray:
    if values and isinstance(values[0], (bytes, str)):
        col = np.empty(len(values), object)
        col[:] = values
        return col
    return np.asarray(values, np.int64)


class EmbedStage:
    """The backbone stage: one onnxruntime session per actor, on its GPU when it has one."""

    def __init__(self, job, model: list, device: str, threads: int):
        from labellint.embed import backbone

        data = model[0]
        if not isinstance(data, (bytes, bytearray)):  # an ObjectRef: fetched once per actor
            import ray

            data = ray.get(data)
        self.job = job
        self.backbone = backbone.from_bytes(job.backbone, bytes(data), device, threads)
        self.norm = crops.Normaliser(job.backbone.pre)

    def __call__(self, batch: dict) -> dict:
        h, w = self.job.size
        counts = [len(a) // 8 for a in batch["anns"]]
        total = sum(counts)
        y = np.zeros((0, self.backbone.dim), np.float32)
        if total:
            x = np.frombuffer(b"".join(batch["crops"]), np.uint8).reshape(total, h, w, 3)
            step = self.backbone.batch_size  # normalised in the backbone's pieces: bounded memory
            y = np.concatenate([self.backbone.run(self.norm(x[i:i + step])) for i in range(0, total, step)])
        ends = np.cumsum(counts)
        vecs = _column([y[e - c:e].tobytes() for c, e in zip(counts, ends.tolist())])
        out = {k: batch[k] for k in COLUMNS if k != "crops"}
        out["vecs"] = vecs
        return out


_FETCHED: dict = {}


def _fetch(ref):
    """The requests table (put once by the driver), fetched once per worker process."""
    if isinstance(ref, dict):
        return ref
    import ray

    key = ref.hex()
    if key not in _FETCHED:
        _FETCHED.clear()
        _FETCHED[key] = ray.get(ref)
    return _FETCHED[key]


def code_digest() -> str:
    """A digest of the labellint code a worker runs for the passes: the driver's must match."""
    base = Path(labellint.__file__).parent
    h = hashlib.sha256(labellint.__version__.encode())
    for folder in ("images", "embed", "distributed"):
        for p in sorted((base / folder).glob("*.py")):
            h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def probe(root: str, samples: list, digest: str) -> str | None:
    """Why this node cannot take part (None when it can): the image root and a sample of the
    images readable at the driver's paths, and the same labellint code."""
    if not os.path.isdir(root):
        return f"the image root {root} is not there"
    for path in samples:
        if not os.access(path, os.R_OK):
            return f"the image {path} is not there"
    mine = code_digest()
    if mine != digest:
        return (f"it runs another labellint ({labellint.__version__}, code {mine}) than the driver's "
                f"(code {digest}); install the same one on every node")
    return None
