"""Filesystem helpers: atomic writes and repository-relative paths."""

from __future__ import annotations

import mmap
import os
import stat
import tempfile
from functools import lru_cache
from pathlib import Path

from labellint.errors import LabellintError


def atomic_write(path: str | Path, data: bytes | str) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it: never half a file.

    A file that is replaced keeps its permission bits (a temporary file is created 0600); the
    folder is fsynced after the rename so the new name survives a power cut."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    folder = path.parent if str(path.parent) else Path(".")
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:  # a read-only or missing folder: one line, nothing half-written
        raise LabellintError(f"cannot write here: {exc.strerror or exc}", str(path)) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        _fsync_dir(folder)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):  # disk full, permissions: the original is intact
            raise LabellintError(f"cannot write: {exc.strerror or exc} (the file is unchanged)", str(path)) from None
        raise


def read_or_map(path: Path, map_from: int):
    """The file's bytes, or a copy-on-write memory map of it when it has at least ``map_from``
    bytes: no copy, each process reads in only the pages it touches, and in-place splices (see
    labellint.buffers) never reach the file. OSError subclasses pass through to the caller, who
    words them."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size >= map_from:
            try:
                return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
            except (OSError, ValueError):
                pass  # not mappable (a pipe, a special file): read it
        return f.read()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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


def cwd_relative(path: str | Path) -> str:
    """How a path is shown to people (text report, one-line errors): relative to the current
    directory when it lies under it, else absolute, as ruff prints paths; editors and terminals
    open ``file:line:col`` from there. Machine formats keep repository-relative paths
    (:func:`display_path`)."""
    absolute = os.path.normpath(os.path.abspath(path))
    try:
        cwd = os.getcwd()
    except OSError:  # the current directory was deleted
        return absolute
    for candidate, base in ((absolute, cwd), (os.path.realpath(absolute), os.path.realpath(cwd))):
        if candidate == base:
            return "."
        if candidate.startswith(base.rstrip(os.sep) + os.sep):
            return candidate[len(base.rstrip(os.sep)) + 1:]
    return absolute


def line_for_people(exc: LabellintError, shown: dict[str, str] | None = None) -> str:
    """``exc.one_line()`` with its path as people read it: a repository-relative path found in
    ``shown`` (relpath -> shown path) is replaced, an absolute one made relative to the current
    directory (see :func:`cwd_relative`); one already relative was typed by the user and stays."""
    path = exc.path
    if path and shown and path in shown:
        path = shown[path]
    elif path and os.path.isabs(path):
        path = cwd_relative(path)
    return LabellintError(exc.message, path, exc.line, exc.column).one_line()
