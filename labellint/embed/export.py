"""`labellint backbone export`: a torchvision ImageNet classifier as an embedding ONNX model.

The last ``Linear`` layer (the classifier) is replaced by the identity, so the model outputs the
pooled feature the classifier saw. The preprocessing goes into the ONNX metadata under
``labellint.preprocess``, where :mod:`labellint.embed.backbone` reads it. Needs the ``train``
extra (torch, torchvision) and ``onnx``. Weights are never fetched silently in tests: pass
``--weights`` (a state_dict file) or let torchvision use its cache or download.
"""

from __future__ import annotations

import difflib
import json
import os
import tempfile
import warnings
from pathlib import Path

from labellint.embed.backbone import IMAGENET_MEAN, IMAGENET_STD, META_KEY
from labellint.errors import LabellintError
from labellint.fsutil import atomic_write


def _imports():
    try:
        import torch
        import torchvision
    except ImportError:
        raise LabellintError("backbone export needs torch and torchvision: "
                             "pip install 'labellint-coco[train]' onnx") from None
    try:
        import onnx
    except ImportError:
        raise LabellintError("backbone export needs the onnx package: pip install onnx") from None
    return torch, torchvision, onnx


def _strip_classifier(torch, model) -> int:
    last = None
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            last = name
    if last is None:
        raise LabellintError("this architecture has no Linear classifier to remove")
    parent_name, _, attr = last.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    dim = getattr(parent, attr).in_features if not attr.isdigit() else parent[int(attr)].in_features
    if attr.isdigit():
        parent[int(attr)] = torch.nn.Identity()
    else:
        setattr(parent, attr, torch.nn.Identity())
    return dim


def _imagenet_weights(torchvision, torch, arch: str):
    """torchvision's default ImageNet state_dict from its cache, or a download; exact advice offline."""
    from torchvision.models import get_model_weights

    try:
        weights = get_model_weights(arch).DEFAULT
    except (ValueError, KeyError):
        raise LabellintError(f"torchvision has no pretrained weights for '{arch}': pass --weights FILE.pth") from None
    url = weights.url
    filename = url.rsplit("/", 1)[-1]
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    advice = (f"download {url} on a machine with network access (for example: curl -LO {url}), copy it "
              f"here and run: labellint backbone export --arch {arch} --weights {filename}  "
              f"(or place it at {cached}, torchvision's cache)")
    if os.environ.get("LABELLINT_OFFLINE") and not cached.is_file():
        raise LabellintError(f"no weights for '{arch}' and LABELLINT_OFFLINE is set: {advice}")
    try:
        return weights.get_state_dict(progress=False, check_hash=True), weights
    except Exception as exc:
        raise LabellintError(f"could not get the ImageNet weights of '{arch}' ({type(exc).__name__}: "
                             f"{str(exc)[:120]}): {advice}") from None


def export(arch: str, weights_path: Path | None, output: Path, size: int = 224, opset: int = 17) -> Path:
    torch, torchvision, onnx = _imports()
    from torchvision.models import get_model, list_models

    names = list_models(module=torchvision.models)
    if arch not in names:
        close = difflib.get_close_matches(arch, names, n=3)
        raise LabellintError(f"unknown torchvision classification model '{arch}'"
                             + (f" (did you mean {', '.join(close)}?)" if close else ""))
    model = get_model(arch, weights=None)
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    if weights_path is not None:
        try:
            state = torch.load(str(weights_path), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise LabellintError(f"{weights_path}: not a loadable state_dict ({type(exc).__name__}: {exc})") from None
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        source = str(weights_path)
    else:
        state, w = _imagenet_weights(torchvision, torch, arch)
        tf = w.transforms()
        mean, std = tuple(getattr(tf, "mean", mean)), tuple(getattr(tf, "std", std))
        source = w.url
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError) as exc:
        raise LabellintError(f"the weights do not fit {arch}: {str(exc).splitlines()[0]}") from None
    dim = _strip_classifier(torch, model)
    model.eval()
    meta = {"arch": arch, "size": [size, size], "mean": list(mean), "std": list(std), "channel_order": "RGB",
            "layout": "NCHW", "scale": 255.0, "output": "embedding"}
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "model.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(model, torch.zeros(1, 3, size, size), str(raw), input_names=["input"],
                              output_names=["embedding"], dynamic_axes={"input": {0: "batch"}, "embedding": {0: "batch"}},
                              opset_version=opset, dynamo=False)
        proto = onnx.load(str(raw))
        onnx.helper.set_model_props(proto, {META_KEY: json.dumps(meta), "labellint.weights": source,
                                            "labellint.embedding_dim": str(dim)})
        atomic_write(output, proto.SerializeToString())
    return output
