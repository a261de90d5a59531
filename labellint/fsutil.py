"""Filesystem helpers: atomic writes and repository-relative paths."""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path


def atomic_write(path: str | Path, data: bytes | str) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it: never half a file."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


@lru_cache(maxsize=1024)
def repo_root(directory: Path) -> Path | None:
    """The enclosing git work tree (the folder holding ``.git``), if any."""
    for folder in (directory, *directory.parents):
        if (folder / ".git").exists():
            return folder
    return None


def display_path(path: Path) -> tuple[str, Path | None]:
    """(path relative to the repository root with forward slashes, the root)."""
    absolute = path.resolve()
    root = repo_root(absolute.parent)
    base = root if root is not None else Path.cwd().resolve()
    try:
        return absolute.relative_to(base).as_posix(), root
    except ValueError:
        return absolute.as_posix(), root
