"""The pre-commit hook, driven through the real `pre-commit` program.

A snapshot of this source tree (what `git ls-files --cached --others --exclude-standard` lists,
so a fresh clone and a working tree with uncommitted or untracked edits behave alike) is
committed into a temporary git repository, and that repository is the hook repo:

* `pre-commit run` / `git commit` in a temporary project whose .pre-commit-config.yaml points
  at the snapshot use a session-wide PRE_COMMIT_HOME, so the hook environment (a pip install
  of this package and its dependencies) is built once per test session;
* `pre-commit try-repo` always builds its environment in a throwaway store (it ignores
  PRE_COMMIT_HOME), so it is run once, on a mixed project.

Plain `try-repo <this checkout>` is not used: its shadow copy of a dirty checkout carries
changes to tracked files only, so an untracked .pre-commit-hooks.yaml or module would be missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from source_tree import REPO, copy_source_tree, git as _git

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the `git` program on PATH")

IMAGES = [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
          {"id": 2, "file_name": "b.jpg", "width": 64, "height": 48}]
CATEGORIES = [{"id": 1, "name": "cat"}]

CLEAN = {"images": IMAGES, "categories": CATEGORIES, "annotations": [
    {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 10], "area": 100, "iscrowd": 0},
    {"id": 2, "image_id": 2, "category_id": 1, "bbox": [30, 10, 30, 20], "area": 600, "iscrowd": 0},
]}
# LL105: the box reaches 16 px past the right edge of its 64 px wide image
BOX_OUTSIDE = {"images": IMAGES, "categories": CATEGORIES, "annotations": [
    {"id": 1, "image_id": 1, "category_id": 1, "bbox": [50, 10, 30, 20], "area": 600, "iscrowd": 0},
]}
# LL011: the annotation names an image id that no image has
UNKNOWN_IMAGE = {"images": IMAGES, "categories": CATEGORIES, "annotations": [
    {"id": 1, "image_id": 7, "category_id": 1, "bbox": [1, 2, 10, 10], "area": 100, "iscrowd": 0},
]}
PACKAGE_JSON = {"name": "web-viewer", "version": "1.0.0", "private": True, "scripts": {"build": "vite build"}}


# --------------------------------------------------------------------------- helpers


def _pre_commit(*args: str, cwd: Path, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the pre-commit of this interpreter; stdout and stderr together in .stdout."""
    return subprocess.run([sys.executable, "-m", "pre_commit", *args], cwd=cwd, env=env, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          encoding="utf-8", errors="replace")


def _shown(proc) -> str:
    return f"exit code {proc.returncode}; output:\n{proc.stdout}"


def _write_json(path: Path, doc) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def env(tmp_path_factory) -> dict:
    """Environment for git and pre-commit: no user/system git config, no variables of an
    enclosing git hook or pre-commit run, and a session-wide PRE_COMMIT_HOME."""
    if importlib.util.find_spec("pre_commit") is None:
        pytest.fail("pre-commit is not installed in this environment; it is a dev dependency: "
                    "pip install -e '.[dev]'")
    base = tmp_path_factory.mktemp("precommit-env")
    (base / "gitconfig").write_text("", encoding="utf-8")
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("GIT_", "PRE_COMMIT")) and k not in ("SKIP", "VIRTUAL_ENV")}
    e.update(
        PRE_COMMIT_HOME=str(base / "pre-commit-home"),
        PRE_COMMIT_COLOR="never",
        GIT_CONFIG_GLOBAL=str(base / "gitconfig"),
        GIT_CONFIG_NOSYSTEM="1",
        LABELLINT_NO_PROGRESS="1",
        NO_COLOR="1",
    )
    return e


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory, env) -> tuple[Path, str]:
    """(path, commit) of a git repository holding a snapshot of this source tree."""
    assert (REPO / ".pre-commit-hooks.yaml").is_file(), f"no .pre-commit-hooks.yaml in {REPO}"
    dest = copy_source_tree(tmp_path_factory.mktemp("labellint-hook-repo"), env)
    _git("init", "-q", cwd=dest, env=env)
    _git("config", "user.name", "labellint tests", cwd=dest, env=env)
    _git("config", "user.email", "tests@labellint.invalid", cwd=dest, env=env)
    _git("config", "commit.gpgsign", "false", cwd=dest, env=env)
    _git("add", "-A", cwd=dest, env=env)
    _git("commit", "-q", "--no-verify", "-m", "snapshot of the labellint source tree", cwd=dest, env=env)
    return dest, _git("rev-parse", "HEAD", cwd=dest, env=env).strip()


def _new_project(path: Path, env: dict, hook_repo: tuple[Path, str] | None, hook: str = "labellint") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    _git("init", "-q", cwd=path, env=env)
    _git("config", "user.name", "Dataset Maintainer", cwd=path, env=env)
    _git("config", "user.email", "maintainer@example.invalid", cwd=path, env=env)
    _git("config", "commit.gpgsign", "false", cwd=path, env=env)
    if hook_repo is not None:
        repo, rev = hook_repo
        (path / ".pre-commit-config.yaml").write_text(
            f"repos:\n- repo: {json.dumps(repo.as_posix())}\n  rev: {rev}\n  hooks:\n  - id: {hook}\n",
            encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def hook_installed(tmp_path_factory, env, hook_repo) -> float:
    """Build the hook environment once for the session; returns the seconds it took."""
    project = _new_project(tmp_path_factory.mktemp("install-hooks"), env, hook_repo)
    start = time.monotonic()
    proc = _pre_commit("install-hooks", cwd=project, env=env)
    assert proc.returncode == 0, "pre-commit could not build the labellint hook environment\n" + _shown(proc)
    return time.monotonic() - start


@pytest.fixture
def project(tmp_path, env, hook_repo, hook_installed) -> Path:
    """A dataset repository whose .pre-commit-config.yaml uses the labellint hook."""
    return _new_project(tmp_path / "dataset", env, hook_repo)


# --------------------------------------------------------------------------- tests


def test_manifest_is_valid(env):
    proc = _pre_commit("validate-manifest", str(REPO / ".pre-commit-hooks.yaml"), cwd=REPO, env=env, timeout=120)
    assert proc.returncode == 0, _shown(proc)


def test_commit_with_broken_coco_is_rejected(project, env):
    proc = _pre_commit("install", cwd=project, env=env, timeout=120)
    assert proc.returncode == 0, _shown(proc)
    _write_json(project / "labels" / "instances_train.json", BOX_OUTSIDE)
    _write_json(project / "labels" / "instances_val.json", UNKNOWN_IMAGE)
    _git("add", "-A", cwd=project, env=env)

    commit = subprocess.run(["git", "commit", "-m", "add labels"], cwd=project, env=env, timeout=600,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            encoding="utf-8", errors="replace")
    out = commit.stdout
    assert commit.returncode != 0, "the commit went through despite broken labels\n" + _shown(commit)
    assert "labellint" in out and "Failed" in out, out
    assert "LL105" in out and "instances_train.json" in out, out
    assert "LL011" in out and "instances_val.json" in out, out
    # nothing was committed
    head = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=project, env=env,
                          capture_output=True, text=True)
    assert head.returncode != 0, "a commit was created"


def test_commit_with_clean_coco_passes(project, env):
    proc = _pre_commit("install", cwd=project, env=env, timeout=120)
    assert proc.returncode == 0, _shown(proc)
    _write_json(project / "labels" / "instances_train.json", CLEAN)
    _git("add", "-A", cwd=project, env=env)

    commit = subprocess.run(["git", "commit", "-m", "add labels"], cwd=project, env=env, timeout=600,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            encoding="utf-8", errors="replace")
    assert commit.returncode == 0, _shown(commit)
    assert "labellint" in commit.stdout and "Passed" in commit.stdout, commit.stdout
    assert _git("log", "--format=%s", cwd=project, env=env).strip() == "add labels"


def test_run_fails_on_broken_file_only(project, env):
    bad = _write_json(project / "bad_boxes.json", BOX_OUTSIDE)
    good = _write_json(project / "good.json", CLEAN)
    _git("add", "-A", cwd=project, env=env)

    proc = _pre_commit("run", "--files", good.name, cwd=project, env=env)
    assert proc.returncode == 0, _shown(proc)

    proc = _pre_commit("run", "--files", good.name, bad.name, cwd=project, env=env)
    assert proc.returncode == 1, _shown(proc)
    assert "LL105" in proc.stdout and "bad_boxes.json" in proc.stdout, proc.stdout
    assert "good.json:" not in proc.stdout, proc.stdout


def test_package_json_is_skipped(project, env):
    _write_json(project / "package.json", PACKAGE_JSON)
    _write_json(project / "tsconfig.json", {"compilerOptions": {"strict": True}})
    _git("add", "-A", cwd=project, env=env)

    proc = _pre_commit("run", "--all-files", "--verbose", cwd=project, env=env)
    assert proc.returncode == 0, _shown(proc)
    assert "Passed" in proc.stdout, proc.stdout
    assert "skipped: package.json" in proc.stdout, proc.stdout
    assert "0 files linted" in proc.stdout, proc.stdout


def test_try_repo(tmp_path, env, hook_repo):
    """`pre-commit try-repo` as the hook's author would run it (it builds its own environment)."""
    repo, rev = hook_repo
    project = _new_project(tmp_path / "dataset", env, None)
    _write_json(project / "annotations" / "bad_boxes.json", BOX_OUTSIDE)
    _write_json(project / "annotations" / "good.json", CLEAN)
    _write_json(project / "package.json", PACKAGE_JSON)
    _git("add", "-A", cwd=project, env=env)

    proc = _pre_commit("try-repo", str(repo), "labellint", "--ref", rev, "--all-files", "--verbose",
                       cwd=project, env=env)
    out = proc.stdout
    assert proc.returncode == 1, _shown(proc)
    assert "LL105" in out and "bad_boxes.json" in out, out
    assert "good.json:" not in out, out
    assert "skipped: package.json" in out, out


def test_fix_hook_repairs_the_file_and_fails_the_commit(tmp_path, env, hook_repo, hook_installed):
    """The labellint-fix hook clips the box; pre-commit fails because a file changed, and the
    second run (after staging the fix) passes."""
    project = _new_project(tmp_path / "dataset", env, hook_repo, hook="labellint-fix")
    slightly_outside = {"images": IMAGES, "categories": CATEGORIES, "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [50, 10, 20, 20], "area": 400, "iscrowd": 0}]}
    bad = _write_json(project / "bad_boxes.json", slightly_outside)
    _git("add", "-A", cwd=project, env=env)
    before = bad.read_bytes()
    proc = _pre_commit("run", "--files", bad.name, cwd=project, env=env)
    assert proc.returncode == 1, _shown(proc)
    assert "files were modified by this hook" in proc.stdout, proc.stdout
    assert "fixed 1 problem" in proc.stdout, proc.stdout
    after = bad.read_bytes()
    assert after != before and json.loads(after)["annotations"][0]["bbox"] != json.loads(before)["annotations"][0]["bbox"]
    _git("add", "-A", cwd=project, env=env)
    proc = _pre_commit("run", "--files", bad.name, cwd=project, env=env)
    assert proc.returncode == 0, _shown(proc)
