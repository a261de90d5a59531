"""The content-addressed cache, kept in the user's cache folder (``$LABELLINT_CACHE_DIR`` overrides).

* ``scan/``: what decoding an image taught us (size, mode, EXIF orientation, perceptual hash),
  keyed by the sha256 of its bytes, as small JSON records, so that a warm re-lint need not decode.
* ``embed/``: crop embeddings, one ``.npy`` per image and model, keyed by the image bytes' hash,
  the crop settings and the model's hash; inside, each row is keyed by its box. Editing a few
  boxes re-embeds only those boxes. Plain numpy arrays only: ``np.load(allow_pickle=False)``.

Trust: a cache entry says "this image is fine" without the image being read, so whoever can write
the cache decides what the image rules see. The cache therefore never lives in the linted tree (a
pull request could commit one there): the default is the user's cache folder, and a folder inside
the image root or the linted file's repository is refused, as is one that is a symlink or belongs
to another user. Entries are data only and are checked field by field on read. A refused,
unreadable or unwritable cache costs time, never the run: one note, then the run goes on uncached.

Every write is atomic; an entry that cannot be read back (corrupt, truncated, another version)
counts as a miss and is recomputed and overwritten.
"""

from __future__ import annotations

import io
import os
import re
import stat
import sys
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from labellint.errors import LabellintError
from labellint.fsutil import atomic_write, repo_root

CACHEDIR_TAG = ("Signature: 8a477f597d28d172789f06886806bc55\n"
                "# This file is a cache directory tag created by labellint.\n"
                "# For information about cache directory tags see https://bford.info/cachedir/\n")
EMBED_VERSION = 1
ENV = "LABELLINT_CACHE_DIR"
DIGEST = re.compile(r"[0-9a-f]{64}")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BINARY = getattr(os, "O_BINARY", 0)


def user_cache_dir() -> Path:
    """The platform's per-user cache folder for labellint (what platformdirs would give)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA")
        return Path(base, "labellint", "Cache") if base else Path.home() / "AppData" / "Local" / "labellint" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "labellint"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # the XDG spec: a relative value is invalid and must be ignored
    return Path(xdg, "labellint") if os.path.isabs(xdg) else Path.home() / ".cache" / "labellint"


def default_dir() -> Path:
    raw = os.environ.get(ENV, "").strip()
    return Path(raw).expanduser() if raw else user_cache_dir()


def _ignore(message: str) -> None:
    pass


def refusal(root: Path, trees) -> str | None:
    """Why ``root`` must not be used as the cache (None when it may)."""
    real = Path(os.path.abspath(root))
    for tree in trees:
        try:
            real.resolve().relative_to(Path(tree).resolve())
        except ValueError:
            continue
        return (f"it lies inside {tree}, which is being linted: a cache there could be committed "
                "with the data")
    try:
        st = os.lstat(real)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return "it is a symlink"
    if not stat.S_ISDIR(st.st_mode):
        return "it is not a folder"
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        return "it belongs to another user"
    return None


def open_cache(trees=(), note: Callable[[str], None] | None = None) -> Cache | None:
    """The run's cache, or None (after a note saying why) when it may not be used.

    ``trees``: the folders being linted (the image root, the annotation file's repository); a
    cache inside one of them is refused."""
    note = note or _ignore
    try:
        root = default_dir()
        why = refusal(root, trees)
    except (OSError, RuntimeError, KeyError, ValueError) as exc:  # no home folder, an unreadable path
        root, why = None, f"it cannot be located ({getattr(exc, 'strerror', None) or exc})"
    if why is not None:
        where = f"the cache folder {root}" if root is not None else "the cache folder"
        note(f"{where} is not used ({why}); this run is uncached. Set {ENV} to a folder of your own "
             "outside the linted data")
        return None
    return Cache(root, note=note)


class Cache:
    def __init__(self, root: Path, note: Callable[[str], None] | None = None):
        self.root = Path(root)
        self._note = note or _ignore
        self._ready = False
        self._writable = True
        self._said: set[str] = set()
        self._lock = threading.Lock()

    def note_once(self, kind: str, message: str) -> None:
        with self._lock:
            if kind in self._said:
                return
            self._said.add(kind)
        self._note(message)

    def _ensure(self) -> None:
        if self._ready:
            return
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        why = refusal(self.root, ())  # again after creating it: nobody swapped in a symlink meanwhile
        if why is not None:
            raise LabellintError(f"the cache folder is not used ({why})", str(self.root))
        tag = self.root / "CACHEDIR.TAG"
        if not tag.exists():
            atomic_write(tag, CACHEDIR_TAG)
        gitignore = self.root / ".gitignore"
        if not gitignore.exists():
            atomic_write(gitignore, "*\n")
        self._ready = True

    def _write(self, path: Path, data: bytes) -> None:
        if not self._writable:
            return
        try:
            self._ensure()
            path.parent.mkdir(parents=True, exist_ok=True)
            # entry names come from digests checked on read, so this holds; a symlinked subfolder
            # planted in the cache would fail it and is not written through
            path.parent.resolve().relative_to(self.root.resolve())
            atomic_write(path, data)
        except (OSError, LabellintError, ValueError) as exc:
            self._writable = False
            reason = exc.message if isinstance(exc, LabellintError) else (getattr(exc, "strerror", None) or exc)
            self.note_once("write", f"the cache at {self.root} cannot be written ({reason}); "
                                    "the rest of this run is not cached")

    def _read(self, path: Path) -> bytes | None:
        """An entry's bytes: None when there is none, a miss (and a note) when it cannot be read."""
        try:
            fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _BINARY)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            self._corrupt(path, exc.strerror or str(exc))
            return None
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                self._corrupt(path, "not a file")
                return None
            return fh.read()

    def _corrupt(self, path: Path, why: str) -> None:
        self.note_once("corrupt", f"cache entry {path} could not be used ({why}); it is recomputed "
                                  "(other such entries are not reported)")

    # -- file identities: (size, mtime) -> sha256, so that a warm run need not read every file ----
    def _stat_path(self) -> Path:
        return self.root / "stat-index.json"

    def load_stat_index(self) -> dict:
        """{resolved path: [size, mtime_ns, sha256]} from the last runs (empty when unreadable)."""
        import json

        raw = self._read(self._stat_path())
        if raw is None:
            return {}
        try:
            data = json.loads(raw.decode("utf-8"))
            if not isinstance(data, dict) or data.get("v") != 1:
                raise ValueError("another version")
        except (ValueError, UnicodeDecodeError) as exc:
            self._corrupt(self._stat_path(), str(exc)[:100])
            return {}
        return {k: v for k, v in data.items() if k != "v" and _stat_entry(v)}

    def save_stat_index(self, index: dict) -> None:
        import json

        index["v"] = 1
        self._write(self._stat_path(), json.dumps(index, separators=(",", ":")).encode())

    # -- image scan records -------------------------------------------------------------------
    def _scan_path(self, digest: str) -> Path:
        return self.root / "scan" / digest[:2] / f"{digest}.json"

    def get_scan(self, digest: str, decode: Callable[[str], object | None]):
        """The scan record of the image with this digest, read by ``decode`` (the image pass's
        reader: None for a record it does not accept, which then counts as corrupt), or None."""
        if not DIGEST.fullmatch(str(digest)):
            return None
        path = self._scan_path(digest)
        raw = self._read(path)
        if raw is None:
            return None
        try:
            record = decode(raw.decode("utf-8"))
        except UnicodeDecodeError:
            record = None
        if record is None:
            self._corrupt(path, "not a scan record of this version")
        return record

    def put_scan(self, digest: str, text: str) -> None:
        if DIGEST.fullmatch(str(digest)):
            self._write(self._scan_path(digest), text.encode())

    # -- per-image measurements (labellint.images.Measurement) --------------------------------
    def _measure_path(self, name: str, digest: str) -> Path | None:
        if not (DIGEST.fullmatch(str(digest)) and re.fullmatch(r"[0-9a-z][0-9a-z_-]{0,63}", name)):
            return None
        return self.root / "measure" / name / digest[:2] / f"{digest}.json"

    def get_measure(self, name: str, digest: str):
        """A measurement's JSON value stored for the image with this digest, or None."""
        import json

        path = self._measure_path(name, digest)
        raw = self._read(path) if path is not None else None
        if raw is None:
            return None
        try:
            return json.loads(raw.decode("utf-8"))["value"]
        except (ValueError, UnicodeDecodeError, TypeError, KeyError, RecursionError) as exc:
            self._corrupt(path, str(exc)[:100] or type(exc).__name__)
            return None

    def put_measure(self, name: str, digest: str, value) -> None:
        import json

        path = self._measure_path(name, digest)
        if path is not None:
            self._write(path, json.dumps({"value": value}).encode())

    # -- embeddings ---------------------------------------------------------------------------
    def embed_path(self, space: str, digest: str, variant: str) -> Path:
        """``space`` names the model and crop settings; ``variant`` the image orientation used."""
        if not (DIGEST.fullmatch(str(digest)) and re.fullmatch(r"[0-9a-z]{1,64}", space)
                and re.fullmatch(r"[0-9a-z]{1,16}", variant)):
            raise ValueError(f"not a cache key: {space!r} {digest!r} {variant!r}")
        return self.root / "embed" / f"v{EMBED_VERSION}" / space / digest[:2] / f"{digest}-{variant}.npy"

    def get_embeddings(self, path: Path, dim: int) -> dict[bytes, np.ndarray]:
        """{box key: vector} stored for one image; empty when absent or unreadable."""
        raw = self._read(path)
        if raw is None:
            return {}
        want = embed_dtype(dim)
        try:
            _check_npy_header(raw, want)
            arr = np.load(io.BytesIO(raw), allow_pickle=False)
            if not isinstance(arr, np.ndarray) or arr.dtype != want or arr.ndim != 1:
                raise ValueError("unexpected layout")
            if not (np.isfinite(arr["vec"]).all() and np.isfinite(arr["box"]).all()):
                raise ValueError("non-finite values")
        except (OSError, ValueError, EOFError, TypeError, IndexError, KeyError) as exc:
            self._corrupt(path, str(exc)[:100] or type(exc).__name__)
            return {}  # a miss, recomputed and overwritten by the caller
        return {box_key(b): v for b, v in zip(arr["box"], arr["vec"])}

    def put_embeddings(self, path: Path, entries: dict[bytes, np.ndarray], dim: int) -> None:
        arr = np.empty(len(entries), dtype=embed_dtype(dim))
        for i, (key, vec) in enumerate(sorted(entries.items())):
            arr["box"][i] = np.frombuffer(key, dtype="<f8")
            arr["vec"][i] = vec
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        self._write(path, buf.getvalue())


def _check_npy_header(raw: bytes, want: np.dtype) -> None:
    """Raise ValueError unless ``raw`` is a .npy of one dimension of ``want`` whose header matches
    the bytes really there: np.load allocates what a header claims before reading it."""
    from numpy.lib import format as npy

    fp = io.BytesIO(raw)
    version = npy.read_magic(fp)
    if version == (1, 0):
        shape, fortran, dtype = npy.read_array_header_1_0(fp)
    elif version == (2, 0):
        shape, fortran, dtype = npy.read_array_header_2_0(fp)
    else:
        raise ValueError(f"npy version {version}")
    if dtype != want or len(shape) != 1 or fp.tell() + shape[0] * want.itemsize != len(raw):
        raise ValueError("unexpected layout")


def embed_dtype(dim: int) -> np.dtype:
    return np.dtype([("box", "<f8", (4,)), ("vec", "<f4", (int(dim),))])


def _stat_entry(v) -> bool:
    return (isinstance(v, list) and len(v) == 3 and all(type(x) is int and x >= 0 for x in v[:2])
            and isinstance(v[2], str) and DIGEST.fullmatch(v[2]) is not None)


def box_key(box) -> bytes:
    return np.asarray(box, dtype="<f8").reshape(4).tobytes()
