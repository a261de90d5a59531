"""The driver's side: which images go to the cluster, the Ray Data pipeline, the results taken in.

The driver resolves every ``file_name`` (an unsafe one never leaves it; the workers resolve again)
and, when the cache's index of file identities knows an image, takes its scan record and cached
embeddings as a local run would, sending only what the cache lacks. The workers' records come
back in batches; each is stored in the run's cache (scan records, the stat index, the embedding
files) and handed to the embedder, whose vectors go into one preallocated matrix: no Python
object per box is kept on the driver.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from labellint.errors import LabellintError
from labellint.images.files import _over_pixels
from labellint.images.info import OK, UNREADABLE, UNSAFE, ImageInfo, info_from_json, info_to_json
from labellint.images.paths import resolve
from labellint.images.scanning import _run_pass, extra_bases, pass_bar
from labellint.distributed import cluster, stages

#: Images whose paths the driver checks on every node as the run starts (spread over the dataset).
SAMPLES = 8
#: Images per batch streamed back to the driver.
STREAM_BATCH = 64
#: Batches queued on one backbone actor at a time: two, so that an actor never waits for its next
#: batch to be dispatched (one costs ~0.15 s idle per batch), and no more, so that the first actor
#: up does not take the work of those still starting.
IN_FLIGHT = 2
#: With the default batch size, each actor gets at least this many batches (few images: smaller batches).
BATCHES_PER_ACTOR = 4


class RayExecutor:
    """Runs the images pass (and the crops and backbone of the embedders in it) on a Ray cluster."""

    def __init__(self, settings):
        self.settings = settings
        self.last: dict = {}  # figures of the last pass (benchmarks): images sent, crops, seconds

    def __call__(self, ds, cfg, visitors: list, previous):
        if previous is not None:  # a visitor that joined after the pass: this machine serves it
            return _run_pass(ds, cfg, visitors, previous)
        jobs = [(v, v.remote()) for v in visitors]
        embedders = [(v, job) for v, job in jobs if job is not None][:1]  # one backbone per pipeline
        others = [v for v in visitors if not embedders or v is not embedders[0][0]]
        infos = self._run(ds, cfg, *(embedders[0] if embedders else (None, None)))
        if others:  # visitors with no cluster form: a local pass over the images they want
            infos = _run_pass(ds, cfg, others, infos)
        return infos

    # -- the pass -----------------------------------------------------------------------------
    def _run(self, ds, cfg, emb, job) -> list:
        ray = cluster.connect(self.settings.address)
        n = len(ds.images)
        infos: list = [None] * n
        cache = cfg.cache
        stat_index = cache.load_stat_index() if cache is not None else {}
        bases = extra_bases(cfg)
        todo, paths = self._triage(ds, cfg, emb, infos, bases, stat_index)
        started = time.perf_counter()
        self.last = {"images": len(todo), "crops": 0, "seconds": 0.0}
        if len(todo):
            check = cluster.NodeCheck(ray, str(cfg.root), _samples(todo, paths))  # answered while actors start
            data = self._pipeline(ray, ds, cfg, emb, job, todo, bases)
            changed = self._collect(data, ds, cfg, emb, infos, stat_index, len(todo), check, started)
            if changed and cache is not None:
                cache.save_stat_index(stat_index)
        if emb is not None:
            emb.finish()
        self.last["seconds"] = time.perf_counter() - started
        missing = [r for r in range(n) if infos[r] is None]
        if missing:
            raise LabellintError(f"the Ray cluster returned no result for {len(missing)} image(s), "
                                 f"the first {ds.images.file_name[missing[0]]!r}")
        return infos

    def _triage(self, ds, cfg, emb, infos, bases, stat_index):
        """Fill ``infos`` for what the driver answers itself (unsafe names; images the cache knows
        fully); the rows left for the cluster, with the paths the driver resolved."""
        cache = cfg.cache
        todo, paths = [], {}
        for row in range(len(ds.images)):
            name = ds.images.file_name[row]
            path, why = resolve(cfg.root, name, bases)
            if path is None:
                infos[row] = ImageInfo(UNSAFE, why)  # what the local pass says, without a read
                continue
            if stat_index:
                cached = _warm(cache, stat_index, path, cfg.max_pixels)
                if cached is not None and not (cached.decoded and emb is not None and emb.wants_pixels(row, cached)):
                    infos[row] = cached
                    continue
            todo.append(row)
            paths[row] = path
        return np.asarray(todo, np.int64), paths

    def _pipeline(self, ray, ds, cfg, emb, job, todo, bases):
        """The Ray Data pipeline over the rows ``todo``: CPU tasks, then the backbone's actors."""
        settings = self.settings
        anns, offsets = _boxes(emb, todo)
        names, name_offsets = _names(ds, todo)
        requests = {
            "root": str(cfg.root), "bases": [str(b) for b in bases], "max_bytes": int(cfg.max_bytes),
            "max_pixels": int(cfg.max_pixels), "job": job, "rows": todo, "names": names,
            "name_offsets": name_offsets,
            "width": np.asarray(ds.images.width, np.float64)[todo], "height": np.asarray(ds.images.height, np.float64)[todo],
            "anns": anns, "box_offsets": offsets, "boxes": np.asarray(ds.annotations.bbox, np.float64)[anns],
        }
        embed = job is not None and len(anns) > 0
        plan = self._plan(ray, emb) if embed else None
        workers = plan[0] if plan else max(1, int(ray.cluster_resources().get("CPU", 1)))
        batch = int(settings.batch) or auto_batch(len(todo), workers)
        self.last["batch"] = batch
        data = _index_blocks(ray, len(todo), batch)
        data = data.map_batches(stages.scan_batch, batch_size=batch, fn_kwargs={"requests": [ray.put(requests)]},
                                num_cpus=1)
        if embed:
            data = self._embed_stage(ray, data, job, batch, *plan)
        return data

    def _plan(self, ray, emb) -> tuple[int, bool]:
        """(backbone actors, on GPUs) for this cluster and the embedder's device."""
        gpus = int(ray.cluster_resources().get("GPU", 0))
        device = str(getattr(emb, "device", None) or "auto")
        on_gpu = gpus > 0 and device != "cpu"
        if device == "cuda" and not on_gpu:
            raise LabellintError("--device cuda: the Ray cluster has no GPU")
        # on CPUs Ray Data fuses the two stages into the actors (the same resources): each actor
        # process reads, crops and embeds its images, and no crop crosses the object store; so by
        # default one actor per CPU. With GPUs the CPU tasks stay apart and feed one actor per GPU.
        actors = self.settings.actors or (gpus if on_gpu else max(1, int(ray.cluster_resources().get("CPU", 1))))
        return actors, on_gpu

    def _embed_stage(self, ray, data, job, batch, actors, on_gpu):
        model = ray.put(Path(job.backbone.path).read_bytes())  # the driver's model, whatever the nodes hold
        resources = {"num_gpus": 1, "num_cpus": 1} if on_gpu else {"num_cpus": 1}
        self.last["actors"], self.last["gpu"] = actors, on_gpu
        pool = ray.data.ActorPoolStrategy(size=actors, max_tasks_in_flight_per_actor=IN_FLIGHT)
        return data.map_batches(stages.EmbedStage, batch_size=batch, compute=pool,
                                fn_constructor_kwargs={"job": job, "model": [model],
                                                       "device": "cuda" if on_gpu else "cpu",
                                                       "threads": 0 if on_gpu else 1}, **resources)

    def _collect(self, data, ds, cfg, emb, infos, stat_index, total, check, started) -> bool:
        """Take the workers' records as they stream in, once every node has passed ``check``;
        True when the stat index changed."""
        cache = cfg.cache
        done = np.zeros(len(ds.images), bool)
        dim = emb.backbone.dim if emb is not None else 0
        changed = False
        with pass_bar(cfg, "images on the Ray cluster", total) as (prog, task):
            for batch in _stream(data, check):
                if not check.passed:
                    check.wait()
                    self.last["checked_s"] = time.perf_counter() - started
                self.last.setdefault("first_result_s", time.perf_counter() - started)
                fresh = 0
                for i, row in enumerate(batch["row"].tolist()):
                    if done[row]:  # a retried task's second answer: the same record
                        continue
                    done[row] = True
                    fresh += 1
                    info = stages.info_from_record(batch["info"][i])
                    infos[row] = info
                    if batch["size"][i] >= 0 and cache is not None and info.digest:
                        stat_index[info.path] = [int(batch["size"][i]), int(batch["mtime"][i]), info.digest]
                        changed = True
                    if cache is not None and info.digest and info.status in (OK, UNREADABLE):
                        cache.put_scan(info.digest, info_to_json(info))
                    if emb is not None and info.decoded:
                        anns = np.frombuffer(batch["anns"][i], np.int64)
                        vecs = np.frombuffer(batch["vecs"][i], np.float32).reshape(len(anns), dim) \
                            if "vecs" in batch else np.zeros((0, dim), np.float32)
                        self.last["crops"] += len(anns)
                        emb.take_vectors(row, info, anns, vecs)
                if prog is not None and fresh:
                    rate = done.sum() / max(1e-9, time.perf_counter() - started)
                    prog.update(task, advance=fresh, description=f"images on the Ray cluster ({rate:.0f}/s)")
        check.wait()  # a pipeline with no output still answers for its nodes
        return changed


def auto_batch(images: int, workers: int) -> int:
    """Images per batch when ``--ray-batch`` is not given: DEFAULT_BATCH, or fewer so that each
    worker gets BATCHES_PER_ACTOR batches or more (a small run spread evenly)."""
    from labellint.distributed import DEFAULT_BATCH

    return max(1, min(DEFAULT_BATCH, -(-images // (max(1, workers) * BATCHES_PER_ACTOR))))


def _index_blocks(ray, n: int, batch: int):
    """A dataset of the indexes 0..n-1 in a column ``data``, one block per batch, built on the
    driver: no read tasks to hold CPUs the actors need (ray.data.range's would wait behind one
    actor per CPU) and no conversion tasks (ray.data.from_numpy runs one per block, each waiting
    for a worker process: seconds on a small cluster)."""
    import pyarrow as pa

    index = np.arange(n, dtype=np.int64)
    blocks = [pa.table({"data": index[i:i + batch]}) for i in range(0, n, batch)]
    if hasattr(ray.data, "from_blocks"):
        return ray.data.from_blocks(blocks)
    return ray.data.from_arrow(blocks)  # a Ray without from_blocks: conversion tasks, same data


def _stream(data, check):
    """The pipeline's output in batches, a failure on the cluster as a one-line error (a node that
    failed its check says so first: that is the likelier cause)."""
    try:
        yield from data.iter_batches(batch_size=STREAM_BATCH, batch_format="numpy", prefetch_batches=1)
    except LabellintError:
        raise
    except Exception as exc:
        check.wait()
        cause = exc
        while cause is not None and not isinstance(cause, LabellintError):
            cause = getattr(cause, "cause", None) or cause.__cause__
        if cause is not None:  # labellint's own error on a worker (a backbone giving NaN): as locally
            raise LabellintError(cause.message) from None
        raise LabellintError(f"the Ray pipeline failed: {cluster._first_line(exc)}") from None


def _warm(cache, stat_index: dict, path: Path, max_pixels: int):
    """The cached scan record of an image whose size and mtime are those its digest was taken at."""
    entry = stat_index.get(str(path))
    if not (isinstance(entry, list) and len(entry) == 3):
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None  # the workers say what is wrong with it
    if entry[0] != st.st_size or entry[1] != st.st_mtime_ns:
        return None
    cached = cache.get_scan(entry[2], info_from_json)
    if cached is None or _over_pixels(cached, max_pixels):
        return None
    cached.path, cached.digest = str(path), entry[2]
    return cached


def _boxes(emb, todo: np.ndarray):
    """(annotation rows to crop, offsets by image) for the rows ``todo``."""
    if emb is None:
        return np.zeros(0, np.int64), np.zeros(len(todo) + 1, np.int64)
    parts = [emb.boxes_to_cut(int(row)) for row in todo.tolist()]
    offsets = np.zeros(len(todo) + 1, np.int64)
    offsets[1:] = np.cumsum([len(p) for p in parts])
    return (np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)), offsets


def _names(ds, todo: np.ndarray):
    """The rows' file names as one UTF-8 buffer and offsets (resolve accepted each, so each encodes)."""
    encoded = [str(ds.images.file_name[row]).encode("utf-8", "surrogateescape") for row in todo.tolist()]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    offsets[1:] = np.cumsum([len(e) for e in encoded])
    return np.frombuffer(b"".join(encoded), np.uint8), offsets


def _samples(todo: np.ndarray, paths: dict) -> list[str]:
    """Up to SAMPLES images, spread over the rows sent, that exist for the driver."""
    picks = todo[np.linspace(0, len(todo) - 1, min(len(todo), SAMPLES * 4)).astype(int)].tolist()
    out = []
    for row in dict.fromkeys(picks):
        if os.path.isfile(paths[row]) and len(out) < SAMPLES:
            out.append(str(paths[row]))
    return out
