"""Shared fixtures. Tests that need ../shared skip with a reason when it is absent."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LABELLINT_SHARED", REPO.parent / "shared"))


@pytest.fixture(autouse=True)
def _no_progress(monkeypatch):
    monkeypatch.setenv("LABELLINT_NO_PROGRESS", "1")


@pytest.fixture(autouse=True)
def _hermetic_cache(monkeypatch, tmp_path_factory):
    """The image and embedding cache goes to this session's temp folder, never the user's."""
    monkeypatch.setenv("LABELLINT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "labellint-cache"))


@pytest.fixture
def shared() -> Path:
    if not (SHARED / "data").is_dir():
        pytest.skip(f"needs the read-only shared data folder, not found at {SHARED} (set LABELLINT_SHARED)")
    return SHARED


def coco(images=None, annotations=None, categories=None, **extra) -> dict:
    """A small valid COCO document; pass lists to override sections."""
    doc = {
        "images": images if images is not None else [
            {"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
            {"id": 2, "file_name": "b.jpg", "width": 64, "height": 48},
        ],
        "annotations": annotations if annotations is not None else [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 10], "area": 100, "iscrowd": 0},
            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [5, 5, 20, 10], "area": 200, "iscrowd": 0},
        ],
        "categories": categories if categories is not None else [
            {"id": 1, "name": "cat", "supercategory": "animal"},
            {"id": 2, "name": "dog", "supercategory": "animal"},
        ],
    }
    doc.update(extra)
    return doc


@pytest.fixture
def write_coco(tmp_path):
    """write_coco(doc, name="ann.json", indent=None) -> Path"""

    def _write(doc, name="ann.json", indent=None):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = doc if isinstance(doc, str) else json.dumps(doc, indent=indent)
        path.write_text(text, encoding="utf-8")
        return path

    return _write


def kill_before_rename(folder: Path, name: str) -> dict:
    """Environment that makes a labellint subprocess SIGKILL itself just before it renames its
    temporary file onto `name` (a sitecustomize hook under `folder`): the real process, killed."""
    hook = folder / "kill-hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import os, signal\n"
        "_replace = os.replace\n"
        "def replace(src, dst, *a, **k):\n"
        f"    if str(dst).endswith({name!r}):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return _replace(src, dst, *a, **k)\n"
        "os.replace = replace\n")
    return {"PYTHONPATH": f"{hook}{os.pathsep}{REPO}"}
