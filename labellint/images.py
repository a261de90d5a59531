"""Image access: resolve each ``file_name`` under the image root, read and decode every image once.

One pass per Dataset (:func:`scan`) serves every rule that reads pictures: the image rules (LL4xx)
read its :class:`ImageInfo` records and the embedding rules (LL5xx) register a *visitor* that cuts
their crops from the same decode. The engine calls each rule separately, so the pass lives in a
cache keyed on the Dataset object; rules say what they need in their ``prepare`` hook, before the
first ``check`` of the run starts the pass.

Safety: a ``file_name`` that is absolute, holds ``..`` or resolves (through a symlink) outside the
image root is refused, never opened. Every filesystem call on a dataset's path is guarded: whatever
the operating system says (a name too long, a folder that cannot be searched, a special file) ends
as that image's finding, never as an error that loses the whole file. Only a regular file is read
(a FIFO cannot block the pass), its size checked before a byte is read (``max_image_bytes``), its
header read before its pixels (PIL opens lazily) so that an over-limit picture is refused without
being loaded; PIL's pixel limit is set for the pass, so a decompression bomb is stopped at its header.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import threading
import time
import warnings
from functools import lru_cache
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from io import BytesIO
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # PIL loads when an image is first decoded: a run without --images never pays for it
    from PIL import Image

from labellint import limits
from labellint.errors import LabellintError
from labellint.fsutil import repo_root

#: Default decompression-bomb limit in pixels (about 16k x 16k); rule LL406 makes it configurable.
DEFAULT_MAX_PIXELS = 268_435_456
MAX_BYTES_LIMIT = "max_image_bytes"  # in labellint.limits; LL406's max_bytes overrides it
SCAN_VERSION = 3

# statuses of an ImageInfo, in the order a pass meets them
OK, UNSAFE, MISSING, TOO_LARGE, UNREADABLE = "ok", "unsafe", "missing", "too-large", "unreadable"

_TRANSPOSED = {5, 6, 7, 8}  # EXIF orientations that swap width and height


@dataclass
class ImageInfo:
    """What one pass learnt about one image entry (a row of ``ds.images``)."""

    status: str
    message: str = ""
    path: str | None = None  # resolved path, when it is inside the root
    digest: str | None = None  # sha256 of the file's bytes
    width: int | None = None  # as stored, before any EXIF rotation
    height: int | None = None
    mode: str | None = None
    format: str | None = None
    orientation: int = 1
    phash: int | None = None  # 64-bit perceptual hash of the picture
    thumb: str | None = None  # 64x64 grey thumbnail, hex: confirms that two close hashes are one picture
    truncated: bool = False

    @property
    def decoded(self) -> bool:
        return self.status == OK

    def displayed_size(self) -> tuple[int, int] | None:
        """(width, height) as a viewer that honours EXIF orientation shows it."""
        if self.width is None:
            return None
        if self.orientation in _TRANSPOSED:
            return self.height, self.width
        return self.width, self.height


# -- paths -------------------------------------------------------------------------------------

def resolve(root: Path, file_name, extra_bases=()) -> tuple[Path | None, str | None]:
    """(path, None) for a safe existing-or-not path under ``root``, or (None, why it is refused).

    ``extra_bases`` are folders inside the root that are searched after it (the annotation file's
    own folder, for the Roboflow layout where each split's images sit beside its JSON).
    """
    if not isinstance(file_name, str) or not file_name.strip():
        return None, f"file_name {file_name!r} is not a path"
    if "\0" in file_name:
        return None, "file_name contains a NUL character"
    try:
        os.fsencode(file_name)
    except UnicodeError:  # a lone surrogate: no operating system call can even be made with it
        return None, f"file_name {file_name!r} holds characters that no file name can hold"
    name = file_name.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None, f"file_name '{file_name}' is an absolute path; it must be relative to the image root"
    parts = PurePosixPath(name).parts
    if ".." in parts:
        return None, f"file_name '{file_name}' climbs out of its folder with '..'"
    real_root = root.resolve()
    first = None
    for base in (root, *extra_bases):
        candidate = Path(base, *parts)
        try:
            real = candidate.resolve()
        except (OSError, RuntimeError, ValueError) as exc:  # symlink loops
            return None, f"file_name '{file_name}' cannot be resolved: {getattr(exc, 'strerror', None) or exc}"
        try:
            real.relative_to(real_root)
        except ValueError:
            return None, (f"file_name '{file_name}' resolves outside the image root "
                          "(a symlink points out of it)")
        if first is None:
            first = real
        if _exists(real):
            return real, None
    return first, None


def _exists(path: Path) -> bool:
    # a name too long for the filesystem, a folder on the way that cannot be searched: reading
    # the file then says why, as that image's finding
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


# -- decoding ----------------------------------------------------------------------------------

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


# -- the shared per-dataset pass ------------------------------------------------------------------

class Visitor:
    """Work that needs the decoded pixels of some images (e.g. cutting crops for a backbone).

    ``wants_pixels`` and ``take`` run in the calling thread; ``cut`` runs in decode threads, on the
    RGB image, right after its decode; ``finish`` runs once after the last image.
    """

    def wants_pixels(self, row: int, info: ImageInfo) -> bool:
        return False

    def cut(self, row: int, rgb: Image.Image, info: ImageInfo, exif_applied: bool):
        return None

    def take(self, row: int, payload) -> None:
        pass

    def finish(self) -> None:
        pass


@dataclass
class ScanConfig:
    root: Path
    source: Path | None = None  # the annotation file, for the Roboflow layout fallback
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = field(default_factory=lambda: limits.get(MAX_BYTES_LIMIT))
    cache: object | None = None  # labellint.embed.cache.Cache or None
    threads: int = 0
    console: object | None = None
    progress: object | None = None


@dataclass
class _State:
    config: ScanConfig | None = None
    visitors: list = field(default_factory=list)
    infos: list | None = None
    done_visitors: set = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    extras: dict = field(default_factory=dict)  # per-rule helpers, e.g. the embedder of a backbone


_STATES_LOCK = threading.Lock()


def state(ds) -> _State:
    """The pass state shared by every rule that reads this Dataset's images."""
    with _STATES_LOCK:
        return ds.shared("images.state", _State)


def config_from(options: dict) -> ScanConfig:
    """The pass settings from a rule's options (the run context arrives with a leading underscore)."""
    root = options.get("_images")
    if not root:
        raise LabellintError("this rule needs --images DIR")
    root = Path(root)
    if not root.is_dir():
        raise LabellintError(f"image root {root} is not a folder")
    from labellint.embed import cache as cache_mod  # numpy-only, no onnxruntime

    source = Path(options["_source"]) if options.get("_source") else None
    return ScanConfig(
        root=root,
        source=source,
        max_pixels=int(options.get("max_pixels") or DEFAULT_MAX_PIXELS),
        max_bytes=_max_bytes(options.get("max_bytes")),
        cache=None if options.get("_no_cache") else cache_mod.open_cache(_linted_trees(root, source),
                                                                          _note_sink(options)),
        threads=int(options.get("_decode_threads") or 0),
        console=options.get("_console"),
        progress=options.get("_progress"),
    )


def _max_bytes(option) -> int:
    """A rule's ``max_bytes`` when it sets one (above 0), else the run's limit."""
    return int(option) if option and int(option) > 0 else limits.get(MAX_BYTES_LIMIT)


def _linted_trees(root: Path, source: Path | None) -> list[Path]:
    """The folders whose contents came with the data: the image root and the git work tree that
    holds the annotation file (a pull request's checkout)."""
    trees = [root]
    if source is not None:
        repo = repo_root(Path(os.path.abspath(source)).parent)
        if repo is not None:
            trees.append(repo)
    return trees


def _note_sink(options: dict):
    """Append a note to the run's notes (``options["_notes"]``) once; dropped outside a run."""
    notes = options.get("_notes")
    if not isinstance(notes, list):
        return None

    def note(message: str) -> None:
        if message not in notes:
            notes.append(message)

    return note


def prepare(ds, options: dict, visitor: Visitor | None = None, max_pixels: int | None = None,
            max_bytes: int | None = None) -> _State:
    """Say, before the pass runs, what a rule needs from it (called from a rule's ``prepare``)."""
    st = state(ds)
    with st.lock:
        if st.config is None:
            st.config = config_from(options)
        if max_pixels is not None:
            st.config.max_pixels = int(max_pixels)
        if max_bytes is not None:
            st.config.max_bytes = _max_bytes(max_bytes)
        if visitor is not None and visitor not in st.visitors:
            st.visitors.append(visitor)
    return st


def scan(ds, options: dict, visitor: Visitor | None = None) -> list[ImageInfo]:
    """Every image's ImageInfo, running the one pass the first time it is asked for."""
    st = prepare(ds, options, visitor)
    with st.lock:
        pending = [v for v in st.visitors if id(v) not in st.done_visitors]
        if st.infos is None or pending:
            st.infos = _run_pass(ds, st.config, pending, st.infos)
            st.done_visitors.update(id(v) for v in pending)
        return st.infos


def _extra_bases(cfg: ScanConfig) -> tuple:
    if cfg.source is None:
        return ()
    folder = cfg.source.resolve().parent
    try:
        folder.relative_to(cfg.root.resolve())
    except ValueError:
        return ()
    return (folder,) if folder != cfg.root.resolve() else ()


def default_threads() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    # at least two: decoding holds the GIL part of the time, so one thread cannot keep a backbone
    # fed even on one core (measured: 2 decode threads 255 crops/s end to end, 1 thread 163, on 2 vCPUs)
    return max(2, min(8, cores))


def _run_pass(ds, cfg: ScanConfig, visitors: list, previous: list | None) -> list[ImageInfo]:
    n = len(ds.images)
    bases = _extra_bases(cfg)
    cache = cfg.cache
    infos: list[ImageInfo] = list(previous) if previous is not None else [None] * n

    def work(row: int):
        try:
            return _work(row)
        except OSError as exc:  # any filesystem answer about a dataset's path is that image's finding
            status, why = _os_failure(exc)
            return row, _named(ImageInfo(status, why), ds.images.file_name[row]), None

    def _work(row: int):
        """Read, hash, decode (unless the cache and the visitors make it unneeded), cut crops."""
        if previous is not None:
            info = previous[row]
            if info.path is None or info.status in (UNSAFE, MISSING, TOO_LARGE):
                return row, info, None
            wanting = [v for v in visitors if v.wants_pixels(row, info)]
            if not wanting:
                return row, info, None
            fh, _, failed = _open(Path(info.path), cfg.max_bytes)
            if failed is not None:
                return row, info, None
            with fh:
                data, failed = _read_whole(fh, os.fstat(fh.fileno()).st_size, cfg.max_bytes)
            if failed is not None:
                return row, info, None
            fresh, im = decode(data, cfg.max_pixels)
            return row, info, _cut(row, im, info, wanting, ds) if im is not None else None
        path, why = resolve(cfg.root, ds.images.file_name[row], bases)
        if path is None:
            return row, ImageInfo(UNSAFE, why), None
        fh, st, failed = _open(path, cfg.max_bytes)
        if failed is not None:
            failed.path = str(path)
            return row, _named(failed, ds.images.file_name[row]), None
        with fh:
            known = _known_digest(path, st)
            if known is not None:  # same size and mtime as when its bytes were hashed: no read needed
                cached = cache.get_scan(known)
                if cached is not None and not _over_pixels(cached, cfg.max_pixels):
                    cached.path, cached.digest = str(path), known
                    if not (cached.decoded and any([v.wants_pixels(row, cached) for v in visitors])):
                        return row, cached, None
            refused = _header_refusal(fh, cfg.max_pixels)
            if refused is not None:
                refused.path = str(path)
                return row, refused, None
            data, failed = _read_whole(fh, st.st_size, cfg.max_bytes)
        if failed is not None:
            failed.path = str(path)
            return row, failed, None
        digest = hashlib.sha256(data).hexdigest()
        _remember_digest(path, st, digest)
        cached = cache.get_scan(digest) if cache is not None else None
        if cached is not None and not _over_pixels(cached, cfg.max_pixels):
            cached.path, cached.digest = str(path), digest
            wanting = [v for v in visitors if cached.decoded and v.wants_pixels(row, cached)]
            if not wanting:
                return row, cached, None
            _, im = decode(data, cfg.max_pixels)  # only for the crops the cache lacks
            return row, cached, (_cut(row, im, cached, wanting, ds) if im is not None else None)
        info, im = decode(data, cfg.max_pixels)
        del data  # the decoded picture is what the rest needs; the bytes may be large
        info.path, info.digest = str(path), digest
        payload = None
        if im is not None:
            rgb = to_rgb(im)
            thumb = thumbnail(rgb)
            info.phash, info.thumb = phash(thumb), thumb.tobytes().hex()
            wanting = [v for v in visitors if v.wants_pixels(row, info)]
            payload = _cut(row, rgb, info, wanting, ds, already_rgb=True)
        if cache is not None and info.status in (OK, UNREADABLE):
            cache.put_scan(digest, info)
        return row, info, payload

    stat_index = cache.load_stat_index() if cache is not None else {}
    stat_changed = []

    def _known_digest(path: Path, st: os.stat_result) -> str | None:
        if cache is None:
            return None
        entry = stat_index.get(str(path))
        if isinstance(entry, list) and len(entry) == 3 and entry[0] == st.st_size and entry[1] == st.st_mtime_ns:
            return entry[2]
        return None

    def _remember_digest(path: Path, st: os.stat_result, digest: str) -> None:
        if cache is None:
            return
        stat_index[str(path)] = [st.st_size, st.st_mtime_ns, digest]
        stat_changed.append(1)

    threads = cfg.threads or default_threads()
    window = threads * 2 + 2  # images in flight: bounds memory, keeps the backbone fed
    from labellint import progress as progress_mod

    owned = None
    prog = cfg.progress
    if prog is None and cfg.console is not None:
        owned = prog = progress_mod.bar(cfg.console)
        owned.start()
    task = prog.add_task("reading images", total=n) if prog is not None else None
    from PIL import Image, ImageFile

    started = time.perf_counter()
    old_limit = Image.MAX_IMAGE_PIXELS
    old_truncated = ImageFile.LOAD_TRUNCATED_IMAGES
    try:
        with warnings.catch_warnings():
            # PIL warns between its limit and twice it; decode() applies the limit itself
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = cfg.max_pixels
            ImageFile.LOAD_TRUNCATED_IMAGES = False
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="labellint-decode") as pool:
                futures = {}
                next_row = 0
                done = 0
                while next_row < n or futures:
                    while next_row < n and len(futures) < window:
                        futures[next_row] = pool.submit(work, next_row)
                        next_row += 1
                    first = min(futures)
                    row, info, payload = futures.pop(first).result()
                    infos[row] = info
                    if payload:
                        for visitor, part in payload:
                            visitor.take(row, part)
                    done += 1
                    if prog is not None:
                        rate = done / max(1e-9, time.perf_counter() - started)
                        prog.update(task, advance=1, description=f"reading images ({rate:.0f}/s)")
            for visitor in visitors:
                visitor.finish()
        if stat_changed:
            cache.save_stat_index(stat_index)
    finally:
        Image.MAX_IMAGE_PIXELS = old_limit
        ImageFile.LOAD_TRUNCATED_IMAGES = old_truncated
        if prog is not None and task is not None:
            prog.remove_task(task)
        if owned is not None:
            owned.stop()
    return infos


_EXIF_TRANSPOSE = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_270",
                   7: "TRANSVERSE", 8: "ROTATE_90"}  # names in PIL.Image.Transpose


def upright(im: Image.Image, orientation: int) -> Image.Image:
    """The picture turned as its EXIF orientation (2-8) says it should be shown."""
    from PIL import Image

    return im.transpose(Image.Transpose[_EXIF_TRANSPOSE[orientation]])


def _cut(row, im, info, visitors, ds, already_rgb=False):
    if not visitors:
        return None
    rgb = im if already_rgb else to_rgb(im)
    exif = exif_applies(info, ds.images.width[row], ds.images.height[row])
    if exif:
        rgb = upright(rgb, info.orientation)
    return [(v, v.cut(row, rgb, info, exif)) for v in visitors]


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


_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)  # a FIFO answers at once instead of hanging
               | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0))


def _named(info: ImageInfo, file_name) -> ImageInfo:
    """LL401 says which file_name it refused; the other rules name the image themselves."""
    if info.status == UNSAFE:
        info.message = f"file_name '{file_name}' {info.message}"
    return info


def _os_failure(exc: OSError) -> tuple[str, str]:
    """(status, why) for what the operating system said about an image's path."""
    if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
        return MISSING, ""
    if exc.errno == errno.ENAMETOOLONG:
        return MISSING, "its path is too long for the filesystem (File name too long)"
    if exc.errno == errno.ELOOP:
        return UNSAFE, "its path goes round a loop of symlinks"
    if isinstance(exc, IsADirectoryError):
        return UNREADABLE, "is a folder, not a file"
    return UNREADABLE, f"cannot be read: {exc.strerror or exc}"


def _open(path: Path, max_bytes: int):
    """(open binary file, its stat, None), or (None, None, ImageInfo saying why not): a regular
    file within the byte limit, checked on the open descriptor before anything is read."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        status, why = _os_failure(exc)
        return None, None, ImageInfo(status, why)
    fh = os.fdopen(fd, "rb")
    try:
        st = os.fstat(fh.fileno())
        if stat.S_ISDIR(st.st_mode):
            failed = ImageInfo(UNREADABLE, "is a folder, not a file")
        elif not stat.S_ISREG(st.st_mode):
            failed = ImageInfo(UNREADABLE, "is not a regular file (a FIFO, a device or a socket)")
        elif st.st_size > max_bytes:
            failed = ImageInfo(TOO_LARGE, _bytes_message(st.st_size, max_bytes))
        else:
            return fh, st, None
    except BaseException:
        fh.close()
        raise
    fh.close()
    return None, None, failed


def _read_whole(fh, size: int, max_bytes: int) -> tuple[bytes | None, ImageInfo | None]:
    """The file's bytes, never more than the byte limit (a file that grew past it is refused).

    ``size`` is what fstat said: read(n) allocates n bytes before reading, so it is asked for the
    file's size (plus one byte, to notice growth), never for the limit."""
    fh.seek(0)
    data = fh.read(min(size, max_bytes) + 1)
    if len(data) <= size:
        return data, None
    parts, total = [data], len(data)
    while total <= max_bytes:  # it grew while being read: go on, in pieces, up to the limit
        more = fh.read(min(1 << 20, max_bytes + 1 - total))
        if not more:
            return b"".join(parts), None
        parts.append(more)
        total += len(more)
    return None, ImageInfo(TOO_LARGE, _bytes_message(f"more than {max_bytes:,}", max_bytes))


def read_file(path: Path, max_bytes: int | None = None) -> tuple[bytes | None, ImageInfo | None]:
    """(bytes, None), or (None, ImageInfo saying why not: missing, unreadable, too large), for any
    caller that reads a dataset's picture: a regular file, size checked before reading, never more
    than ``max_bytes`` (default: the ``max_image_bytes`` limit) read; OSError never escapes."""
    limit = limits.get(MAX_BYTES_LIMIT) if max_bytes is None else int(max_bytes)
    try:
        fh, st, failed = _open(Path(path), limit)
        if failed is not None:
            return None, failed
        with fh:
            return _read_whole(fh, st.st_size, limit)
    except OSError as exc:
        return None, ImageInfo(*_os_failure(exc))


def _bytes_message(size, limit: int) -> str:
    size = f"{size:,}" if isinstance(size, int) else size
    return (f"the file's {size} bytes are over the limit of {limit:,} (LL406 option max_bytes, "
            f"or {limits.LIMITS[MAX_BYTES_LIMIT].env})")


def _pixels_message(width: int, height: int, limit: int) -> str:
    return (f"{width}x{height} = {width * height:,} pixels is over the limit of {limit:,} "
            "(LL406 option max_pixels)")


def _over_pixels(info: ImageInfo, max_pixels: int) -> bool:
    return info.status == OK and info.width * info.height > max_pixels


def _header_refusal(fh, max_pixels: int) -> ImageInfo | None:
    """A TOO_LARGE record when the header claims more pixels than the limit, read without loading
    the picture (PIL reads only the header at open); None to go on: junk is decode()'s to report."""
    from PIL import Image

    try:
        im = Image.open(fh)
    except Image.DecompressionBombError as exc:
        return ImageInfo(TOO_LARGE, f"refused by the pixel limit: {_why(exc)} (LL406 option max_pixels)")
    except Exception:  # PIL raises many kinds for junk
        return None
    width, height = im.size
    if width * height <= max_pixels:
        return None
    return ImageInfo(TOO_LARGE, _pixels_message(width, height, max_pixels), width=width, height=height,
                     mode=im.mode, format=im.format)


def info_to_json(info: ImageInfo) -> str:
    d = asdict(info)
    d.pop("path", None)
    d["phash"] = None if info.phash is None else f"{info.phash:016x}"
    d["v"] = SCAN_VERSION
    return json.dumps(d)


_STATUSES = (OK, UNSAFE, MISSING, TOO_LARGE, UNREADABLE)
_HEX = frozenset("0123456789abcdef")


def info_from_json(text: str) -> ImageInfo | None:
    """A scan record read back from the cache, or None unless every field has its type and range
    (a record decides what the image rules see of an image that is not read again)."""
    try:
        d = json.loads(text)
    except ValueError:
        return None
    if not isinstance(d, dict) or d.pop("v", None) != SCAN_VERSION or set(d) != _RECORD_FIELDS:
        return None
    ph, thumb = d.pop("phash"), d["thumb"]

    def opt(value, kind) -> bool:
        return value is None or type(value) is kind

    ok = (d["status"] in _STATUSES and type(d["message"]) is str and len(d["message"]) <= 1000
          and opt(d["digest"], str) and opt(d["mode"], str) and opt(d["format"], str)
          and type(d["truncated"]) is bool and type(d["orientation"]) is int and 1 <= d["orientation"] <= 8
          and all(opt(d[k], int) and (d[k] is None or 0 < d[k] < 2**31) for k in ("width", "height"))
          and (d["status"] != OK or (d["width"] is not None and d["height"] is not None
                                     and ph is not None and thumb is not None))
          and (ph is None or (type(ph) is str and len(ph) == 16 and set(ph) <= _HEX))
          and (thumb is None or (type(thumb) is str and len(thumb) == 2 * 64 * 64 and set(thumb) <= _HEX)))
    if not ok:
        return None
    info = ImageInfo(**d)
    info.phash = None if ph is None else int(ph, 16)
    return info


_RECORD_FIELDS = frozenset(f for f in ImageInfo.__dataclass_fields__ if f != "path")


# -- duplicates ---------------------------------------------------------------------------------

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


def scanned(ds) -> list[ImageInfo] | None:
    """The ImageInfo records of a Dataset whose pass already ran (None otherwise)."""
    st = ds.shared("images.state")
    return None if st is None else st.infos
