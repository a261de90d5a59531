"""Cut, embed and cache the crops of one Dataset during its single image pass."""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from labellint import images
from labellint.coco import MISSING_ID
from labellint.embed import crops
from labellint.cache import box_key


def embeddable(ds) -> np.ndarray:
    """Annotation rows that can be cropped: known image, finite positive box, an id, not crowd."""
    bbox = ds.annotations.bbox
    with np.errstate(invalid="ignore"):
        ok = (ds.ann_image_row >= 0) & np.isfinite(bbox).all(axis=1) & (bbox[:, 2] > 0) & (bbox[:, 3] > 0)
    ok &= ds.annotations.id != MISSING_ID
    ok &= ds.annotations.iscrowd != 1
    ids = ds.annotations.id
    uniq, counts = np.unique(ids, return_counts=True)
    ok &= ~np.isin(ids, uniq[counts > 1])  # an id held by two annotations cannot key an embedding
    return np.flatnonzero(ok)


class Embedder(images.Visitor):
    def __init__(self, ds, backbone, context: float = 0.1, cache=None, progress=None):
        self.ds = ds
        self.backbone = backbone
        self.context = float(context)
        self.device = "auto"  # where a cluster's workers run the backbone (the run's --device)
        self.cache = cache
        self.progress = progress
        self.norm = crops.Normaliser(backbone.pre)
        settings = f"{backbone.space}\0context={self.context:.6g}\0crop=square-pad-mean-v1"
        self.space = hashlib.sha256(settings.encode()).hexdigest()[:24]
        rows = embeddable(ds)
        # the boxes of each image, without a Python object per box: rows grouped by image
        self.rows = rows
        order = np.argsort(ds.ann_image_row[rows], kind="stable")
        self._grouped = rows[order]
        self._starts = np.searchsorted(ds.ann_image_row[self._grouped], np.arange(len(ds.images) + 1))
        # one row of the matrix per croppable annotation (in annotation order), filled as they come
        self._slot = np.full(len(ds.annotations), -1, np.int64)
        self._slot[rows] = np.arange(len(rows))
        self._matrix = np.empty((len(rows), backbone.dim), np.float32)
        self._have = np.zeros(len(rows), bool)
        self._missing: dict[int, list[int]] = {}
        self._stored: dict[int, dict] = {}  # image row -> {box key: vector} already cached
        self._paths: dict[int, object] = {}
        self._remaining: dict[int, int] = {}
        self._batch: list[tuple[int, int, np.ndarray]] = []
        self._lock = threading.Lock()
        # the backbone runs in its own thread, fed batches through a short queue, so that it never
        # waits for the decode threads and they never wait for it (onnxruntime releases the GIL)
        self._queue: queue.Queue = queue.Queue(maxsize=3)
        self._thread: threading.Thread | None = None
        self._busy = False  # the backbone thread is running a batch
        self._error: BaseException | None = None
        self._writes: list = []  # cache writes (fsync'd) run beside the backbone, not in its way
        self._writer = None
        self.embedded = 0  # crops that went through the backbone
        self.cached = 0  # crops read from the cache
        self.infer_seconds = 0.0
        self._task = None
        self._started = None

    # -- images.Visitor ----------------------------------------------------------------------
    def boxes_of(self, row: int) -> np.ndarray:
        """The croppable annotation rows of image ``row``."""
        return self._grouped[self._starts[row]:self._starts[row + 1]]

    def wants_pixels(self, row, info) -> bool:
        anns = self.boxes_of(row).tolist()
        if not anns:
            return False
        with self._lock:
            if row in self._missing:
                return bool(self._missing[row])
        exif = images.exif_applies(info, self.ds.images.width[row], self.ds.images.height[row])
        stored: dict = {}
        if self.cache is not None and info.digest:
            try:
                path = self.cache.embed_path(self.space, info.digest, f"o{info.orientation if exif else 1}")
            except ValueError:  # not a key the cache can hold: embedded, not cached
                path = None
            if path is not None:
                stored = self.cache.get_embeddings(path, self.backbone.dim)
                self._paths[row] = path
        missing = []
        hits = {}
        for ann in anns:
            vec = stored.get(box_key(self.ds.annotations.bbox[ann]))
            if vec is None:
                missing.append(ann)
            else:
                hits[ann] = vec
        with self._lock:
            for a, v in hits.items():
                self._keep(a, v)
            self.cached += len(hits)
            if missing and row in self._paths:  # written back with the new ones once they are embedded
                self._stored[row] = {box_key(self.ds.annotations.bbox[a]): v for a, v in hits.items()}
            self._missing[row] = missing
        return bool(missing)

    def cut(self, row, rgb, info, exif_applied):
        """Crops of the boxes not in the cache, already normalised (runs in a decode thread)."""
        boxes = []
        for ann in self._missing.get(row, ()):
            arr = crops.cut(rgb, self.ds.annotations.bbox[ann], self.backbone.pre.size, self.context, self.norm.fill)
            if arr is not None:
                boxes.append((ann, arr))
        if not boxes:
            return []
        x = self.norm(np.stack([arr for _, arr in boxes]))
        return [(ann, x[i]) for i, (ann, _) in enumerate(boxes)]

    def take(self, row, payload) -> None:
        if not payload:
            return
        self._remaining[row] = len(payload)
        self._batch.extend((row, ann, arr) for ann, arr in payload)
        while len(self._batch) >= self.backbone.batch_size:
            self._submit(self.backbone.batch_size)
        if self._batch and not self._busy and self._queue.empty():
            # the backbone is idle: give it what there is rather than wait for a full batch (a
            # warm run embeds a few dozen crops; on the CPU a crop costs the same in any batch)
            self._submit(len(self._batch))

    def finish(self) -> None:
        while self._batch:
            self._submit(self.backbone.batch_size)
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self._writer is not None:
            for fut in self._writes:
                fut.result()
            self._writer.shutdown()
            self._writer, self._writes = None, []
        if self.progress is not None and self._task is not None:
            self.progress.remove_task(self._task)
            self._task = None
        if self._error is not None:
            raise self._error

    # -- batches ------------------------------------------------------------------------------
    def _submit(self, n: int) -> None:
        part, self._batch = self._batch[:n], self._batch[n:]
        x = np.stack([arr for _, _, arr in part])
        if self._thread is None:
            self._thread = threading.Thread(target=self._infer_loop, name="labellint-backbone", daemon=True)
            self._thread.start()
        while self._error is None:
            try:
                self._queue.put(([(row, ann) for row, ann, _ in part], x), timeout=0.5)
                return
            except queue.Full:
                continue
        raise self._error

    def _infer_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is not None:
                continue
            self._busy = True
            try:
                self._infer(*item)
            except BaseException as exc:  # reported by finish() in the calling thread
                self._error = exc
            finally:
                self._busy = False

    def _infer(self, part, x) -> None:
        t0 = time.perf_counter()
        if self._started is None:
            self._started = t0
        y = self.backbone.run(x)
        self.infer_seconds += time.perf_counter() - t0
        self._record(part, y)
        if self.progress is not None:
            if self._task is None:
                self._task = self.progress.add_task("embedding crops", total=None)
            rate = self.embedded / max(1e-9, time.perf_counter() - self._started)
            self.progress.update(self._task, advance=len(part), description=f"embedding crops ({rate:.0f}/s)")

    def _record(self, part, vectors) -> None:
        """Keep the embeddings of ``part`` ((image row, annotation row) each); an image whose crops
        are all embedded is written to the cache (beside the backbone, in the writer thread)."""
        self.embedded += len(part)
        for (row, ann), vec in zip(part, vectors):
            self._keep(ann, vec)
            self._remaining[row] -= 1
            if row not in self._paths:  # not cached: no cache, or a digest the cache cannot key
                continue
            self._stored.setdefault(row, {})[box_key(self.ds.annotations.bbox[ann])] = vec
            if self._remaining[row] == 0:
                if self._writer is None:
                    from concurrent.futures import ThreadPoolExecutor

                    self._writer = ThreadPoolExecutor(1, thread_name_prefix="labellint-cache")
                self._writes.append(self._writer.submit(self.cache.put_embeddings, self._paths[row],
                                                        self._stored.pop(row), self.backbone.dim))

    @property
    def vectors(self) -> dict:
        """{annotation id: embedding} of the crops embedded so far (for inspection; rules take
        :meth:`result`)."""
        rows, ids, mat = self.result()
        return dict(zip(ids.tolist(), mat))

    def _keep(self, ann: int, vec) -> None:
        slot = self._slot[ann]
        self._matrix[slot] = vec
        self._have[slot] = True

    # -- a cluster's results (labellint.distributed) ------------------------------------------
    def remote(self):
        """What a cluster worker needs to cut this embedder's crops and embed them."""
        from labellint.embed.backbone import remote_form

        return CropJob(self.backbone.pre.size, self.context, self.norm.fill, remote_form(self.backbone))

    def boxes_to_cut(self, row: int) -> np.ndarray:
        """The boxes of image ``row`` a worker should cut: those the cache lacks when the image's
        digest is already known (:meth:`wants_pixels` ran), else all of them."""
        with self._lock:
            known = self._missing.get(row)
        return self.boxes_of(row) if known is None else np.asarray(known, np.int64)

    def take_vectors(self, row: int, info, anns: np.ndarray, vectors: np.ndarray) -> None:
        """A worker's embeddings of image ``row`` (decoded there as ``info``): the cache's vectors
        where it has them, as a local run takes them, the worker's for the rest."""
        if not self.wants_pixels(row, info):
            return
        wanted = set(self._missing[row])
        part = [(row, int(a)) for a in anns.tolist() if int(a) in wanted]
        if not part:
            return
        keep = [i for i, a in enumerate(anns.tolist()) if int(a) in wanted]
        self._remaining[row] = len(part)
        with self._lock:
            self._record(part, vectors[keep])

    # -- results ------------------------------------------------------------------------------
    def result(self):
        """(annotation rows, annotation ids, (n, dim) float32 embeddings), in annotation order."""
        rows = self.rows[self._have]
        mat = self._matrix if self._have.all() else self._matrix[self._have]
        return rows.astype(np.int64), self.ds.annotations.id[rows].astype(np.int64), mat


@dataclass(frozen=True)
class CropJob:
    """An Embedder's work as a cluster worker does it: cut with :func:`crops.cut` at ``size``
    with ``context`` and ``fill``, then the backbone (``backbone``: :func:`remote_form`)."""

    size: tuple
    context: float
    fill: tuple
    backbone: object
