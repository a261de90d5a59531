"""ONNX backbones: an onnxruntime session that turns preprocessed crops into embeddings.

Preprocessing (input size, mean, std, channel order, layout) comes, in this order, from:
1. the model's ONNX metadata, key ``labellint.preprocess`` (a JSON object; ``labellint backbone
   export`` writes it);
2. a sidecar JSON beside the model, ``<model>.onnx.json``, with the same keys;
3. the table of known models below (the ONNX Model Zoo MobileNetV2 int8 and its embedding cut);
4. ImageNet defaults: RGB, mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225), the input's
   static height and width (224 when they are dynamic), NCHW.

Execution providers are chosen automatically: CUDA when onnxruntime-gpu sees a GPU, else CPU.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np

from labellint.errors import LabellintError

META_KEY = "labellint.preprocess"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INSTALL_HINT = "pip install 'labellint-coco[embed]' (or '[gpu]' for onnxruntime-gpu)"

#: sha256 of model files whose preprocessing is documented elsewhere (models/README.md)
KNOWN_MODELS = {
    # ONNX Model Zoo mobilenetv2-12-int8.onnx and its 1280-d embedding cut (make_embedder.py)
    "cc028fe6cae7bc11a4ff53cfc9b79c920e8be65ce33a904ec3e2a8f66d77f95f": {"size": [224, 224]},
    "11158fcb90948c03efc0d27cceb5cf1a562427be20a0559a1df543da57bf409e": {"size": [224, 224],
                                                                         "output": "embedding"},
}


@dataclass
class Preprocess:
    size: tuple = (224, 224)  # height, width
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    channel_order: str = "RGB"
    layout: str = "NCHW"
    scale: float = 255.0  # pixel values are divided by this before mean/std
    output: str | None = None  # output name; the first output when None
    source: str = "default"

    @classmethod
    def from_dict(cls, d: dict, source: str, fallback_size) -> Preprocess:
        unknown = set(d) - {"size", "mean", "std", "channel_order", "layout", "scale", "output", "arch"}
        if unknown:
            raise LabellintError(f"backbone preprocessing ({source}): unknown keys {sorted(unknown)}")
        size = d.get("size", fallback_size)
        if isinstance(size, int):
            size = [size, size]
        p = cls(size=tuple(int(v) for v in size), mean=tuple(float(v) for v in d.get("mean", IMAGENET_MEAN)),
                std=tuple(float(v) for v in d.get("std", IMAGENET_STD)),
                channel_order=str(d.get("channel_order", "RGB")).upper(), layout=str(d.get("layout", "NCHW")).upper(),
                scale=float(d.get("scale", 255.0)), output=d.get("output"), source=source)
        if p.channel_order not in ("RGB", "BGR") or p.layout not in ("NCHW", "NHWC") or len(p.size) != 2 \
                or len(p.mean) != 3 or len(p.std) != 3 or min(p.std) <= 0:
            raise LabellintError(f"backbone preprocessing ({source}) is invalid: {d}")
        return p

    def key(self) -> str:
        d = asdict(self)
        d.pop("source")
        return json.dumps(d, sort_keys=True)


def installed_runtimes() -> list[str]:
    found = []
    for name in ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino"):
        try:
            metadata.distribution(name)
            found.append(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def runtime_warning() -> str | None:
    """Both onnxruntime and onnxruntime-gpu installed: they share a module and one hides the other."""
    found = installed_runtimes()
    if "onnxruntime" in found and len(found) > 1:
        return (f"both {' and '.join(found)} are installed; they provide the same module, so which one "
                "runs is an accident of install order (the GPU may go unused). Keep one: "
                "pip uninstall onnxruntime, then pip install --force-reinstall onnxruntime-gpu")
    return None


def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise LabellintError(f"the embedding rules need onnxruntime: {INSTALL_HINT}") from None
    return onnxruntime


def choose_providers(device: str, available: list[str]) -> list[str]:
    device = (device or "auto").lower()
    if device not in ("auto", "cpu", "cuda"):
        raise LabellintError(f"unknown device '{device}' (use auto, cpu or cuda)")
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda":
        raise LabellintError("--device cuda: onnxruntime has no CUDAExecutionProvider here "
                             f"(available: {', '.join(available)}); install onnxruntime-gpu and a CUDA runtime")
    return ["CPUExecutionProvider"]


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


@lru_cache(maxsize=16)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    st = path.stat()
    return _file_sha256(str(path.resolve()), st.st_size, st.st_mtime_ns)


@dataclass
class Backbone:
    path: Path
    sha256: str
    pre: Preprocess
    providers: list = field(default_factory=list)
    input_name: str = "input"
    output_name: str = "embedding"
    dim: int = 0
    batch_size: int = 32
    threads: int = 0
    session: object = field(default=None, repr=False)

    @property
    def space(self) -> str:
        """Identity of the embedding space: the model's bytes and its preprocessing."""
        return hashlib.sha256(f"{self.sha256}\0{self.pre.key()}".encode()).hexdigest()[:24]

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Embeddings (n, dim) float32 of a preprocessed batch, in pieces of ``batch_size``."""
        out = []
        for i in range(0, len(batch), self.batch_size):
            part = np.ascontiguousarray(batch[i:i + self.batch_size], dtype=np.float32)
            (y,) = self.session.run([self.output_name], {self.input_name: part})
            y = np.asarray(y, dtype=np.float32).reshape(len(part), -1)
            if not np.isfinite(y).all():  # a broken model: neighbours of NaN would be noise
                raise LabellintError(f"backbone {self.path} gave non-finite embeddings (NaN or infinity) "
                                     f"for {int((~np.isfinite(y).all(axis=1)).sum())} of {len(part)} crops")
            out.append(y)
        if not out:
            return np.zeros((0, self.dim), np.float32)
        return np.concatenate(out)


def read_preprocess(path: Path, sha: str, model_meta: dict, input_shape) -> Preprocess:
    fallback = [224, 224]
    if input_shape is not None and len(input_shape) == 4:
        dims = input_shape[2:] if input_shape[1] in (1, 3) else input_shape[1:3]
        if all(isinstance(d, int) and d > 0 for d in dims):
            fallback = list(dims)
    if META_KEY in model_meta:
        try:
            d = json.loads(model_meta[META_KEY])
        except ValueError as exc:
            raise LabellintError(f"{path}: metadata {META_KEY} is not JSON: {exc}") from None
        return Preprocess.from_dict(d, "onnx metadata", fallback)
    sidecar = Path(str(path) + ".json")
    if sidecar.is_file():
        try:
            d = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LabellintError(f"{sidecar}: not a readable JSON object: {exc}") from None
        if not isinstance(d, dict):
            raise LabellintError(f"{sidecar}: must be a JSON object")
        return Preprocess.from_dict(d, f"sidecar {sidecar.name}", fallback)
    if sha in KNOWN_MODELS:
        return Preprocess.from_dict(KNOWN_MODELS[sha], "known model", fallback)
    return Preprocess.from_dict({}, "ImageNet defaults", fallback)


_SESSIONS: dict = {}


def load(path, device: str = "auto", batch_size: int = 32, threads: int = 0) -> Backbone:
    """An onnxruntime session for the model at ``path`` (sessions are reused within a process)."""
    path = Path(path)
    if not path.is_file():
        raise LabellintError(f"backbone model {path} not found (pass --backbone MODEL.onnx, "
                             "or make one with `labellint backbone export --arch resnet50`)")
    sha = file_sha256(path)
    session, threads = _session(str(path), sha, path, device, threads)
    used = session.get_providers()
    meta = session.get_modelmeta().custom_metadata_map or {}
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise LabellintError(f"backbone {path}: expected one image input, found {len(inputs)}")
    pre = read_preprocess(path, sha, meta, inputs[0].shape)
    outputs = [o.name for o in session.get_outputs()]
    out_name = pre.output or ("embedding" if "embedding" in outputs else outputs[0])
    if out_name not in outputs:
        raise LabellintError(f"backbone {path}: no output named '{out_name}' (outputs: {', '.join(outputs)})")
    bb = Backbone(path=path, sha256=sha, pre=pre, providers=used, input_name=inputs[0].name,
                  output_name=out_name, batch_size=max(1, int(batch_size)), threads=threads, session=session)
    probe = np.zeros((1, 3, *pre.size) if pre.layout == "NCHW" else (1, *pre.size, 3), np.float32)
    bb.dim = int(bb.run(probe).shape[1])
    return bb


def _session(model, sha: str, path, device: str, threads: int):
    """(onnxruntime session, intra-op threads) for ``model`` (a path or the model's bytes), reused
    within a process."""
    ort = _ort()
    providers = choose_providers(device, ort.get_available_providers())
    if threads <= 0:
        # leave a core to the threads that decode and crop while the backbone runs
        threads = max(1, cpu_count() - 1) if providers[0] == "CPUExecutionProvider" else 1
    key = (sha, tuple(providers), threads)
    if key not in _SESSIONS:
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        # no busy-waiting between batches: the decode threads need that core
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.log_severity_level = 3
        try:
            _SESSIONS[key] = ort.InferenceSession(model, so, providers=providers)
        except Exception as exc:
            raise LabellintError(f"backbone {path} cannot be loaded by onnxruntime: {exc}") from None
    session = _SESSIONS[key]
    if device == "cuda" and "CUDAExecutionProvider" not in session.get_providers():
        raise LabellintError("--device cuda: the CUDA provider failed to start (see onnxruntime's log); "
                             "check the CUDA and cuDNN libraries onnxruntime-gpu needs")
    return session, threads


def remote_form(bb: Backbone) -> Backbone:
    """The backbone without its session, to send to another machine with the model's bytes
    (:func:`from_bytes` there opens its own)."""
    from dataclasses import replace

    return replace(bb, session=None, providers=[])


def from_bytes(form: Backbone, model: bytes, device: str = "auto", threads: int = 0) -> Backbone:
    """The backbone ``form`` (from :func:`remote_form`) with a session of its own on this machine,
    opened from the model's bytes; the same preprocessing, names and dimension as the driver's."""
    from dataclasses import replace

    if hashlib.sha256(model).hexdigest() != form.sha256:
        raise LabellintError(f"backbone {form.path}: the model received is not the one the run loaded")
    session, threads = _session(model, form.sha256, form.path, device, threads)
    return replace(form, session=session, providers=session.get_providers(), threads=threads)
