"""Decoding a picture once, and what is measured on it: RGB, EXIF orientation, perceptual hash."""

from __future__ import annotations

from functools import lru_cache
from io import BytesIO
from typing import TYPE_CHECKING

import numpy as np

from labellint.images.info import OK, TOO_LARGE, UNREADABLE, ImageInfo

if TYPE_CHECKING:  # PIL loads when an image is first decoded: a run without --images never pays for it
    from PIL import Image


def to_rgb(im: Image.Image, fill=(124, 116, 104)) -> Image.Image:
    """Any PIL mode as 8-bit RGB: 16-bit and float greys are scaled, alpha is laid over ``fill``."""
    from PIL import Image

    if im.mode == "RGB":
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        hi = float(np.nanmax(a)) if a.size else 0.0
        lo = float(np.nanmin(a)) if a.size else 0.0
        if im.mode.startswith("I;16") and lo >= 0:
            lo, hi = 0.0, 65535.0 if hi > 255 else 255.0
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        a = np.nan_to_num((a - lo) * scale).clip(0, 255).astype(np.uint8)
        return Image.fromarray(a, "L").convert("RGB")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        base = Image.new("RGB", rgba.size, fill)
        base.paste(rgba, mask=rgba.getchannel("A"))
        return base
    return im.convert("RGB")


_DCT = None


#: Two 64x64 thumbnails (brightness and contrast normalised) whose largest difference is under this
#: many standard deviations show one picture. Measured on 2048x1371 photos: a JPEG re-encode at half
#: size 0.06, a PNG at 640 px 0.15, +20% brightness 0.20; a chess knight moved by one square 0.59.
SAME_PICTURE_TOLERANCE = 0.35


def thumbnail(im: Image.Image) -> np.ndarray:
    """64x64 grey, box-filtered: the basis of the perceptual hash and of the duplicate check."""
    # antialiased, so that a resized copy gives the same thumbnail; reducing_gap shrinks big photos
    # by an integer factor first (cheap) without the aliasing of a plain box reduction
    from PIL import Image

    return np.asarray(im.convert("L").resize((64, 64), Image.Resampling.LANCZOS, reducing_gap=2.0), dtype=np.uint8)


def phash(grey: np.ndarray) -> int:
    """64-bit DCT perceptual hash: the 8x8 lowest frequencies of a 32x32 thumbnail vs their median."""
    global _DCT
    if _DCT is None:
        n = np.arange(32)
        _DCT = np.cos(np.pi * (2 * n[None, :] + 1) * n[:, None] / 64.0)
    g = np.asarray(grey, np.float64)
    if g.shape == (64, 64):
        g = g.reshape(32, 2, 32, 2).mean(axis=(1, 3))
    low = (_DCT @ g @ _DCT.T)[:8, :8].ravel()
    bits = low > np.median(low[1:])
    return int(np.packbits(bits).view(">u8")[0])


@lru_cache(maxsize=65536)
def _normalised_thumb(hex_thumb: str) -> np.ndarray:
    x = np.frombuffer(bytes.fromhex(hex_thumb), np.uint8).astype(np.float32)
    return (x - x.mean()) / max(float(x.std()), 1.0)


def same_picture(a: ImageInfo, b: ImageInfo, tolerance: float = SAME_PICTURE_TOLERANCE) -> bool:
    """Whether two images whose hashes are close are one picture (not one scene with a moved object)."""
    if a.thumb is None or b.thumb is None:
        return False
    return float(np.abs(_normalised_thumb(a.thumb) - _normalised_thumb(b.thumb)).max()) <= tolerance


def decode(data: bytes, max_pixels: int) -> tuple[ImageInfo, Image.Image | None]:
    """Decode once. Returns the facts and the fully loaded image (None when it could not be)."""
    from PIL import Image

    info = ImageInfo(OK)
    try:
        im = Image.open(BytesIO(data))
    except Image.DecompressionBombError as exc:
        return ImageInfo(TOO_LARGE, f"refused by the pixel limit: {_why(exc)} (LL406 option max_pixels)"), None
    except Exception as exc:  # PIL raises many kinds for junk
        return ImageInfo(UNREADABLE, f"not a readable image: {_why(exc)}"), None
    info.width, info.height = im.size
    info.mode, info.format = im.mode, im.format
    if im.size[0] * im.size[1] > max_pixels:
        info.status = TOO_LARGE
        info.message = _pixels_message(im.size[0], im.size[1], max_pixels)
        return info, None
    try:
        info.orientation = int(im.getexif().get(0x0112, 1) or 1)
    except Exception:
        info.orientation = 1
    try:
        im.load()
    except Exception as exc:
        info.status = UNREADABLE
        info.truncated = "truncated" in str(exc).lower() or isinstance(exc, EOFError)
        info.message = f"{'truncated' if info.truncated else 'cannot be decoded'}: {_why(exc)}"
        return info, None
    return info, im


def _why(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


_EXIF_TRANSPOSE = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_270",
                   7: "TRANSVERSE", 8: "ROTATE_90"}  # names in PIL.Image.Transpose


def upright(im: Image.Image, orientation: int) -> Image.Image:
    """The picture turned as its EXIF orientation (2-8) says it should be shown."""
    from PIL import Image

    return im.transpose(Image.Transpose[_EXIF_TRANSPOSE[orientation]])


def exif_applies(info: ImageInfo, json_w, json_h) -> bool:
    """Boxes were drawn on the EXIF-rotated view when the JSON's size is the rotated one."""
    if info.orientation == 1 or info.width is None:
        return False
    shown = info.displayed_size()
    stored = (info.width, info.height)
    try:
        declared = (int(json_w), int(json_h))
    except (TypeError, ValueError, OverflowError):
        return False
    return declared == shown and declared != stored


def _pixels_message(width: int, height: int, limit: int) -> str:
    return (f"{width}x{height} = {width * height:,} pixels is over the limit of {limit:,} "
            "(LL406 option max_pixels)")


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bit differences between uint64 hashes (vectorised popcount)."""
    x = np.bitwise_xor(np.asarray(a, np.uint64), np.asarray(b, np.uint64))
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x).astype(np.int64)
    return np.unpackbits(x.reshape(-1, 1).view(np.uint8), axis=1).sum(axis=1).reshape(x.shape)  # pragma: no cover


def near_pairs(hashes, max_distance: int) -> list[tuple[int, int, int]]:
    """(i, j, distance) with i < j for hashes within ``max_distance`` bits of each other.

    Pigeonhole: split the 64 bits into ``max_distance + 1`` chunks; two hashes that close agree
    exactly on at least one chunk, so only hashes sharing a chunk value are compared.
    """
    h = np.asarray(hashes, dtype=np.uint64)
    n = len(h)
    if n < 2:
        return []
    pieces = max(1, min(int(max_distance) + 1, 16))
    bounds = np.linspace(0, 64, pieces + 1).astype(int)
    seen: dict[tuple[int, int], int] = {}
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        mask = np.uint64(((1 << (hi - lo)) - 1) << lo)
        chunk = h & mask
        order = np.argsort(chunk, kind="stable")
        sorted_chunk = chunk[order]
        starts = np.flatnonzero(np.r_[True, sorted_chunk[1:] != sorted_chunk[:-1]])
        ends = np.r_[starts[1:], n]
        for s, e in zip(starts.tolist(), ends.tolist()):
            if e - s < 2:
                continue
            members = np.sort(order[s:e])
            ii, jj = np.triu_indices(len(members), 1)
            a, b = members[ii], members[jj]
            d = hamming(h[a], h[b])
            for x, y, dist in zip(a[d <= max_distance].tolist(), b[d <= max_distance].tolist(),
                                  d[d <= max_distance].tolist()):
                seen[(x, y)] = dist
    return sorted((i, j, d) for (i, j), d in seen.items())
