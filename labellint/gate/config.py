"""The training recipe: every knob that changes a trained model, written to RUN/config.json.

No torch here: the CLI reads the defaults without importing it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields

#: torchvision detectors labellint trains; the last one also predicts masks (``--iou-type segm``).
MODELS = ("fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_resnet50_fpn_v2", "maskrcnn_resnet50_fpn")
MASK_MODELS = ("maskrcnn_resnet50_fpn",)


@dataclass(frozen=True)
class TrainConfig:
    model: str = "fasterrcnn_mobilenet_v3_large_fpn"
    epochs: int = 12
    batch_size: int = 4
    image_size: int = 320  # shorter side the model sees; the longer one is at most 5/3 of it
    lr: float = 0.02  # peak SGD learning rate (momentum 0.9), linear warm-up then cosine decay
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.1
    hflip: float = 0.5  # probability of a horizontal flip per training image
    seed: int = 0
    device: str = "auto"
    backbone_weights: str | None = None
    download_weights: bool = False
    rpn_proposals: int = 2000  # proposals kept per image after NMS while training
    roi_batch: int = 512  # regions sampled per image for the box head
    score_threshold: float = 0.001  # detections below this are not written (COCO evaluation wants many)
    detections_per_image: int = 100
    workers: int = 0
    threads: int = 0  # CPU threads for torch (0: torch's default); 1 avoids thrashing on a busy machine

    @property
    def max_size(self) -> int:
        return int(round(self.image_size * 5 / 3))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def recipe_hash(self) -> str:
        """What makes two runs comparable: everything but where it runs and how data is loaded."""
        recipe = {k: v for k, v in self.to_dict().items()
                  if k not in ("device", "workers", "threads", "download_weights")}
        return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
