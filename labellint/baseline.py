"""Baseline files (accepted findings, committed) and the git-base comparison of PR mode."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from labellint import jsonscan
from labellint.errors import ConfigError, InputError
from labellint.findings import Finding
from labellint.fsutil import atomic_write, read_regular

VERSION = 1


def write(path: Path, findings: list[Finding]) -> int:
    entries = sorted(
        ({"fingerprint": f.fingerprint, "code": f.code, "path": f.path, "pointer": f.pointer,
          "message": f.message} for f in findings if not f.rule_failed),
        key=lambda e: (e["path"], e["code"], e["pointer"], e["fingerprint"]),
    )
    doc = {"version": VERSION, "tool": "labellint", "findings": entries}
    atomic_write(path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return len(entries)


def add_entries(path: Path, new: list[dict]) -> int:
    """Merge entries into a baseline file (created if missing); the number actually added."""
    entries = read(path) if path.exists() else []
    known = {e["fingerprint"] for e in entries}
    added = [e for e in new if e["fingerprint"] not in known]
    entries = sorted(entries + added, key=lambda e: (e.get("path", ""), e.get("code", ""), e.get("pointer", ""),
                                                     e["fingerprint"]))
    doc = {"version": VERSION, "tool": "labellint", "findings": entries}
    atomic_write(path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return len(added)


def read(path: Path) -> list[dict]:
    try:
        raw = read_regular(path)  # a regular file of bounded size only
        jsonscan.check(raw, str(path))  # nesting within the limit, no integer too long for Python
        doc = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError("baseline file not found (create it with `labellint baseline create`)", str(path)) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"baseline is not valid JSON: {exc.msg}", str(path), exc.lineno, exc.colno) from None
    if not isinstance(doc, dict) or doc.get("version") != VERSION or not isinstance(doc.get("findings"), list):
        raise InputError(f"not a labellint baseline (version {VERSION} with a 'findings' list)", str(path))
    entries = [e for e in doc["findings"] if isinstance(e, dict) and isinstance(e.get("fingerprint"), str)]
    return entries


def apply(findings: list[Finding], entries: list[dict], linted_paths: set[str]) -> tuple[list[Finding], list[dict]]:
    """Findings not in the baseline, and baseline entries of linted files that no longer occur."""
    known = {e["fingerprint"] for e in entries}
    current = {f.fingerprint for f in findings}
    kept = [f for f in findings if f.fingerprint not in known or f.rule_failed]
    stale = [e for e in entries if e.get("path") in linted_paths and e["fingerprint"] not in current]
    return kept, stale


def git_show(root: Path, ref: str, relpath: str) -> bytes | None:
    """The file's content at ``ref``, or None when it did not exist there."""
    try:
        subprocess.run(["git", "-C", str(root), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                       check=True, capture_output=True)
    except FileNotFoundError:
        raise ConfigError("--diff-base needs git, which is not installed") from None
    except subprocess.CalledProcessError:
        raise ConfigError(f"--diff-base: unknown git ref '{ref}' in {root}") from None
    proc = subprocess.run(["git", "-C", str(root), "show", f"{ref}:{relpath}"], capture_output=True)
    if proc.returncode != 0:
        return None
    return proc.stdout
