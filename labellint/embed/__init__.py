"""Embeddings of box crops for the LL5xx rules: backbone sessions, crops, cache, kNN.

A rule calls :func:`request` in its ``prepare`` hook (so that its crops are cut during the one
image pass that the image rules also use) and :func:`embeddings` in ``check``. onnxruntime and
hnswlib are imported only here, when an embedding rule runs: the core linter does not need them.
"""

from __future__ import annotations

from labellint import images


def _settings(options: dict) -> tuple:
    return (str(options["_backbone"]), str(options.get("_device") or "auto"),
            int(options.get("_batch_size") or 32), float(options.get("context", 0.1)))


def request(ds, options: dict):
    """The Embedder for these settings, registered with the Dataset's image pass."""
    from labellint.embed import backbone as backbone_mod
    from labellint.embed.embedder import Embedder

    st = images.prepare(ds, options)
    key = ("embedder", _settings(options))
    emb = st.extras.get(key)
    if emb is None:
        path, device, batch, context = key[1]
        warn = backbone_mod.runtime_warning()
        console = options.get("_console")
        if warn and console is not None and not _warned.get(warn):
            from rich.text import Text

            _warned[warn] = True
            console.print(Text(f"labellint: warning: {warn}", style="yellow"))
        bb = backbone_mod.load(path, device=device, batch_size=batch)
        emb = Embedder(ds, bb, context=context, cache=st.config.cache, progress=st.config.progress)
        st.extras[key] = emb
        images.prepare(ds, options, visitor=emb)
    return emb


_warned: dict = {}


def embeddings(ds, options: dict):
    """(Embedder, annotation rows, annotation ids, vectors) after the image pass has run."""
    emb = request(ds, options)
    images.scan(ds, options)
    rows, ids, vectors = emb.result()
    return emb, rows, ids, vectors
