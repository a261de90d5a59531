"""Disk size of the environment pre-commit builds for the labellint hook.

    python benchmarks/hook_env_size.py [--source worktree|head] [--top N] [--keep] [--json]

Does what a user's first `pre-commit run` does, in a temporary directory: commits this source
tree into a scratch git repository (the working tree as `git ls-files --cached --others
--exclude-standard` lists it, or `--source head` for the last commit only), points a scratch
project's .pre-commit-config.yaml at it, runs `pre-commit install-hooks` with a fresh
PRE_COMMIT_HOME, and measures the hook environment (PRE_COMMIT_HOME/repo*/py_env-*) the way
`du -s` does (allocated blocks, hard links counted once). Needs git, pre-commit (a dev
dependency) and access to the package index pip is configured with.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024


def _run(cmd, cwd, env, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, encoding="utf-8", errors="replace")
    if check and proc.returncode != 0:
        sys.exit(f"hook_env_size: {' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout}")
    return proc


def _clean_env(scratch: Path) -> dict:
    (scratch / "gitconfig").write_text("", encoding="utf-8")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GIT_", "PRE_COMMIT")) and k not in ("SKIP", "VIRTUAL_ENV")}
    env.update(PRE_COMMIT_HOME=str(scratch / "pre-commit-home"), PRE_COMMIT_COLOR="never",
               GIT_CONFIG_GLOBAL=str(scratch / "gitconfig"), GIT_CONFIG_NOSYSTEM="1")
    return env


def _git_identity(repo: Path, env: dict) -> None:
    for key, value in (("user.name", "hook_env_size"), ("user.email", "bench@labellint.invalid"),
                       ("commit.gpgsign", "false")):
        _run(["git", "config", key, value], repo, env)


def _hook_repo(source: str, dest: Path, env: dict) -> str:
    """Fill dest with a git repository of this source tree; return its commit."""
    if source == "head":
        _run(["git", "clone", "-q", str(REPO), str(dest)], dest.parent, env)
    else:
        listed = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], REPO, env,
                      check=False)
        if listed.returncode == 0:
            files = listed.stdout.split("\0")
        else:  # not a git checkout (an unpacked sdist): everything but build outputs and caches
            skip = shutil.ignore_patterns(".git", ".venv", "venv", "__pycache__", "*.egg-info", "build",
                                          "dist", ".pytest_cache", ".labellint_cache", "*.pyc")
            files = []
            for dirpath, dirnames, filenames in os.walk(REPO):
                dropped = skip(dirpath, dirnames + filenames)
                dirnames[:] = [d for d in dirnames if d not in dropped]
                files += [os.path.relpath(os.path.join(dirpath, f), REPO) for f in filenames if f not in dropped]
        dest.mkdir()
        for rel in filter(None, files):
            if (REPO / rel).is_file():
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / rel, dest / rel)
        _run(["git", "init", "-q"], dest, env)
        _git_identity(dest, env)
        _run(["git", "add", "-A"], dest, env)
        _run(["git", "commit", "-q", "--no-verify", "-m", "snapshot"], dest, env)
    return _run(["git", "rev-parse", "HEAD"], dest, env).stdout.strip()


def disk_usage(path: Path) -> tuple[int, int]:
    """(allocated bytes as du -s counts them, apparent bytes) of a directory tree."""
    seen: set[tuple[int, int]] = set()
    allocated = apparent = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            allocated += getattr(st, "st_blocks", 0) * 512 or st.st_size
            apparent += st.st_size
    st = os.lstat(path)
    return allocated + getattr(st, "st_blocks", 0) * 512, apparent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", choices=("worktree", "head"), default="worktree",
                    help="hook repo content: the working tree (default) or the last commit")
    ap.add_argument("--top", type=int, default=10, help="largest site-packages entries to list (0: none)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory and print its path")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = ap.parse_args(argv)
    if shutil.which("git") is None:
        sys.exit("hook_env_size: needs git on PATH")

    scratch = Path(tempfile.mkdtemp(prefix="labellint-hook-env-"))
    try:
        env = _clean_env(scratch)
        rev = _hook_repo(args.source, scratch / "hook-repo", env)
        project = scratch / "project"
        project.mkdir()
        _run(["git", "init", "-q"], project, env)
        (project / ".pre-commit-config.yaml").write_text(
            f"repos:\n- repo: {json.dumps((scratch / 'hook-repo').as_posix())}\n  rev: {rev}\n"
            "  hooks:\n  - id: labellint\n", encoding="utf-8")
        start = time.monotonic()
        _run([sys.executable, "-m", "pre_commit", "install-hooks"], project, env)
        seconds = time.monotonic() - start

        home = Path(env["PRE_COMMIT_HOME"])
        envs = sorted(home.glob("repo*/py_env-*"))
        if not envs:
            sys.exit(f"hook_env_size: no py_env-* directory under {home}")
        rows = []
        for env_dir in envs:
            allocated, apparent = disk_usage(env_dir)
            du = shutil.which("du") and _run(["du", "-sh", str(env_dir)], scratch, env, check=False).stdout.split()
            site = next(env_dir.glob("lib/python*/site-packages"), None) or next(env_dir.glob("Lib/site-packages"), None)
            biggest = []
            if site is not None and args.top:
                sizes = [(disk_usage(p)[0] if p.is_dir() else os.lstat(p).st_blocks * 512, p.name)
                         for p in site.iterdir()]
                biggest = [{"name": n, "mib": round(b / MIB, 1)} for b, n in sorted(sizes, reverse=True)[:args.top]]
            rows.append({"env": env_dir.name, "path": str(env_dir), "mib": round(allocated / MIB, 1),
                         "apparent_mib": round(apparent / MIB, 1), "du_sh": du[0] if du else None,
                         "largest": biggest})
        total_home = disk_usage(home)[0]
        if args.json:
            print(json.dumps({"source": args.source, "rev": rev, "install_seconds": round(seconds, 1),
                              "envs": rows, "pre_commit_home_mib": round(total_home / MIB, 1)}, indent=2))
        else:
            print(f"hook repo: {args.source} snapshot of {REPO} at {rev[:12]}; "
                  f"install-hooks took {seconds:.1f}s")
            for row in rows:
                print(f"hook env {row['env']}: {row['mib']:.1f} MiB on disk "
                      f"({row['apparent_mib']:.1f} MiB apparent; du -sh: {row['du_sh']})")
                for item in row["largest"]:
                    print(f"  {item['mib']:7.1f} MiB  {item['name']}")
            print(f"PRE_COMMIT_HOME in all (env + repo clone + db): {total_home / MIB:.1f} MiB")
            if args.keep:
                print(f"kept: {scratch}")
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
