"""Where an image entry's ``file_name`` leads: always under the image root, never out of it."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from labellint.fsutil import repo_root


def resolve(root: Path, file_name, extra_bases=()) -> tuple[Path | None, str | None]:
    """(path, None) for a safe existing-or-not path under ``root``, or (None, why it is refused).

    ``extra_bases`` are folders inside the root that are searched after it (the annotation file's
    own folder, for the Roboflow layout where each split's images sit beside its JSON).
    """
    parts, why = relative_parts(file_name)
    if parts is None:
        return None, why
    real_root = root.resolve()
    first = None
    for base in (root, *extra_bases):
        candidate = Path(base, *parts)
        try:
            real = candidate.resolve()
        except (OSError, RuntimeError, ValueError) as exc:  # symlink loops
            return None, f"file_name '{file_name}' cannot be resolved: {getattr(exc, 'strerror', None) or exc}"
        try:
            real.relative_to(real_root)
        except ValueError:
            return None, (f"file_name '{file_name}' resolves outside the image root "
                          "(a symlink points out of it)")
        if first is None:
            first = real
        if _exists(real):
            return real, None
    return first, None


def relative_parts(file_name) -> tuple[tuple[str, ...] | None, str | None]:
    """The parts of ``file_name`` as a path relative to the image root (backslashes taken as
    separators), or (None, why it is refused): not a string, empty, a NUL, a lone surrogate, an
    absolute path or a drive, a ``..`` part. Reading nothing, so a name can be judged anywhere."""
    if not isinstance(file_name, str) or not file_name.strip():
        return None, f"file_name {file_name!r} is not a path"
    if "\0" in file_name:
        return None, "file_name contains a NUL character"
    try:
        os.fsencode(file_name)
    except UnicodeError:  # a lone surrogate: no operating system call can even be made with it
        return None, f"file_name {file_name!r} holds characters that no file name can hold"
    name = file_name.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None, f"file_name '{file_name}' is an absolute path; it must be relative to the image root"
    parts = PurePosixPath(name).parts
    if ".." in parts:
        return None, f"file_name '{file_name}' climbs out of its folder with '..'"
    return parts, None


def _exists(path: Path) -> bool:
    # a name too long for the filesystem, a folder on the way that cannot be searched: reading
    # the file then says why, as that image's finding
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _linted_trees(root: Path, source: Path | None) -> list[Path]:
    """The folders whose contents came with the data: the image root and the git work tree that
    holds the annotation file (a pull request's checkout)."""
    trees = [root]
    if source is not None:
        repo = repo_root(Path(os.path.abspath(source)).parent)
        if repo is not None:
            trees.append(repo)
    return trees
