"""Crops for the backbone: the box with some context, padded to a square, resized whole.

A long box (a standing person, a ski) keeps all of its object: the square is the box's longer
side plus context, and what falls outside the image is filled with the backbone's mean colour
(zero after normalisation) instead of being cut off by a centre crop.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def square_region(box, context: float) -> tuple[float, float, float]:
    """(centre x, centre y, side) of the square crop around an xywh box."""
    x, y, w, h = (float(v) for v in box)
    side = max(w, h) * (1.0 + 2.0 * context)
    return x + w / 2.0, y + h / 2.0, max(side, 1.0)


def cut(rgb: Image.Image, box, size: tuple[int, int], context: float, fill: tuple[int, int, int]) -> np.ndarray | None:
    """The crop as a (height, width, 3) uint8 array, or None when the box misses the image."""
    out_h, out_w = size
    cx, cy, side = square_region(box, context)
    x0, y0 = cx - side / 2.0, cy - side / 2.0
    left, top = max(0.0, x0), max(0.0, y0)
    right, bottom = min(float(rgb.width), x0 + side), min(float(rgb.height), y0 + side)
    if right - left < 0.5 or bottom - top < 0.5:
        return None
    sx, sy = out_w / side, out_h / side
    px0, py0 = int(round((left - x0) * sx)), int(round((top - y0) * sy))
    dw = max(1, min(out_w, int(round((right - x0) * sx)) - px0))
    dh = max(1, min(out_h, int(round((bottom - y0) * sy)) - py0))
    px0, py0 = min(px0, out_w - dw), min(py0, out_h - dh)
    # reducing_gap: a large box is first shrunk by an integer factor (fast), then resampled
    part = rgb.resize((dw, dh), Image.Resampling.BILINEAR, box=(left, top, right, bottom), reducing_gap=3.0)
    if (dw, dh) == (out_w, out_h):
        return np.asarray(part, dtype=np.uint8)
    canvas = Image.new("RGB", (out_w, out_h), fill)
    canvas.paste(part, (px0, py0))
    return np.asarray(canvas, dtype=np.uint8)


class Normaliser:
    """uint8 HWC crops to the backbone's float input, vectorised over a batch.

    A uint8 has 256 values, so each channel's ``v * mul + add`` is a 256-entry table, computed
    with the same float32 arithmetic (identical results): the batch is transposed while still
    one byte a value, then looked up: one pass each instead of three float passes (this runs in
    the decode threads, beside inference, on every crop)."""

    def __init__(self, pre):
        self.pre = pre
        mean = np.asarray(pre.mean, np.float32)
        std = np.asarray(pre.std, np.float32)
        if pre.channel_order == "BGR":
            mean, std = mean[::-1], std[::-1]
        self.mul = (1.0 / (pre.scale * std)).astype(np.float32)
        self.add = (-mean / std).astype(np.float32)
        levels = np.arange(256, dtype=np.float32)[:, None]
        self.table = np.ascontiguousarray((levels * self.mul + self.add).T)  # (channel, level)
        fill = np.asarray(pre.mean) * pre.scale
        self.fill = tuple(int(round(min(255.0, max(0.0, v)))) for v in fill)  # in RGB order

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        x = crops
        if self.pre.channel_order == "BGR":
            x = x[..., ::-1]
        nchw = self.pre.layout == "NCHW"
        if nchw:
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        out = np.empty(x.shape, np.float32)
        for c in range(x.shape[1] if nchw else x.shape[-1]):
            if nchw:
                np.take(self.table[c], x[:, c], out=out[:, c])
            else:
                out[..., c] = self.table[c][x[..., c]]
        return out
