"""The review gallery's pictures: each wanted image decoded once, in threads, into its thumbnail
and the crops of the findings (and neighbours) it serves, as ``data:`` URIs."""

from __future__ import annotations

import base64
import warnings
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path

from PIL import Image
from rich.console import Console

from labellint import images as images_mod
from labellint import progress
from labellint.report.gallery_cards import ImageRecord, Plan, box

THUMB_PX = 320  # longest side of an image's thumbnail
JPEG_QUALITY = 70


def draw(plan: Plan, console: Console) -> None:
    """Decode every image the plan wants once (in threads) and make its thumbnail and crops; say
    why each other image has no picture."""
    wanted = [(key, rec) for key, rec in plan.images.items() if rec.wanted]
    for key, rec in plan.images.items():
        if plan.root is None:
            rec.why = "image not available: no --images DIR was given"
        elif not rec.wanted:
            rec.why = f"image not embedded: only the first {plan.pictured:,} findings get pictures"
    if plan.root is None or not wanted:
        return
    bases = {}
    for path, source in plan.result.sources.items():
        bases[path] = _extra_bases(plan.root, source)
    with progress.bar(console) as bar, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        task = bar.add_task("making thumbnails", total=len(wanted))
        with ThreadPoolExecutor(max_workers=images_mod.default_threads(),
                                thread_name_prefix="labellint-gallery") as pool:
            jobs = [pool.submit(_draw, plan.root, bases.get(rec.path, ()), plan.result.datasets[rec.path], rec)
                    for _, rec in wanted]
            for job in jobs:
                crops = job.result()
                plan.crop_results.update(crops)
                bar.advance(task)
    for key in list(plan.crop_keys.values()):
        plan.crop_results.setdefault(key, None)


def _extra_bases(root: Path, source: Path | None) -> tuple:
    """The annotation file's folder when it is inside the image root (images beside their JSON)."""
    if source is None:
        return ()
    folder = Path(source).resolve().parent
    try:
        folder.relative_to(root.resolve())
    except ValueError:
        return ()
    return (folder,) if folder != root.resolve() else ()


def _draw(root: Path, bases: tuple, ds, rec: ImageRecord) -> dict:
    """Read and decode one image; set its thumbnail (or why there is none); return its crops."""
    path, why = images_mod.resolve(root, ds.images.file_name[rec.row], bases)
    if path is None:
        rec.why = f"image not available: {why}"
        return {}
    data, failed = images_mod.read_file(path)  # a regular file within the size limit, or why not
    if data is None:
        rec.why = f"image not available: {failed.message or failed.status}"
        return {}
    info, im = images_mod.decode(data, images_mod.DEFAULT_MAX_PIXELS)
    if im is None:
        rec.why = f"image not available: {info.message or info.status}"
        return {}
    rgb = images_mod.to_rgb(im)
    if images_mod.exif_applies(info, ds.images.width[rec.row], ds.images.height[rec.row]):
        rgb = images_mod.upright(rgb, info.orientation)
    rec.width, rec.height = rgb.size  # the boxes' frame: the picture as it is shown
    thumb = rgb.copy()
    thumb.thumbnail((THUMB_PX, THUMB_PX), Image.Resampling.LANCZOS, reducing_gap=2.0)
    rec.src = _jpeg(thumb)
    crops = {}
    for key, (ann_row, size) in rec.crops.items():
        crops[key] = _cut(rgb, box(ds, ann_row), size)
    return crops


def _cut(rgb, box, size: int) -> dict | None:
    """The box with some context, squared, enlarged (or shrunk) to ``size``.

    ``x, y, w, h``: the part of the picture cut (in image pixels); ``view``: the whole square, which
    reaches past the picture's edge for a box near or over it (the page draws that part blank)."""
    if box is None:
        return None
    x, y, w, h = box
    side = max(w, h, 1.0)
    side += 2 * max(8.0, 0.15 * side)
    cx, cy = x + w / 2, y + h / 2
    left, top = max(0.0, cx - side / 2), max(0.0, cy - side / 2)
    right, bottom = min(float(rgb.width), cx + side / 2), min(float(rgb.height), cy + side / 2)
    left, top, right, bottom = int(left), int(top), int(-(-right // 1)), int(-(-bottom // 1))
    if right - left < 1 or bottom - top < 1:
        return None  # the box lies wholly outside its picture
    region = rgb.crop((left, top, right, bottom))
    scale = size / side  # the square is shown at ``size``: as many pixels as it needs
    region = region.resize((max(1, round(region.width * scale)), max(1, round(region.height * scale))),
                           Image.Resampling.LANCZOS)
    view = [round(cx - side / 2, 2), round(cy - side / 2, 2), round(side, 2), round(side, 2)]
    return {"src": _jpeg(region), "x": left, "y": top, "w": right - left, "h": bottom - top, "view": view}


def _jpeg(im) -> str:
    buf = BytesIO()
    im.save(buf, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
