"""Write every output labellint gives on the real files and the demo into one folder, so that
a refactoring can be shown to change no byte: run it before and after, then ``diff -r``.

usage: python benchmarks/output_snapshot.py OUT_DIR [SHARED_DIR]
       diff -r OUT_BEFORE OUT_AFTER && echo identical

Per input: the text report (no colour, 120 columns), JSON, SARIF and GitHub annotations, the
``--diff`` of the safe and the unsafe fixes, the review gallery where there are images, and the
exit code and stderr of each. Inputs: the
real files in ../shared/data (chess with its images and, when the shared model is there, the
embedding rule; TACO; the pycocotools demo with its results as predictions) and a demo dataset
built here. Each command runs as a user runs it: ``python -m labellint`` in a fresh process, in
the input's folder, with the cache off. To snapshot another commit, check it out in a worktree
(``git worktree add /tmp/base REV``), link ``/tmp/base/labellint/rules`` to ``../rules`` there,
and run that worktree's copy of this script: it puts its own tree first on PYTHONPATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def inputs(shared: Path, work: Path) -> list[tuple[str, Path, list[str]]]:
    """(name, annotation file, extra arguments) of every input there is."""
    data = shared / "data"
    model = shared / "models" / "mobilenetv2-12-int8-embed.onnx"
    out = []
    for split in ("train", "valid", "test"):
        f = data / "chess_pieces" / split / "_annotations.coco.json"
        if f.is_file():
            extra = ["--images", str(f.parent)]
            if model.is_file():
                extra += ["--backbone", str(model)]
            out.append((f"chess-{split}", f, extra))
    for name in ("annotations.json", "annotations_unofficial.json"):
        f = data / "taco" / name
        if f.is_file():
            out.append((f"taco-{name.split('.')[0]}", f, []))
    gt = data / "cocoeval" / "cocoapi_val2014_100" / "instances_val2014_100.json"
    res = gt.with_name("instances_val2014_fakebbox100_results.json")
    if gt.is_file():
        out.append(("cocoeval", gt, ["--predictions", str(res)] if res.is_file() else []))
    demo = work / "demo"
    subprocess.run([sys.executable, "-m", "labellint", "demo", str(demo)], check=True, capture_output=True)
    out.append(("demo", demo / "annotations.json", ["--images", str(demo / "images")]))
    return out


def main(out_dir: Path, shared: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / ".work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120", "LABELLINT_NO_PROGRESS": "1", "CI": "true",
           "PYTHONPATH": str(REPO)}
    runs = [("text", []), ("json", ["-f", "json"]), ("sarif", ["-f", "sarif"]), ("github", ["-f", "github"]),
            ("diff", ["--diff"]), ("diff-unsafe", ["--diff", "--unsafe-fixes"])]
    for name, path, extra in inputs(shared, work):
        for kind, args in runs:
            proc = subprocess.run([sys.executable, "-m", "labellint", "check", path.name, "--no-cache", *args, *extra],
                                  cwd=path.parent, env=env, capture_output=True)
            (out_dir / f"{name}.{kind}.out").write_bytes(proc.stdout)
            (out_dir / f"{name}.{kind}.err").write_bytes(proc.stderr + f"\nexit {proc.returncode}\n".encode())
        if "--images" in extra:  # the review gallery, where there are pictures to show
            page = out_dir / f"{name}.html"
            proc = subprocess.run([sys.executable, "-m", "labellint", "check", path.name, "--no-cache", "-f", "html",
                                   "-o", str(page), *extra], cwd=path.parent, env=env, capture_output=True)
            err = proc.stderr.replace(str(out_dir).encode(), b"OUT")  # the same text wherever OUT_DIR is
            (out_dir / f"{name}.html.err").write_bytes(err + f"\nexit {proc.returncode}\n".encode())
        print(f"{name}: {len(runs)} outputs", flush=True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else REPO.parent / "shared")
