"""Passes: work done once per file for every rule that needs it, before the rules that use it.

A rule names what it needs in ``REQUIRES``: a pass ("images", "embeddings", "predictions",
"segmentations") or a bare run input. The engine opens each pass a file's enabled rules need (with the passes it
builds on), lets the rules that configure a pass say so in their ``prepare`` hook (LL406 sets
the pixel limit, LL501 asks for crops of its context), runs each pass once, and hands its result
to every rule in the context (``context.result(name)``). A rule whose run inputs are missing is
skipped and listed as such; a pass that fails is one failure finding for each rule that needed it.

The results:

* ``images``: one :class:`labellint.images.ImageInfo` per image row (resolve, read, decode once).
* ``embeddings``: the crops of every box, embedded (cut during the images pass); a rule reads its
  own with :func:`labellint.embed.embeddings`.
* ``predictions``: the run's :class:`labellint.gate.predictions.Predictions`.
* ``segmentations``: every annotation's segmentation summarised
  (:func:`labellint.geometry.segmentations`). A *late* pass: on a large file the loader's
  children are still summarising the polygons when the rules start, so the engine runs the
  rules that need no late pass first and this pass and its rules after them (their findings
  keep the registry's order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Pass:
    name: str
    inputs: tuple  # run inputs it needs (RunContext fields)
    after: tuple  # passes it builds on: opened before it, run before it
    open: Callable  # (ds, context): before the rules' prepare hooks
    run: Callable  # (ds, context) -> result
    late: bool = False  # run after the rules that need no late pass (see the module's doc)


def _images_open(ds, context):
    from labellint import images

    images.open_pass(ds, context)


def _images_run(ds, context):
    from labellint import images

    return images.scan(ds, context)


def _embeddings_run(ds, context):
    from labellint import embed  # onnxruntime and hnswlib load only when an embedding rule runs

    return embed.finish(ds)


def _nothing(ds, context):
    return None


def _predictions_run(ds, context):
    return context.predictions


def _segmentations_run(ds, context):
    from labellint import geometry

    return geometry.segmentations(ds)


PASSES: dict[str, Pass] = {
    "images": Pass("images", ("images",), (), _images_open, _images_run),
    "embeddings": Pass("embeddings", ("images", "backbone"), ("images",), _nothing, _embeddings_run),
    "predictions": Pass("predictions", ("predictions",), (), _nothing, _predictions_run),
    "segmentations": Pass("segmentations", (), (), _nothing, _segmentations_run, late=True),
}


def expand(needs) -> tuple[str, ...]:
    """The passes ``needs`` names, with those they build on, in the order they run."""
    wanted: set[str] = set()

    def add(name: str) -> None:
        if name in PASSES and name not in wanted:
            wanted.add(name)
            for before in PASSES[name].after:
                add(before)

    for name in needs:
        add(name)
    return tuple(name for name in PASSES if name in wanted)


def inputs_of(needs) -> tuple[str, ...]:
    """The run inputs behind ``needs`` (pass names and bare inputs), each once, in order."""
    out: list[str] = []
    for name in needs:
        for need in (PASSES[name].inputs if name in PASSES else (name,)):
            if need not in out:
                out.append(need)
    return tuple(out)
