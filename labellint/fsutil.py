"""Filesystem helpers: atomic writes and repository-relative paths."""

from __future__ import annotations

import mmap
import os
import stat
from functools import lru_cache
from pathlib import Path

from labellint import limits
from labellint.errors import InputError, LabellintError


def atomic_write(path: str | Path, data: bytes | str) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it: never half a file.

    A symbolic link is written through: its target gets the new bytes and the link stays a link
    (a dataset kept elsewhere and linked in is fixed where it lives). A file that is replaced keeps
    its permission bits; one without write permission is refused, as is anything but a regular
    file (a device, a pipe), and nothing is written. The folder is fsynced after the rename so the
    new name survives a power cut. The temporary file is named ``.NAME.labellint-tmp-PID-XXXX``:
    one left by a process that was killed is removed by the next write beside it."""
    shown = str(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    target = _write_target(Path(path), shown)
    folder = target.parent
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    _remove_stale_temps(folder, target.name)
    tmp = folder / f".{target.name[:_TMP_STEM]}{_TMP_TAG}{os.getpid()}-{os.urandom(4).hex()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
                     | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError as exc:  # a read-only or missing folder: one line, nothing half-written
        raise LabellintError(f"cannot write here: {exc.strerror or exc}", shown) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        _fsync_dir(folder)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):  # disk full, permissions: the original is intact
            raise LabellintError(f"cannot write: {exc.strerror or exc} (the file is unchanged)", shown) from None
        raise


_TMP_TAG = ".labellint-tmp-"
_TMP_STEM = 100  # characters of the file's name kept in its temporary file's name (NAME_MAX is 255)


def _write_target(path: Path, shown: str) -> Path:
    """The file a write to ``path`` replaces: the end of its chain of symbolic links. Refused
    (LabellintError) when that is not a regular file or has no write permission: the mode bits
    are read as well as access(), which root passes for any file."""
    target = path
    if path.is_symlink():
        try:
            target = Path(os.path.realpath(path, strict=False))
        except (OSError, RuntimeError, ValueError) as exc:
            raise LabellintError(f"cannot write: the symbolic link cannot be followed ({exc})", shown) from None
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise LabellintError(f"cannot write: {exc.strerror or exc} (the file is unchanged)", shown) from None
    if not stat.S_ISREG(st.st_mode):
        raise LabellintError("cannot write: not a regular file; nothing was written", shown)
    if not st.st_mode & 0o222 or not os.access(target, os.W_OK):
        raise LabellintError(f"cannot write: the file is read-only (mode {stat.S_IMODE(st.st_mode):o}); "
                             "nothing was written", shown)
    return target


def _remove_stale_temps(folder: Path, name: str) -> None:
    """Remove the temporary files of writes to ``name`` whose process is gone (killed before its
    rename). A live writer's file is left alone."""
    prefix = f".{name[:_TMP_STEM]}{_TMP_TAG}"
    try:
        entries = [e.name for e in os.scandir(folder) if e.name.startswith(prefix)]
    except OSError:
        return
    for entry in entries:
        pid, _, tag = entry[len(prefix):].partition("-")
        if not (pid.isdigit() and tag and all(c in "0123456789abcdef" for c in tag)) or _alive(int(pid)):
            continue
        try:
            os.unlink(folder / entry)
        except OSError:
            pass


def _alive(pid: int) -> bool:
    if pid <= 0 or pid == os.getpid():
        return pid > 0
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def read_or_map(path: Path, map_from: int, shown: str | None = None):
    """The file's bytes, or a copy-on-write memory map of it when it has at least ``map_from``
    bytes: no copy, each process reads in only the pages it touches, and in-place splices (see
    labellint.buffers) never reach the file.

    Only a regular file of at most ``limits.get("max_input_bytes")`` bytes is read (see
    :func:`open_regular`); anything else is an InputError naming ``shown`` (default: the path).
    Other OSError subclasses pass through to the caller, who words them."""
    shown = shown if shown is not None else str(path)
    limit = limits.get("max_input_bytes")
    with os.fdopen(open_regular(path, shown), "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size >= map_from:
            try:
                mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
            except (OSError, ValueError):
                pass  # not mappable here: read it
            else:
                if len(mapped) > limit:  # grew since it was checked
                    mapped.close()
                    raise _too_large(shown, limit)
                return mapped
        parts = [f.read(size)]
        total = len(parts[0])
        while True:  # more than fstat said (a file still being written, /proc): in bounded steps
            part = f.read(1 << 20)
            if not part:
                return parts[0] if len(parts) == 1 else b"".join(parts)
            total += len(part)
            if total > limit:
                raise _too_large(shown, limit)
            parts.append(part)


def read_regular(path: str | Path, shown: str | None = None) -> bytes:
    """The bytes of a small input (a config, a ground truth): :func:`read_or_map`, never mapped."""
    return read_or_map(Path(path), 1 << 62, shown)


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def file_kind(mode: int) -> str:
    """What a file that is not a regular one is, in words ("a FIFO (named pipe)", ...)."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular(path: str | Path, shown: str | None = None) -> int:
    """A read-only descriptor of ``path``, a regular file (a symbolic link to one is followed).

    Anything else is refused with an InputError: a FIFO would block forever, /dev/zero never
    ends, a directory is no file. The file is opened without blocking (opening a FIFO otherwise
    waits for a writer) and checked on the open descriptor, so that what is checked is what is
    read. A file larger than ``limits.get("max_input_bytes")`` is refused too."""
    shown = shown if shown is not None else str(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = file_kind(st.st_mode)
            if kind == "a directory":
                raise InputError("is a directory, not a file", shown)
            raise InputError(f"is {kind}, not a regular file: only regular files are read", shown)
        limit = limits.get("max_input_bytes")
        if st.st_size > limit:
            raise _too_large(shown, limit)
        if flags & getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _too_large(shown: str, limit: int) -> InputError:
    env = limits.LIMITS["max_input_bytes"].env
    return InputError(f"larger than {limit:,} bytes, the most read from one file (set {env} to change it)", shown)


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
