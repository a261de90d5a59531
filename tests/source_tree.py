"""This source tree as a user gets it: the files of a clone (tracked, and untracked-but-not-ignored
ones, so a working tree with uncommitted edits behaves like its commit), copied elsewhere. The
pre-commit hook repo and the GitHub Action's checkout are such copies."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# build outputs and caches that are never part of a checkout, for a tree that is not a git checkout
NOT_SOURCE = (".git", ".venv", "venv", "__pycache__", "*.egg-info", "build", "dist", ".pytest_cache",
              ".labellint_cache", "*.pyc")


def git(*args: str, cwd: Path, env: dict) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def source_files(root: Path, env: dict) -> list[str]:
    """Files of the source tree: tracked and untracked-but-not-ignored ones in a git checkout."""
    inside = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, env=env,
                            capture_output=True, text=True)
    if inside.returncode == 0 and Path(inside.stdout.strip()).resolve() == root:
        out = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=root, env=env)
        return sorted({p for p in out.split("\0") if p and (root / p).is_file()})
    ignore = shutil.ignore_patterns(*NOT_SOURCE)
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        skip = ignore(dirpath, dirnames + filenames)
        dirnames[:] = [d for d in dirnames if d not in skip]
        files += [os.path.relpath(os.path.join(dirpath, f), root) for f in filenames if f not in skip]
    return sorted(files)


def copy_source_tree(dest: Path, env: dict) -> Path:
    """Copy this source tree's files to ``dest`` (created); returns ``dest``."""
    for rel in source_files(REPO, env):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, target)
    return dest
