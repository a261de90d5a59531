"""The package's shape: every subpackage ships in a wheel, and no module-level import cycle."""

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_for_non_editable_installs():
    """pre-commit and `pip install .` build a wheel from pyproject's package list; a subpackage
    missing there works in the editable dev venv and fails on every user's machine."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "labellint").rglob("__init__.py")}
    on_disk.add("labellint.rules")  # mapped from rules/ by package-dir
    assert on_disk == listed, f"missing: {sorted(on_disk - listed)}, stale: {sorted(listed - on_disk)}"


def _modules():
    mods = {}
    for p in (ROOT / "labellint").rglob("*.py"):
        name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = p
    return mods


def _top_level_imports(name, path, mods):
    """labellint modules imported when `name` is imported (top-level statements, not in
    functions or TYPE_CHECKING blocks), with the packages whose __init__ such an import runs."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for n in ast.walk(node) if isinstance(node, (ast.Try, ast.If)) else [node]:
            targets = []
            if isinstance(n, ast.ImportFrom):
                base = n.module or ""
                if n.level:
                    parts = package.split(".")[: len(package.split(".")) - n.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in n.names]
            elif isinstance(n, ast.Import):
                targets = [a.name for a in n.names]
            for t in targets:
                parts = t.split(".")
                out.update(".".join(parts[:i]) for i in range(2, len(parts) + 1))
    return {m for m in out if m in mods and m != name and not name.startswith(m + ".")}


def test_no_import_cycles_between_modules():
    mods = _modules()
    graph = {n: _top_level_imports(n, p, mods) for n, p in mods.items()}
    seen, cycles = {}, []

    def visit(node, trail):
        seen[node] = "open"
        for nxt in sorted(graph[node]):
            if seen.get(nxt) == "open":
                cycles.append(" -> ".join(trail[trail.index(nxt):] + [nxt]))
            elif nxt not in seen:
                visit(nxt, trail + [nxt])
        seen[node] = "done"

    for start in sorted(graph):
        if start not in seen:
            visit(start, [start])
    assert not cycles, "\n".join(cycles)
