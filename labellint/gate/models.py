"""torchvision detectors, built without any download, with ImageNet backbone weights when given.

torchvision's builders fetch ImageNet weights themselves (and unpickle them with
``weights_only=False``). Here the detector is always built bare; backbone weights, when there
are any, are read by us with ``torch.load(weights_only=True)`` and then the backbone is put in
the state torchvision's builder would have left it in for a pretrained backbone: frozen batch
norm where torchvision freezes it and only the last three stages trainable.

Only imported by the training code: it imports torch.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision.ops import misc as misc_ops

from labellint.errors import InputError, LabellintError

# ImageNet classifier each detector's backbone comes from, whether torchvision freezes its batch
# norm once pretrained, and the layer names of its stages (first to last) for freezing.
_BACKBONES = {
    "fasterrcnn_mobilenet_v3_large_fpn": ("MobileNet_V3_Large_Weights", True),
    "fasterrcnn_resnet50_fpn_v2": ("ResNet50_Weights", False),
    "maskrcnn_resnet50_fpn": ("ResNet50_Weights", True),
}
TRAINABLE_STAGES = 3  # torchvision's default for a pretrained backbone


def build(name: str, num_classes: int, config) -> nn.Module:
    """A bare detector (random weights, trainable batch norm): nothing is downloaded."""
    from torchvision.models import detection

    kwargs = dict(
        weights=None, weights_backbone=None, num_classes=num_classes,
        min_size=config.image_size, max_size=config.max_size,
        rpn_post_nms_top_n_train=config.rpn_proposals,
        rpn_pre_nms_top_n_train=max(config.rpn_proposals, 1),
        box_batch_size_per_image=config.roi_batch,
        box_score_thresh=config.score_threshold,
        box_detections_per_img=config.detections_per_image,
    )
    try:
        builder = getattr(detection, name)
    except AttributeError:
        raise LabellintError(f"torchvision {torchvision.__version__} has no detector {name}") from None
    return builder(**kwargs)


def hub_weights_file(name: str) -> tuple[Path, str]:
    """(where the torch hub cache keeps the ImageNet weights of this detector's backbone, their URL)."""
    import torchvision.models as tvm

    enum_name, _ = _BACKBONES[name]
    weights = getattr(tvm, enum_name).IMAGENET1K_V1
    url = weights.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1], url


def find_backbone_weights(name: str, given: str | None, download: bool) -> tuple[Path | None, str]:
    """The ImageNet weights file to use, and a sentence saying where it came from (or why none)."""
    if given:
        p = Path(given)
        if not p.is_file():
            raise InputError("backbone weights file not found", str(p))
        return p, f"ImageNet backbone weights from {p}"
    cached, url = hub_weights_file(name)
    if cached.is_file():
        return cached, f"ImageNet backbone weights from the torch hub cache ({cached})"
    if download:
        cached.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(url, str(cached), hash_prefix=None, progress=True)
        except Exception as exc:  # URLError, timeouts, HTTP errors
            raise LabellintError(f"could not download the ImageNet backbone weights from {url} ({exc}); are you "
                                 "offline? Pass --backbone-weights PATH, or leave out --download-weights to train "
                                 "from scratch") from None
        return cached, f"ImageNet backbone weights downloaded to {cached}"
    return None, (f"no ImageNet backbone weights (not in the torch hub cache at {cached}): training from scratch, "
                  "which needs many more epochs; pass --backbone-weights PATH or --download-weights")


def _map_keys(name: str, state: dict) -> dict:
    """ImageNet classifier keys -> keys of the detector's ``backbone.body``."""
    out = {}
    mobilenet = name.startswith("fasterrcnn_mobilenet")
    for key, value in state.items():
        if mobilenet:
            if key.startswith("features."):
                out[key[len("features."):]] = value
        elif not key.startswith("fc."):
            out[key] = value
    return out


def _freeze_batch_norm(module: nn.Module) -> None:
    for child_name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = misc_ops.FrozenBatchNorm2d(child.num_features, eps=child.eps)
            frozen.weight.copy_(child.weight.detach())
            frozen.bias.copy_(child.bias.detach())
            frozen.running_mean.copy_(child.running_mean)
            frozen.running_var.copy_(child.running_var)
            setattr(module, child_name, frozen)
        else:
            _freeze_batch_norm(child)


def _freeze_early_stages(name: str, body: nn.Module, trainable: int) -> None:
    """What torchvision's extractors do for ``trainable_backbone_layers``."""
    if name.startswith("fasterrcnn_mobilenet"):
        blocks = list(body.children())
        stage_indices = [0] + [i for i, b in enumerate(blocks) if getattr(b, "_is_cn", False)] + [len(blocks) - 1]
        freeze_before = len(blocks) if trainable == 0 else stage_indices[len(stage_indices) - trainable]
        for block in blocks[:freeze_before]:
            for p in block.parameters():
                p.requires_grad_(False)
    else:
        train = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable]
        for pname, p in body.named_parameters():
            if all(not pname.startswith(layer) for layer in train):
                p.requires_grad_(False)


@torch.no_grad()
def load_backbone(model: nn.Module, name: str, path: Path) -> None:
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(f"cannot read backbone weights (a torchvision state_dict saved with torch.save is "
                         f"needed): {type(exc).__name__}: {exc}", str(path)) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InputError("backbone weights must be a state_dict (a mapping of names to tensors)", str(path))
    body = model.backbone.body
    mapped = _map_keys(name, state)
    wanted = body.state_dict()
    missing = [k for k in wanted if k not in mapped and not k.endswith("num_batches_tracked")]
    if missing:
        raise InputError(f"these weights do not fit the backbone of {name}: {len(missing)} of its tensors are "
                         f"missing (first: {missing[0]}); give the ImageNet weights of "
                         f"{_BACKBONES[name][0].replace('_Weights', '').lower()}", str(path))
    shapes = [k for k in wanted if k in mapped and tuple(mapped[k].shape) != tuple(wanted[k].shape)]
    if shapes:
        raise InputError(f"these weights do not fit the backbone of {name}: {shapes[0]} has shape "
                         f"{tuple(mapped[shapes[0]].shape)}, the model wants {tuple(wanted[shapes[0]].shape)}",
                         str(path))
    body.load_state_dict({k: mapped[k] for k in wanted if k in mapped}, strict=False)
    if _BACKBONES[name][1]:
        _freeze_batch_norm(body)
    _freeze_early_stages(name, body, TRAINABLE_STAGES)


def frozen_batch_norm(name: str) -> bool:
    return _BACKBONES[name][1]
