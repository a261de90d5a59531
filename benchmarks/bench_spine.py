"""The spine's speed target: `labellint check` on a train2017-sized file against hotcoco.

    python benchmarks/bench_spine.py [--file PATH] [--reps 5] [--no-json-load] [--no-rules] [--nice N]

Target (issue "spine performance"): on the synthetic file made by
`gen_coco.py train2017_synth.json 118000 7.3` (118k images, 861k annotations, 269 MB minified),
the whole `labellint check FILE --output-format json --output-file /dev/null` run, a fresh
process with every structural rule (interpreter start and imports count), takes at most 0.6x the
time of `hotcoco.COCO(path)` followed by `.healthcheck()` measured in the same run, with peak
memory at most 1 GB. Measured processes get a bytecode cache, as an installed package has.

Prints, for each side, the median wall time of --reps runs (run alternately, so that a busy
machine slows both alike), the ratio, labellint's peak memory, then the loader alone against
`json.load`, then the time of each rule in the registry on the loaded dataset (whatever rules
exist now), slowest first.

Memory: `labellint` decodes large files in two forked processes that share the file's pages.
"peak RSS" is the kernel's ru_maxrss of the labellint process and its helpers (the largest of
them, which counts shared pages in full); "peak PSS, all processes" samples the proportional set
size of labellint and its helpers together every 10 ms (shared pages split between them), the
honest total of what the run holds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LABELLINT_SHARED", REPO.parent / "shared"))
DEFAULT_FILE = Path("/tmp/bench/train2017_synth.json")
MIB = 1024 * 1024

HOTCOCO = """
import sys, time
t0 = time.perf_counter()
import hotcoco
t1 = time.perf_counter()
coco = hotcoco.COCO(sys.argv[1])
report = coco.healthcheck()
t2 = time.perf_counter()
print(t2 - t1, t1 - t0)
"""

LOADER = """
import sys, time
from labellint.coco import load
t = time.perf_counter()
ds = load(sys.argv[1])
print(time.perf_counter() - t, len(ds.images), len(ds.annotations), len(ds.categories), 'split' in ds.layout)
"""

JSON_LOAD = """
import json, sys, time
t = time.perf_counter()
with open(sys.argv[1], 'rb') as f:
    doc = json.load(f)
print(time.perf_counter() - t)
"""

RULES = """
import json, sys, time
from labellint import geometry, registry
from labellint.coco import load
rules = registry.all_rules()
ds = load(sys.argv[1])
ds.ann_image_row, ds.ann_category_row  # the shared indexes, timed apart below
t = time.perf_counter()
geometry.segmentations(ds)  # summarised by the loader's children (this waits for them), else here
seg = time.perf_counter() - t
out = []
for rule in rules:
    if rule.requires:
        out.append((rule.code, rule.name, None, 0, "needs " + ", ".join(rule.requires)))
        continue
    t = time.perf_counter()
    try:
        n = sum(1 for _ in rule.check(ds, dict(rule.options)))
        note = ""
    except Exception as exc:
        n, note = 0, f"failed: {type(exc).__name__}: {exc}"
    out.append((rule.code, rule.name, time.perf_counter() - t, n, note))
t = time.perf_counter(); ds.offsets(); prefetched = time.perf_counter() - t  # measured meanwhile
del ds
ds2 = load(sys.argv[1])
t = time.perf_counter(); ds2.ann_image_row; ds2.ann_category_row; idx = time.perf_counter() - t
if "prefetch" in ds2.layout:
    ds2.layout["prefetch"].cancel()
t = time.perf_counter(); ds2.offsets(); offs = time.perf_counter() - t
print(json.dumps({"rules": out, "indexes": idx, "offsets": offs, "prefetched": prefetched, "segmentation": seg}))
"""


# -- process measurement --------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    kids = [int(c) for c in text.split()]
    return kids + [g for k in kids for g in _children(k)]


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


NICE = 0  # --nice: the niceness increment for every measured process (and its children)


def _renice():
    if not NICE:
        return
    os.nice(NICE)
    # With autogroup scheduling (Linux desktops, many VMs), niceness counts only inside a session:
    # give the measured process a session (an autogroup) of its own and that group the niceness.
    if Path("/proc/self/autogroup").exists():
        try:
            os.setsid()
            Path("/proc/self/autogroup").write_text(str(NICE))
        except OSError:
            pass


#: Measured processes get a bytecode cache (filled by the unmeasured warm-up run), as an installed
#: package has its .pyc files: with PYTHONDONTWRITEBYTECODE set (this machine sets it) every run
#: would compile labellint's modules again.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "labellint-bench-pycache")


def measure(cmd: list[str]) -> dict:
    """Run cmd; wall time, CPU time, ru_maxrss and sampled peak PSS of its process tree."""
    peak = [0]
    done = threading.Event()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_renice, env=ENV)

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], sum(_pss_kib(p) for p in [proc.pid, *_children(proc.pid)]))
            done.wait(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "maxrss": usage.ru_maxrss * 1024,
            "pss": peak[0] * 1024, "code": proc.returncode, "out": out, "err": err}


def python_code(code: str, *args) -> list[str]:
    return [sys.executable, "-c", code, *map(str, args)]


# -- report helpers -------------------------------------------------------------------------------
def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = next(int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal"))
        mem_s = f", {mem / MIB:.0f} GiB RAM"
    except (OSError, StopIteration):
        mem_s = ""
    return (f"nproc {os.cpu_count()} ({len(os.sched_getaffinity(0))} usable), {model}{mem_s}; "
            f"Python {platform.python_version()}; load average {os.getloadavg()[0]:.2f} at start")


def ensure_file(path: Path) -> Path | None:
    if path.exists():
        return path
    gen = SHARED / "tools" / "gen_coco.py"
    if not gen.exists():
        print(f"skipped: {path} does not exist and the generator {gen} is not there "
              f"(the shared folder is absent; set LABELLINT_SHARED or pass --file)")
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"generating {path} with {gen} (118000 images, 7.3 annotations each; takes a minute) ...", flush=True)
    subprocess.run([sys.executable, str(gen), str(path), "118000", "7.3"], check=True)
    return path


def labellint_cmd(path: Path, *extra: str) -> list[str]:
    exe = Path(sys.executable).with_name("labellint")
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "labellint"]
    return [*base, "check", str(path), *extra, "--output-format", "json", "--output-file", os.devnull, "--exit-zero"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file", type=Path, default=DEFAULT_FILE)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--no-json-load", action="store_true", help="skip json.load (slow: ~10 s, ~3 GB)")
    ap.add_argument("--no-rules", action="store_true")
    ap.add_argument("--nice", type=int, default=0,
                    help="run every measured process at this niceness increment; a negative one (root only) "
                         "shields both sides alike from other work on a shared machine")
    args = ap.parse_args(argv)
    global NICE
    NICE = args.nice

    path = ensure_file(args.file)
    if path is None:
        return 0
    try:
        import hotcoco  # noqa: F401
        have_hotcoco = True
    except ImportError:
        have_hotcoco = False
        print("hotcoco is not installed (pip install hotcoco): labellint is timed alone")

    print(f"## Spine: {path} ({path.stat().st_size / MIB:.0f} MiB)")
    print(f"machine: {machine()}" + (f"; measured processes at nice {args.nice:+d}" if args.nice else ""))
    cmd = labellint_cmd(path)
    spine_cmd = labellint_cmd(path, "--select", "LL0")
    print(f"labellint: {' '.join(cmd)}")
    print(f"spine only: the same with --select LL0 (the file/schema family: LL001-LL0xx)")

    # warm the page cache and the imports once, unmeasured
    measure(cmd)
    if have_hotcoco:
        measure(python_code(HOTCOCO, path))

    lint_runs, spine_runs, hot_runs = [], [], []
    for i in range(args.reps):
        r, s = measure(cmd), measure(spine_cmd)
        for run in (r, s):
            if run["code"] not in (0, 1):
                print(f"labellint failed (exit {run['code']}):\n{run['err'][-2000:]}")
                return 2
        lint_runs.append(r)
        spine_runs.append(s)
        line = f"  run {i + 1}: labellint {r['wall']:.2f} s (cpu {r['cpu']:.2f} s), spine only {s['wall']:.2f} s"
        if have_hotcoco:
            h = measure(python_code(HOTCOCO, path))
            if h["code"] != 0:
                print(f"hotcoco failed:\n{h['err'][-2000:]}")
                return 2
            calls, imports = map(float, h["out"].split())
            h["calls"], h["imports"] = calls, imports
            hot_runs.append(h)
            line += f"   hotcoco COCO()+healthcheck() {h['calls']:.2f} s (process {h['wall']:.2f} s, cpu {h['cpu']:.2f} s)"
        print(line + f"   [load avg {os.getloadavg()[0]:.1f}]", flush=True)

    med = lambda runs, key: statistics.median(r[key] for r in runs)
    lint, spine = med(lint_runs, "wall"), med(spine_runs, "wall")
    print()
    print(f"labellint check, all rules (process)  median {lint:.2f} s   (cpu {med(lint_runs, 'cpu'):.2f} s)")
    print(f"labellint check --select LL0          median {spine:.2f} s   (cpu {med(spine_runs, 'cpu'):.2f} s)")
    verdicts = []
    if have_hotcoco:
        hot = med(hot_runs, "calls")
        print(f"hotcoco COCO(path) + .healthcheck()   median {hot:.2f} s   (its process {med(hot_runs, 'wall'):.2f} s, "
              f"cpu {med(hot_runs, 'cpu'):.2f} s)")
        ratio = lint / hot
        verdicts.append(("time", ratio <= 0.6))
        print(f"ratio labellint / hotcoco             {ratio:.2f}   (target <= 0.60: {'met' if ratio <= 0.6 else 'NOT met'})")
        print(f"ratio spine only / hotcoco            {spine / hot:.2f}")
        paired = ", ".join(f"{r['wall'] / h['calls']:.2f}" for r, h in zip(lint_runs, hot_runs))
        paired_spine = ", ".join(f"{s['wall'] / h['calls']:.2f}" for s, h in zip(spine_runs, hot_runs))
        print(f"ratio per alternating triple          {paired} (all rules); {paired_spine} (spine only)")
    rss = max(r["maxrss"] for r in lint_runs)
    pss = max(r["pss"] for r in lint_runs)
    verdicts.append(("memory", max(rss, pss) <= 1024 * MIB))
    print(f"labellint peak RSS (largest process) {rss / MIB:.0f} MiB; peak PSS, all processes {pss / MIB:.0f} MiB "
          f"(target <= 1024 MiB: {'met' if max(rss, pss) <= 1024 * MIB else 'NOT met'})")

    # the loader alone, in fresh processes
    print()
    loads = []
    for _ in range(max(3, args.reps // 2)):
        r = measure(python_code(LOADER, path))
        loads.append(float(r["out"].split()[0]))
    info = r["out"].split()
    print(f"labellint.coco.load alone            median {statistics.median(loads):.2f} s   "
          f"({info[1]} images, {info[2]} annotations, {info[3]} categories; split decode: {info[4]}; "
          f"peak PSS {r['pss'] / MIB:.0f} MiB)")
    if not args.no_json_load:
        r = measure(python_code(JSON_LOAD, path))
        if r["code"] == 0:
            j = float(r["out"])
            print(f"json.load                             {j:.2f} s   (peak RSS {r['maxrss'] / MIB:.0f} MiB; "
                  f"{j / statistics.median(loads):.0f}x the loader)")
        else:
            print(f"json.load failed: {r['err'].strip().splitlines()[-1:]}")

    if not args.no_rules:
        r = measure(python_code(RULES, path))
        if r["code"] != 0:
            print(f"\nper-rule timing failed:\n{r['err'][-2000:]}")
        else:
            res = json.loads(r["out"])
            print("\nper rule, on the loaded dataset, in registry order; rules share cached work (the polygon summary "
                  "of\nlabellint.geometry, which the loader's children work out while the file is decoded). Done once, apart:")
            print(f"  indexes ann_image_row + ann_category_row      {res['indexes'] * 1000:8.1f} ms")
            print(f"  segmentations (the wait for the loader's children, or the decode)  {res['segmentation'] * 1000:8.1f} ms")
            print(f"  positions of every element (with findings)    {res['prefetched'] * 1000:8.1f} ms "
                  f"after the rules ({res['offsets'] * 1000:.0f} ms without the background prefetch)")
            timed = sorted(res["rules"], key=lambda x: -(x[2] or 0))
            for code, name, secs, n, note in timed:
                t = f"{secs * 1000:8.1f} ms" if secs is not None else "    skipped"
                print(f"  {code:7s} {name:32s} {t}  {n:7d} problems  {note}")
            total = sum(x[2] or 0 for x in timed)
            print(f"  {'all':7s} {'':32s} {total * 1000:8.1f} ms")
    return 0 if all(ok for _, ok in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
