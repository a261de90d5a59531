"""The images pass: every image of a Dataset resolved, read and decoded once, for every rule."""

from __future__ import annotations

import hashlib
import os
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from labellint import limits
from labellint.errors import LabellintError
from labellint.images.files import _header_refusal, _named, _open, _os_failure, _over_pixels, _read_whole
from labellint.images.info import (DEFAULT_MAX_PIXELS, MAX_BYTES_LIMIT, MISSING, OK, TOO_LARGE, UNREADABLE, UNSAFE,
                                   ImageInfo, info_from_json, info_to_json)
from labellint.images.paths import _linted_trees, resolve
from labellint.images.pixels import decode, exif_applies, phash, thumbnail, to_rgb, upright

if TYPE_CHECKING:
    from PIL import Image


class Visitor:
    """Work that needs the decoded pixels of some images (e.g. cutting crops for a backbone).

    ``wants_pixels`` and ``take`` run in the calling thread; ``cut`` runs in decode threads, on the
    RGB image, right after its decode; ``finish`` runs once after the last image.
    """

    def attach(self, cache) -> None:
        """The pass's cache (labellint.cache.Cache, or None), given when the visitor joins it."""

    def wants_pixels(self, row: int, info: ImageInfo) -> bool:
        return False

    def cut(self, row: int, rgb: Image.Image, info: ImageInfo, exif_applied: bool):
        return None

    def take(self, row: int, payload) -> None:
        pass

    def finish(self) -> None:
        pass

    def remote(self):
        """A picklable description of this visitor's work for a cluster executor
        (:mod:`labellint.distributed`), or None: the visitor then runs in a local pass after the
        cluster's (the same results, one more decode of the images it wants)."""
        return None


@dataclass
class ScanConfig:
    root: Path
    source: Path | None = None  # the annotation file, for the Roboflow layout fallback
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = field(default_factory=lambda: limits.get(MAX_BYTES_LIMIT))
    cache: object | None = None  # labellint.cache.Cache or None
    threads: int = 0
    console: object | None = None
    progress: object | None = None
    # runs the pass instead of the local threads: (ds, config, visitors, previous) -> infos, as
    # _run_pass (labellint.distributed's Ray executor; None: this machine's decode threads)
    executor: object | None = None


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


def config_from(context) -> ScanConfig:
    """The pass settings from the run context (the rules that configure the pass, such as LL406
    with its limits, change them in their ``prepare`` hook)."""
    root = context.images
    if not root:
        raise LabellintError("this rule needs --images DIR")
    root = Path(root)
    if not root.is_dir():
        raise LabellintError(f"image root {root} is not a folder")
    from labellint import cache as cache_mod

    source = Path(context.source) if context.source else None
    return ScanConfig(
        root=root,
        source=source,
        cache=None if context.no_cache else cache_mod.open_cache(_linted_trees(root, source), context.note),
        threads=int(context.decode_threads or 0),
        console=context.console,
        progress=context.progress,
        executor=getattr(context, "executor", None),
    )


def _max_bytes(option) -> int:
    """A rule's ``max_bytes`` when it sets one (above 0), else the run's limit."""
    return int(option) if option and int(option) > 0 else limits.get(MAX_BYTES_LIMIT)


def open_pass(ds, context) -> _State:
    """The Dataset's image pass, set up from the run context the first time it is asked for."""
    st = state(ds)
    with st.lock:
        if st.config is None:
            st.config = config_from(context)
    return st


def prepare(ds, context, visitor: Visitor | None = None, max_pixels: int | None = None,
            max_bytes: int | None = None) -> _State:
    """Say, before the pass runs, what a rule needs from it: a visitor that gets the decoded
    pixels, or limits (from a rule's ``prepare`` hook)."""
    st = open_pass(ds, context)
    with st.lock:
        if max_pixels is not None:
            st.config.max_pixels = int(max_pixels)
        if max_bytes is not None:
            st.config.max_bytes = _max_bytes(max_bytes)
        if visitor is not None and visitor not in st.visitors:
            visitor.attach(st.config.cache)
            st.visitors.append(visitor)
    return st


def scan(ds, context, visitor: Visitor | None = None) -> list[ImageInfo]:
    """Every image's ImageInfo, running the one pass the first time it is asked for (and again
    for visitors added since, on the images they want)."""
    st = prepare(ds, context, visitor)
    with st.lock:
        pending = [v for v in st.visitors if id(v) not in st.done_visitors]
        if st.infos is None or pending:
            run = st.config.executor or _run_pass
            st.infos = run(ds, st.config, pending, st.infos)
            st.done_visitors.update(id(v) for v in pending)
        return st.infos


def extra_bases(cfg: ScanConfig) -> tuple:
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
    # fed even on one core (benchmarks/README_embed.md has the figures)
    return max(2, min(8, cores))


def _run_pass(ds, cfg: ScanConfig, visitors: list, previous: list | None) -> list[ImageInfo]:
    n = len(ds.images)
    bases = extra_bases(cfg)
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
                cached = cache.get_scan(known, info_from_json)
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
        cached = cache.get_scan(digest, info_from_json) if cache is not None else None
        if cached is not None and not _over_pixels(cached, cfg.max_pixels):
            cached.path, cached.digest = str(path), digest
            wanting = [v for v in visitors if cached.decoded and v.wants_pixels(row, cached)]
            if not wanting:
                return row, cached, None
            _, im = decode(data, cfg.max_pixels)  # only for the crops the cache lacks
            return row, cached, (_cut(row, im, cached, wanting, ds) if im is not None else None)
        info, rgb = examine(data, cfg.max_pixels)
        del data  # the decoded picture is what the rest needs; the bytes may be large
        info.path, info.digest = str(path), digest
        payload = None
        if rgb is not None:
            wanting = [v for v in visitors if v.wants_pixels(row, info)]
            payload = _cut(row, rgb, info, wanting, ds, already_rgb=True)
        if cache is not None and info.status in (OK, UNREADABLE):
            cache.put_scan(digest, info_to_json(info))
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
    started = time.perf_counter()
    with pass_bar(cfg, "reading images", n) as (prog, task), pil_limits(cfg.max_pixels):
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
    return infos


def _cut(row, im, info, visitors, ds, already_rgb=False):
    if not visitors:
        return None
    rgb, exif = as_boxes_see_it(im if already_rgb else to_rgb(im), info, ds.images.width[row], ds.images.height[row])
    return [(v, v.cut(row, rgb, info, exif)) for v in visitors]


def as_boxes_see_it(rgb, info: ImageInfo, json_w, json_h):
    """(the RGB picture as the boxes were drawn on it, whether EXIF turned it): turned upright when
    the JSON's size is the EXIF-rotated one."""
    exif = exif_applies(info, json_w, json_h)
    return (upright(rgb, info.orientation) if exif else rgb), exif


def examine(data: bytes, max_pixels: int):
    """(ImageInfo, RGB picture or None): decode once, with the perceptual hash and thumbnail that
    the duplicate rules compare (path and digest are the caller's to set)."""
    info, im = decode(data, max_pixels)
    if im is None:
        return info, None
    rgb = to_rgb(im)
    thumb = thumbnail(rgb)
    info.phash, info.thumb = phash(thumb), thumb.tobytes().hex()
    return info, rgb


def read_and_examine(root: Path, bases: tuple, file_name, max_bytes: int, max_pixels: int):
    """The pass's work on one image without a cache (what a cluster worker runs): resolve under the
    root, read within the limits, hash, decode. Returns (ImageInfo, RGB picture or None, (size,
    mtime_ns) of the file read or None), with what the local pass gives the same image; call it
    inside :func:`pil_limits`."""
    try:
        path, why = resolve(root, file_name, bases)
        if path is None:
            return ImageInfo(UNSAFE, why), None, None
        fh, st, failed = _open(path, max_bytes)
        if failed is not None:
            failed.path = str(path)
            return _named(failed, file_name), None, None
        with fh:
            refused = _header_refusal(fh, max_pixels)
            if refused is not None:
                refused.path = str(path)
                return refused, None, None
            data, failed = _read_whole(fh, st.st_size, max_bytes)
        if failed is not None:
            failed.path = str(path)
            return failed, None, None
        digest = hashlib.sha256(data).hexdigest()
        info, rgb = examine(data, max_pixels)
        info.path, info.digest = str(path), digest
        return info, rgb, (st.st_size, st.st_mtime_ns)
    except OSError as exc:  # any filesystem answer about a dataset's path is that image's finding
        status, why = _os_failure(exc)
        return _named(ImageInfo(status, why), file_name), None, None


@contextmanager
def pass_bar(cfg: ScanConfig, label: str, total: int):
    """(progress, task) of a pass's bar line, on the run's display or, for a pass run on its own
    with a console, a display of its own; (None, None) with neither. The line goes with the pass."""
    from labellint import progress as progress_mod

    owned = None
    prog = cfg.progress
    if prog is None and cfg.console is not None:
        owned = prog = progress_mod.bar(cfg.console)
        owned.start()
    task = prog.add_task(label, total=total) if prog is not None else None
    try:
        yield prog, task
    finally:
        if prog is not None and task is not None:
            prog.remove_task(task)
        if owned is not None:
            owned.stop()


@contextmanager
def pil_limits(max_pixels: int):
    """PIL's pixel limit set to the pass's (a bomb stops at its header), truncated files refused."""
    from PIL import Image, ImageFile

    old_limit, old_truncated = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
    try:
        with warnings.catch_warnings():
            # PIL warns between its limit and twice it; decode() applies the limit itself
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = max_pixels
            ImageFile.LOAD_TRUNCATED_IMAGES = False
            yield
    finally:
        Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = old_limit, old_truncated


def scanned(ds) -> list[ImageInfo] | None:
    """The ImageInfo records of a Dataset whose pass already ran (None otherwise)."""
    st = ds.shared("images.state")
    return None if st is None else st.infos
