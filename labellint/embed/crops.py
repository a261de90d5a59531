"""Crops for the backbone: the box with some context, padded to a square, resized whole.

A long box (a standing person, a ski) keeps all of its object: the square is the box's longer
side plus context, and what falls outside the image is filled with the backbone's mean colour
(zero after normalisation) instead of being cut off by a centre crop.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def square_region(box, context: float) -> tuple[float, float, float]:
    """(centre x, centre y, side) of the square crop around an xywh box (inf or nan for a box whose
    numbers overflow: :func:`window` refuses those)."""
    x, y, w, h = (float(v) for v in box)
    side = max(w, h) * (1.0 + 2.0 * context)
    return x + w / 2.0, y + h / 2.0, max(side, 1.0)


def window(box, context: float, width: int, height: int, size: tuple[int, int]):
    """Where the crop's square meets the picture, or None when it cannot be cut.

    Returns ``((left, top, right, bottom), (px0, py0, dw, dh))``: the part of the picture in image
    pixels, and where it lands in the ``size`` output (all ints bounded by the output). None for a
    box that is not finite after the arithmetic (a finite 1.7e308 overflows), misses the picture,
    or leaves under half an output pixel of it: all in float64 with finiteness checked before any
    int(), so no box can raise here."""
    out_h, out_w = size
    with np.errstate(over="ignore", invalid="ignore"):
        b = np.asarray(box, dtype=np.float64).reshape(4)
        if not np.isfinite(b).all():
            return None
        cx, cy, side = square_region(b, context)
        x0, y0 = cx - side / 2.0, cy - side / 2.0
        if not np.isfinite([cx, cy, side, x0, y0, x0 + side, y0 + side]).all() or side <= 0:
            return None
        left, top = max(0.0, x0), max(0.0, y0)
        right, bottom = min(float(width), x0 + side), min(float(height), y0 + side)
        if not (right - left >= 0.5 and bottom - top >= 0.5):
            return None  # outside the picture, or nothing of it left after clipping
        sx, sy = out_w / side, out_h / side
        fx0, fy0 = (left - x0) * sx, (top - y0) * sy
        fx1, fy1 = (right - x0) * sx, (bottom - y0) * sy
        if not (np.isfinite([fx0, fy0, fx1, fy1]).all() and fx1 - fx0 >= 0.5 and fy1 - fy0 >= 0.5):
            return None  # the picture would be under half a pixel of the crop: nothing to see
    # each value is within [0, out] now (the clip keeps left - x0 and right - x0 within side)
    px0 = min(max(0, int(round(fx0))), out_w - 1)
    py0 = min(max(0, int(round(fy0))), out_h - 1)
    dw = max(1, min(out_w, int(round(fx1)) - px0))
    dh = max(1, min(out_h, int(round(fy1)) - py0))
    px0, py0 = min(px0, out_w - dw), min(py0, out_h - dh)
    return (left, top, right, bottom), (px0, py0, dw, dh)


def cut(rgb: Image.Image, box, size: tuple[int, int], context: float, fill: tuple[int, int, int]) -> np.ndarray | None:
    """The crop as a (height, width, 3) uint8 array, or None when the box cannot be cut (see :func:`window`)."""
    out_h, out_w = size
    found = window(box, context, rgb.width, rgb.height, size)
    if found is None:
        return None
    (left, top, right, bottom), (px0, py0, dw, dh) = found
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
