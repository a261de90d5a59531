"""The images and embeddings passes on a Ray cluster (``--ray auto|ADDRESS``, the ``ray`` extra).

The only part of labellint that knows about Ray, and imported only when ``--ray`` (or ``ray`` in
``[tool.labellint]``) is given: a run without it never imports Ray. It plugs in where the images
pass computes its per-image results (:class:`labellint.images.ScanConfig`'s ``executor``): the
rules, the cache and the neighbour search cannot tell its results from a local run's.

The pipeline (Ray Data), each image decoded once:

    image rows, each with the boxes to crop ─▶ CPU tasks: resolve under the root, read within the
    limits, hash, decode, perceptual hash, cut the crops (:mod:`.stages`, the local pass's own
    functions) ─▶ an actor pool running the ONNX backbone (one session per actor; one GPU per
    actor when the cluster has GPUs) ─▶ per-image records streamed back to the driver in batches,
    stored in the same cache as a local run and in the embedder's matrix.

Modules: ``stages`` (what runs on the workers), ``cluster`` (connecting, the per-node checks),
``driver`` (the driver's side).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Images per Ray Data batch (a CPU task's share, an actor's call) at most, unless ``--ray-batch``
#: says otherwise: fewer when the images are few, so that every actor gets several batches.
DEFAULT_BATCH = 16


@dataclass(frozen=True)
class RaySettings:
    address: str  # "auto" (RAY_ADDRESS, else a local Ray) or a cluster's address
    actors: int = 0  # ONNX actors; 0: one per GPU, else one per CPU
    batch: int = 0  # images per batch; 0: up to DEFAULT_BATCH, fewer for few images


def executor(settings: RaySettings):
    """The images pass's executor for these settings (connects when the pass first runs)."""
    from labellint.distributed.driver import RayExecutor

    return RayExecutor(settings)
