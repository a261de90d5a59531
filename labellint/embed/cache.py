"""The content-addressed cache under ``.labellint_cache/`` (or ``$LABELLINT_CACHE_DIR``).

* ``scan/``: what decoding an image taught us (size, mode, EXIF orientation, perceptual hash),
  keyed by the sha256 of its bytes, as small JSON records, so that a warm re-lint need not decode.
* ``embed/``: crop embeddings, one ``.npy`` per image and model, keyed by the image bytes' hash,
  the crop settings and the model's hash; inside, each row is keyed by its box. Editing a few
  boxes re-embeds only those boxes. Plain numpy arrays only: ``np.load(allow_pickle=False)``.

Every write is atomic; an entry that cannot be read back (corrupt, truncated, another version)
counts as a miss and is recomputed and overwritten.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from labellint.fsutil import atomic_write

CACHEDIR_TAG = ("Signature: 8a477f597d28d172789f06886806bc55\n"
                "# This file is a cache directory tag created by labellint.\n"
                "# For information about cache directory tags see https://bford.info/cachedir/\n")
EMBED_VERSION = 1


class Cache:
    def __init__(self, root: Path):
        self.root = Path(root)
        self._ready = False

    @classmethod
    def default(cls) -> Cache:
        return cls(Path(os.environ.get("LABELLINT_CACHE_DIR") or ".labellint_cache"))

    def _ensure(self) -> None:
        if self._ready:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        tag = self.root / "CACHEDIR.TAG"
        if not tag.exists():
            try:
                atomic_write(tag, CACHEDIR_TAG)
            except OSError:
                pass
        gitignore = self.root / ".gitignore"
        if not gitignore.exists():
            try:
                atomic_write(gitignore, "*\n")
            except OSError:
                pass
        self._ready = True

    def _write(self, path: Path, data: bytes) -> None:
        try:
            self._ensure()
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, data)
        except OSError:
            pass  # a cache that cannot be written only costs time

    # -- file identities: (size, mtime) -> sha256, so that a warm run need not read every file ----
    def _stat_path(self) -> Path:
        return self.root / "stat-index.json"

    def load_stat_index(self) -> dict:
        """{resolved path: [size, mtime_ns, sha256]} from the last runs (empty when unreadable)."""
        import json

        try:
            data = json.loads(self._stat_path().read_text(encoding="utf-8"))
            return data if isinstance(data, dict) and data.get("v") == 1 else {}
        except (OSError, ValueError):
            return {}

    def save_stat_index(self, index: dict) -> None:
        import json

        index["v"] = 1
        self._write(self._stat_path(), json.dumps(index, separators=(",", ":")).encode())

    # -- image scan records -------------------------------------------------------------------
    def _scan_path(self, digest: str) -> Path:
        return self.root / "scan" / digest[:2] / f"{digest}.json"

    def get_scan(self, digest: str):
        from labellint.images import info_from_json

        try:
            text = self._scan_path(digest).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        return info_from_json(text)

    def put_scan(self, digest: str, info) -> None:
        from labellint.images import info_to_json

        self._write(self._scan_path(digest), info_to_json(info).encode())

    # -- embeddings ---------------------------------------------------------------------------
    def embed_path(self, space: str, digest: str, variant: str) -> Path:
        """``space`` names the model and crop settings; ``variant`` the image orientation used."""
        return self.root / "embed" / f"v{EMBED_VERSION}" / space / digest[:2] / f"{digest}-{variant}.npy"

    def get_embeddings(self, path: Path, dim: int) -> dict[bytes, np.ndarray]:
        """{box key: vector} stored for one image; empty when absent or unreadable."""
        try:
            with open(path, "rb") as fh:
                arr = np.load(fh, allow_pickle=False)
            if arr.dtype.names != ("box", "vec") or arr["vec"].shape[1:] != (dim,) or arr.ndim != 1:
                raise ValueError("unexpected layout")
            if not np.isfinite(arr["vec"]).all():
                raise ValueError("non-finite values")
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, EOFError, TypeError, IndexError):
            return {}  # corrupt or foreign: a miss, recomputed and overwritten by the caller
        return {box_key(b): v for b, v in zip(arr["box"], arr["vec"])}

    def put_embeddings(self, path: Path, entries: dict[bytes, np.ndarray], dim: int) -> None:
        arr = np.empty(len(entries), dtype=[("box", "<f8", (4,)), ("vec", "<f4", (dim,))])
        for i, (key, vec) in enumerate(sorted(entries.items())):
            arr["box"][i] = np.frombuffer(key, dtype="<f8")
            arr["vec"][i] = vec
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        self._write(path, buf.getvalue())


def box_key(box) -> bytes:
    return np.asarray(box, dtype="<f8").reshape(4).tobytes()
