"""Embeddings of box crops for the LL5xx rules: backbone sessions, crops, kNN.

A rule that needs embeddings says ``REQUIRES = ("embeddings",)`` and, in its ``prepare`` hook,
:func:`request` s the crops it wants (its crop context), so that they are cut during the one
image pass the image rules also use; the engine then runs the pass, and the rule reads its
vectors with :func:`embeddings` in ``check``. onnxruntime and hnswlib are imported only here,
when an embedding rule runs: the core linter does not need them.
"""

from __future__ import annotations

from labellint import images

_KEY = "embedder"


def _settings(context, crop_context: float) -> tuple:
    return (str(context.backbone), str(context.device or "auto"), int(context.batch_size or 32), float(crop_context))


def request(ds, crop_context: float, context):
    """The Embedder for these settings, registered with the Dataset's image pass."""
    from labellint.embed import backbone as backbone_mod
    from labellint.embed.embedder import Embedder

    st = images.open_pass(ds, context)
    key = (_KEY, _settings(context, crop_context))
    emb = st.extras.get(key)
    if emb is None:
        path, device, batch, crop = key[1]
        warn = backbone_mod.runtime_warning()
        if warn and context.console is not None and not _warned.get(warn):
            from rich.text import Text

            _warned[warn] = True
            context.console.print(Text(f"labellint: warning: {warn}", style="yellow"))
        # with an executor (a cluster) the backbone runs on its workers, on the device asked for:
        # the driver's session only reads the model's preprocessing and dimension
        bb = backbone_mod.load(path, device="cpu" if st.config.executor else device, batch_size=batch)
        emb = Embedder(ds, bb, context=crop, cache=st.config.cache, progress=st.config.progress)
        emb.device = device
        st.extras[key] = emb
        images.prepare(ds, context, visitor=emb)
    return emb


_warned: dict = {}


def finish(ds) -> dict:
    """The embeddings pass, after the images pass cut and embedded the crops: every requested
    Embedder, by its settings (a rule takes its vectors with :func:`embeddings`)."""
    st = images.state(ds)
    return {key[1]: emb for key, emb in list(st.extras.items()) if key[0] == _KEY}


def embeddings(ds, crop_context: float, context):
    """(Embedder, annotation rows, annotation ids, vectors) for these settings, after the pass."""
    emb = request(ds, crop_context, context)
    images.scan(ds, context)  # nothing left to do once the engine ran the pass
    rows, ids, vectors = emb.result()
    return emb, rows, ids, vectors
