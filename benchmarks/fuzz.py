"""Fuzz the labellint command line for as long as you like (CI runs a bounded slice of this:
tests/fuzz/test_fuzz.py).

    python benchmarks/fuzz.py --seed random --cases 100000 --out fuzz-failures/
    python benchmarks/fuzz.py --seed 1 --cases 2000 --jobs 2          # what CI's seed family looks like
    python benchmarks/fuzz.py --seed 1 --start 137 --cases 1 --out f/  # one case again
    python benchmarks/fuzz.py --replay fuzz-failures/                 # which saved failures still fail

Each new failure signature (class, exception, innermost labellint frame) is shrunk to a small case,
checked once more with a real ``python -m labellint`` process, and written to
``OUT/<class>-<hash>/`` with its input files, ``repro.sh`` (one line) and ``failure.json`` (the
mutations, the exit code, stderr); ``OUT/summary.md`` lists them all, most frequent first, and is
rewritten as the run goes, so an interrupted run keeps what it found. See tests/fuzz/harness.py.
"""

from __future__ import annotations

import argparse
import json
import queue
import secrets
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.fuzz import corpus, harness  # noqa: E402


def _bytes(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(float(text.rstrip("KMG")) * scale)


def _summary(out: Path, report: harness.Report, saved: dict, seed) -> None:
    lines = [f"# labellint fuzz: seed {seed}", "", "```", report.summary(saved), "```", ""]
    tmp = out / ".summary.md.tmp"
    tmp.write_text("\n".join(lines))
    tmp.replace(out / "summary.md")


def replay_all(folder: Path, args) -> int:
    worker = harness.Worker(args.mode, args.timeout, _bytes(args.mem), env=dict(args.env))
    still = 0
    try:
        for case in sorted(p for p in folder.iterdir() if (p / "failure.json").is_file()):
            expected = json.loads((case / "failure.json").read_text())["signature"]
            fails, _ = harness.replay(case, worker)
            sigs = sorted({f.signature for f in fails})
            status = "still fails" if expected in sigs else ("fails differently" if sigs else "passes")
            still += bool(sigs)
            print(f"{status:17s} {case.name}: {expected}" + (f"  -> {sigs}" if sigs and expected not in sigs else ""))
    finally:
        worker.remove()
    return 1 if still else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", default="1", help="a whole number, or 'random' (printed, so the run can be repeated)")
    p.add_argument("--cases", type=int, default=2000)
    p.add_argument("--start", type=int, default=0, help="the first case's index (cases of a seed are numbered)")
    p.add_argument("--jobs", type=int, default=2, help="workers running cases side by side")
    p.add_argument("--out", type=Path, default=Path("fuzz-failures"), help="where failures are kept")
    p.add_argument("--timeout", type=float, default=harness.DEFAULT_TIMEOUT, help="seconds per case (default 20)")
    p.add_argument("--mem", default="2G", help="address-space limit per case (RLIMIT_AS; default 2G)")
    p.add_argument("--mode", choices=["fork", "subprocess"], default="fork",
                   help="fork: one warm worker forks per case (fast); subprocess: python -m labellint per case")
    p.add_argument("--hours", type=float, help="stop after this long, whatever --cases says")
    p.add_argument("--no-shared", action="store_true", help="only generated documents, not ../shared's real files")
    p.add_argument("--no-shrink", action="store_true", help="keep failures as found")
    p.add_argument("--shrink-runs", type=int, default=300, help="runs the shrinker may spend on one failure")
    p.add_argument("--env", action="append", default=[], type=lambda s: tuple(s.split("=", 1)), metavar="NAME=VALUE",
                   help="add to every run's environment (e.g. LABELLINT_MAX_JSON_DEPTH=64); repeatable")
    p.add_argument("--replay", type=Path, metavar="DIR", help="run the failures saved in DIR again and say which still fail")
    args = p.parse_args(argv)
    if args.replay:
        return replay_all(args.replay, args)

    seed = secrets.randbits(32) if args.seed == "random" else int(args.seed)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    env = dict(args.env)
    mem = _bytes(args.mem)
    print(f"seed {seed}, cases {args.start}..{args.start + args.cases - 1}, {args.jobs} job(s), "
          f"{args.timeout:g} s and {args.mem} per case; failures go to {out}/"
          + ("" if corpus.shared_available() and not args.no_shared else " (generated documents only)"), flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="labellint-fuzz-"))
    template = corpus.make_image_template(workdir / "template")
    todo: queue.Queue = queue.Queue()
    saved: dict[str, str] = {}
    report_box: list = []
    lock = threading.Lock()

    def on_new(found, sigs):
        for sig in sigs:
            print(f"new: {sig}   (case {found.case.index}: {found.case.command})", flush=True)
        todo.put((found, sigs))

    def keeper():
        """Shrinks, confirms and saves each new failure, beside the fuzzing workers."""
        worker = harness.Worker(args.mode, args.timeout, mem, env=env)
        confirm = harness.Worker("subprocess", args.timeout, mem, env=env)
        scratch = workdir / "shrink"
        try:
            while True:
                item = todo.get()
                if item is None:
                    return
                found, sigs = item
                for sig in sigs:
                    small = found
                    if not args.no_shrink:
                        try:
                            first = harness.Found(found.case, [f for f in found.failures if f.signature == sig],
                                                  found.outcome)
                            small = harness.shrink(first, worker, scratch, template, budget=args.shrink_runs)
                        except Exception as exc:  # keep the unshrunk case rather than nothing
                            print(f"  (shrinking failed: {type(exc).__name__}: {exc})", flush=True)
                    command = harness.save(small, out, template, sig, mem)
                    folder = out / harness.slug(sig)
                    fails, _ = harness.replay(folder, confirm)
                    again = {f.signature for f in fails}
                    # the memory limit bites at a lower peak in a fork-server child (see harness.judge)
                    confirmed = sig in again or (sig.startswith("memory") and any(x.startswith("memory") for x in again))
                    info = json.loads((folder / "failure.json").read_text())
                    info["confirmed_by_subprocess"] = confirmed
                    (folder / "failure.json").write_text(json.dumps(info, indent=2, ensure_ascii=True) + "\n")
                    with lock:
                        saved[sig] = command
                        if report_box:
                            _summary(out, report_box[0], saved, seed)
                    print(f"  saved {folder.name}{'' if confirmed else ' (NOT reproduced by python -m labellint)'}: "
                          f"{command}", flush=True)
        finally:
            worker.remove()
            confirm.remove()

    keeper_thread = threading.Thread(target=keeper, daemon=True)
    keeper_thread.start()
    deadline = time.monotonic() + args.hours * 3600 if args.hours else None
    try:
        report = harness.fuzz(seed, args.cases, jobs=args.jobs, mode=args.mode, timeout=args.timeout, mem=mem,
                              use_shared=not args.no_shared, start=args.start, deadline=deadline, on_new=on_new,
                              workdir=workdir / "run", env=env)
        with lock:
            report_box.append(report)
    finally:
        todo.put(None)
        keeper_thread.join()
        shutil.rmtree(workdir, ignore_errors=True)
    _summary(out, report, saved, seed)
    print(report.summary(saved))
    print(f"summary: {out / 'summary.md'}")
    return 1 if report.failing else 0


if __name__ == "__main__":
    sys.exit(main())
