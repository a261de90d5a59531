"""The spine's speed target: `labellint check FILE` against hotcoco, each timed as a user runs it.

    python benchmarks/bench_spine.py [--file PATH] [--reps 7] [--nice N] [--stdout tty|pipe] [--json]
                                     [--no-phases] [--no-loader] [--no-json-load] [--no-rules] [--profile DIR]

Target (issue "spine performance"): on the synthetic file made by
`gen_coco.py train2017_synth.json 118000 7.3` (118k images, 861k annotations, 269 MB minified;
the generator's default seed, so every copy is the same bytes), the whole process
`labellint check FILE` (every rule that needs only the JSON, the text report on a terminal) takes
at most 1.3x the whole process `python -c "import hotcoco; hotcoco.COCO(FILE).healthcheck()"`,
the two timed alternately in the same run on the same cores, with peak memory at most 1 GB.

What the headline times, and why:

- Whole processes, wall clock, on both sides: a user waits for interpreter start and imports on
  both sides, so neither side leaves them out.
- The command line a user types. The console script next to this Python (`labellint`, as pip
  installs it; `python -m labellint` where there is none) with no report options; its stdout is a
  pseudo-terminal (a person at a terminal) or, with `--stdout pipe`, a pipe (a CI log). `--json`
  adds a third timed command, `labellint check FILE -f json` with stdout on a pipe (what CI
  reads).
- Bytecode cached on both sides, as an installed package has it: pip compiles .pyc files when it
  installs a wheel, but an editable install run with PYTHONDONTWRITEBYTECODE set (this machine
  sets it) compiles labellint's modules again on every run. Measured processes run without it,
  with their cache under PYTHONPYCACHEPREFIX (outside the work tree), filled by an unmeasured
  warm-up run of each command.
- Nothing samples the measured processes: reading /proc/PID/smaps_rollup (for PSS) walks the
  process's page tables holding its mmap lock, and its mmap/munmap calls, with the page faults
  queued behind them, wait. Sampled every 10 ms, in two alternating A/B sessions on the 2-core
  benchmark machine, hotcoco's COCO()+healthcheck() took 2.50 s instead of 1.32 s and 2.05 s
  instead of 1.42 s (its CPU time barely changed: it waited), labellint's run 3.00 s instead of
  2.29 s and 2.68 s instead of 2.40 s: the sampler flattered the ratio by 0.4-0.5. Peak memory is
  measured apart, in untimed runs.
- The runs alternate (labellint, spine only[, -f json], hotcoco, then the reverse order), so that
  a machine busy with other work slows each side alike; ratios are per rep and of the
  medians.

Breakdowns after the headline: hotcoco's import and its two calls alone (from the same processes);
`labellint check --select LL0` (the file/schema family: "spine only"); where labellint's run goes
(interpreter start, imports, load, rules and findings, ranking, report, teardown; the parent's CPU
and its loader children's); the loader alone against `json.load`; each rule of the registry on the
loaded dataset; with `--profile DIR`, `python -X importtime` and cProfile outputs of the command.

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
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LABELLINT_SHARED", REPO.parent / "shared"))
DEFAULT_FILE = Path("/tmp/bench/train2017_synth.json")
MIB = 1024 * 1024
TARGET = 1.3  # labellint / hotcoco, whole processes
MEMORY_TARGET = 1024 * MIB

# What a user runs, plus two clocks whose cost is nothing next to the calls: the import and the
# calls alone are breakdowns, the headline is the process.
HOTCOCO = """
import sys, time
t0 = time.perf_counter()
import hotcoco
t1 = time.perf_counter()
hotcoco.COCO(sys.argv[1]).healthcheck()
t2 = time.perf_counter()
print(t2 - t1, t1 - t0)
"""

# `labellint check` in-process, as the console script runs it, with clocks around the steps the
# command goes through. Only functions that outlive refactorings are wrapped, each looked up
# where the caller finds it; one that has moved is reported as missing, the run goes on.
PHASES = """
import json, os, sys, time
script = time.perf_counter()
import labellint.__main__ as entry
import labellint.cli  # what entry.main() imports first: counted with the imports
imported = time.perf_counter()
import importlib
steps = {}
missing = []

def wrap(module, attr, key):
    try:
        mod = importlib.import_module(module)
        f = getattr(mod, attr)
    except (ImportError, AttributeError):
        missing.append(f"{module}.{attr}")
        return
    def timed(*a, **k):
        t = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            s = steps.setdefault(key, [t, 0.0])
            s[1] += time.perf_counter() - t
    setattr(mod, attr, timed)

wrap("labellint.run", "load", "load")
wrap("labellint.engine", "lint_file", "rules and findings")
wrap("labellint.run", "rank", "ranking")
wrap("labellint.report.text", "render", "text report")
out = sys.argv.pop(1)

def save():
    t = os.times()
    with open(out, "w") as f:
        json.dump({"script": script, "imported": imported, "steps": steps, "missing": missing,
                   "exit": time.perf_counter(), "cpu": t.user + t.system,
                   "children_cpu": t.children_user + t.children_system}, f)

import atexit
atexit.register(save)
sys.argv[0] = "labellint"
entry.main()
"""

LOADER = """
import sys, time
from labellint.coco import load
t = time.perf_counter()
ds = load(sys.argv[1])
print(time.perf_counter() - t, len(ds.images), len(ds.annotations), len(ds.categories), 'split' in getattr(ds, 'layout', {}))
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
layout = getattr(ds2, "layout", {})
if "prefetch" in layout:
    layout["prefetch"].cancel()
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


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "labellint-bench-pycache")
#: Measured processes run outside the work tree: `python -c` puts its working directory first on
#: sys.path, so from the repository root it would import the checkout's labellint instead of the
#: installed one the console script runs (and a regular install maps `labellint.rules` elsewhere).
CWD = tempfile.gettempdir()


def _drain(fd_or_file, sink: bytearray):
    """Read a pipe or a pty master until its writers are gone (a pty master then raises EIO)."""
    read = fd_or_file.read if hasattr(fd_or_file, "read") else (lambda n: os.read(fd_or_file, n))
    while True:
        try:
            chunk = read(1 << 16)
        except OSError:
            break
        if not chunk:
            break
        sink.extend(chunk)


def _pty_pair():
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 120, 0, 0))  # a 120-column terminal
    return master, slave


def measure(cmd: list[str], stdout: str = "pipe", sample: bool = False, env: dict | None = None) -> dict:
    """Run cmd: wall time, CPU time (user, system) and ru_maxrss of its process tree; with
    ``sample``, also its peak PSS (sampled: never on a timed run, see the module docstring).
    ``stdout``: "tty" (a pseudo-terminal), "pipe" or "null"; whatever comes is read as it comes."""
    out, err = bytearray(), bytearray()
    master = slave = None
    if stdout == "tty":
        try:
            master, slave = _pty_pair()
        except (ImportError, OSError):
            stdout = "pipe"
    target = {"tty": slave, "pipe": subprocess.PIPE, "null": subprocess.DEVNULL}[stdout]
    peak = [0]
    done = threading.Event()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=target, stderr=subprocess.PIPE, preexec_fn=_renice, env=env or ENV, cwd=CWD)
    readers = [threading.Thread(target=_drain, args=(proc.stderr, err), daemon=True)]
    if slave is not None:
        os.close(slave)
        readers.append(threading.Thread(target=_drain, args=(master, out), daemon=True))
    elif stdout == "pipe":
        readers.append(threading.Thread(target=_drain, args=(proc.stdout, out), daemon=True))
    for r in readers:
        r.start()
    sampler = None
    if sample:
        def run_sampler():
            while not done.is_set():
                peak[0] = max(peak[0], sum(_pss_kib(p) for p in [proc.pid, *_children(proc.pid)]))
                done.wait(0.01)

        sampler = threading.Thread(target=run_sampler, daemon=True)
        sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    end = time.perf_counter()
    done.set()
    for t in [*readers, *([sampler] if sampler else [])]:
        t.join(5)
    for f in (proc.stdout, proc.stderr):
        if f is not None:
            f.close()
    if master is not None:
        os.close(master)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"wall": end - start, "start": start, "end": end, "user": usage.ru_utime, "sys": usage.ru_stime,
            "cpu": usage.ru_utime + usage.ru_stime, "maxrss": usage.ru_maxrss * 1024, "pss": peak[0] * 1024,
            "code": proc.returncode, "out": out.decode(errors="replace"), "err": err.decode(errors="replace")}


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


def installed() -> str:
    """Which labellint and hotcoco the measured processes import, and how they are installed."""
    code = ("import importlib.metadata as m, json, labellint\n"
            "try:\n d = m.distribution('labellint-coco'); v = d.version; u = json.loads(d.read_text('direct_url.json') or '{}')\n"
            "except Exception:\n v, u = '?', {}\n"
            "kind = 'editable install' if u.get('dir_info', {}).get('editable') else 'regular install' if v != '?' else 'not installed'\n"
            "try:\n import hotcoco; h = m.version('hotcoco')\n"
            "except Exception:\n h = 'absent'\n"
            "print(f'labellint {v} ({kind}) from {labellint.__path__[0]}; hotcoco {h}')")
    r = measure(python_code(code))
    found = r["out"].strip() or " ".join(r["err"].strip().splitlines()[-1:])
    return found + (f" (PYTHONPATH={ENV['PYTHONPATH']})" if ENV.get("PYTHONPATH") else "")


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


def labellint_cmd(*args: str) -> list[str]:
    exe = Path(sys.executable).with_name("labellint")
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "labellint"]
    return [*base, *map(str, args)]


def spread(values: list[float]) -> str:
    if len(values) < 4:
        return f"{min(values):.2f}-{max(values):.2f}"
    q = statistics.quantiles(values, n=4)
    return f"IQR {q[0]:.2f}-{q[2]:.2f}, range {min(values):.2f}-{max(values):.2f}"


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


# -- the parts of the benchmark -------------------------------------------------------------------
def headline(path: Path, args) -> tuple[list, bool]:
    user_cmd = labellint_cmd("check", path)
    sides = [("labellint", user_cmd, args.stdout), ("spine only", labellint_cmd("check", path, "--select", "LL0"),
                                                    args.stdout)]
    if args.json:
        sides.append(("labellint -f json", labellint_cmd("check", path, "-f", "json"), "pipe"))
    have_hotcoco = measure(python_code("import hotcoco"))["code"] == 0
    if have_hotcoco:
        sides.append(("hotcoco", python_code(HOTCOCO, path), "pipe"))
    else:
        print("hotcoco is not installed (pip install hotcoco): labellint is timed alone")
    print(f"labellint:  {' '.join(user_cmd)}   (stdout: {'a pseudo-terminal' if args.stdout == 'tty' else 'a pipe'})")
    print(f"spine only: the same with --select LL0 (the file/schema family: LL001-LL0xx)")
    if args.json:
        print(f"json:       {' '.join(labellint_cmd('check', path, '-f', 'json'))}   (stdout: a pipe)")
    if have_hotcoco:
        print(f"hotcoco:    {sys.executable} -c \"import hotcoco; hotcoco.COCO(FILE).healthcheck()\"   (stdout: a pipe)")

    for _, cmd, out in sides:  # unmeasured: the bytecode cache, the page cache
        measure(cmd, out)
    runs: dict[str, list] = {name: [] for name, _, _ in sides}
    for i in range(args.reps):
        line = []
        for name, cmd, out in (sides if i % 2 == 0 else sides[::-1]):
            r = measure(cmd, out)
            if r["code"] not in (0, 1):
                print(f"{name} failed (exit {r['code']}):\n{r['err'][-2000:]}")
                return (None, None), False
            if name == "hotcoco":
                r["calls"], r["import"] = map(float, r["out"].split())
            runs[name].append(r)
            line.append(f"{name} {r['wall']:.2f} s")
        print(f"  run {i + 1}: " + ", ".join(line) + f"   [load avg {os.getloadavg()[0]:.1f}]", flush=True)

    print()
    for name, _, _ in sides:
        rs = runs[name]
        walls = [r["wall"] for r in rs]
        print(f"{name + ' (process)':28s} median {statistics.median(walls):.2f} s ({spread(walls)}); "
              f"cpu {median(rs, 'cpu'):.2f} s (user {median(rs, 'user'):.2f}, sys {median(rs, 'sys'):.2f})")
    ok = True
    if have_hotcoco:
        hot = runs["hotcoco"]
        print(f"{'hotcoco: the calls alone':28s} median {median(hot, 'calls'):.2f} s; its import "
              f"{median(hot, 'import'):.3f} s; interpreter start and exit "
              f"{statistics.median(r['wall'] - r['calls'] - r['import'] for r in hot):.3f} s")
        lint_w, hot_w = median(runs["labellint"], "wall"), median(hot, "wall")
        ratio = lint_w / hot_w
        ok = ratio <= TARGET
        paired = [a["wall"] / b["wall"] for a, b in zip(runs["labellint"], hot)]
        print(f"\nratio labellint / hotcoco (processes)  {ratio:.2f}   (target <= {TARGET}: {'met' if ok else 'NOT met'}); "
              f"per rep: median {statistics.median(paired):.2f} ({spread(paired)})")
        spine = [a["wall"] / b["wall"] for a, b in zip(runs["spine only"], hot)]
        print(f"ratio spine only / hotcoco             {median(runs['spine only'], 'wall') / hot_w:.2f}   "
              f"(per rep {spread(spine)})")
        if args.json:
            print(f"ratio labellint -f json / hotcoco      {median(runs['labellint -f json'], 'wall') / hot_w:.2f}")
        print(f"ratio labellint / hotcoco's calls alone (no interpreter start or import on hotcoco's side) "
              f"{lint_w / median(hot, 'calls'):.2f}")
    rss = max(r["maxrss"] for r in runs["labellint"])
    print(f"labellint peak RSS (largest process, timed runs) {rss / MIB:.0f} MiB")
    return [user_cmd, args.stdout], ok


def memory(cmd: list[str], stdout: str, runs: int) -> bool:
    """Peak PSS of labellint and its helpers together, in untimed runs (the sampler slows them)."""
    samples = [measure(cmd, stdout, sample=True) for _ in range(runs)]
    pss = max(r["pss"] for r in samples)
    rss = max(r["maxrss"] for r in samples)
    ok = max(pss, rss) <= MEMORY_TARGET
    print(f"labellint peak PSS, all processes (sampled, untimed, {runs} run{'s' * (runs != 1)}) {pss / MIB:.0f} MiB; "
          f"peak RSS {rss / MIB:.0f} MiB (target <= {MEMORY_TARGET // MIB} MiB: {'met' if ok else 'NOT met'})")
    return ok


def phases(path: Path, stdout: str, runs: int) -> None:
    """Where one `labellint check FILE` goes, in-process, median of ``runs`` runs."""
    rows: dict[str, list] = {}
    cpu, children, missing = [], [], set()
    with tempfile.TemporaryDirectory() as tmp:
        out_file = os.path.join(tmp, "phases.json")
        for _ in range(runs + 1):  # the first warms the bytecode of this script's path
            r = measure(python_code(PHASES, out_file, "check", path), stdout)
            if r["code"] not in (0, 1):
                print(f"phases failed:\n{r['err'][-2000:]}")
                return
            p = json.load(open(out_file))
            steps = sorted(p["steps"].items(), key=lambda kv: kv[1][0])
            got = {"interpreter start": p["script"] - r["start"], "imports (labellint.cli)": p["imported"] - p["script"]}
            first = steps[0][1][0] if steps else p["exit"]
            got["command line, config, discovery"] = first - p["imported"]
            accounted = sum(s[1] for _, s in steps)
            for name, (_, secs) in steps:
                got[name] = secs
            got["other: settings, exit code, freeing"] = p["exit"] - first - accounted
            got["teardown (after atexit)"] = r["end"] - p["exit"]
            got["whole process"] = r["wall"]
            for k, v in got.items():
                rows.setdefault(k, []).append(v)
            cpu.append(p["cpu"])
            children.append(p["children_cpu"])
            missing.update(p["missing"])
    print(f"\nwhere `labellint check` goes (in-process clocks around the command's steps; median of {runs}):")
    for k, v in rows.items():
        values = v[1:]
        print(f"  {k:42s} {statistics.median(values) * 1000:7.0f} ms   ({min(values) * 1000:.0f}-{max(values) * 1000:.0f})")
    print(f"  CPU: this process {statistics.median(cpu[1:]):.2f} s, its loader children {statistics.median(children[1:]):.2f} s")
    if missing:
        print(f"  not found (moved?), so not timed apart: {', '.join(sorted(missing))}")


def profile(path: Path, folder: Path, stdout: str) -> None:
    """`python -X importtime` and cProfile of `labellint check FILE`, written to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    entry = "import sys, labellint.__main__ as m; sys.argv[0] = 'labellint'; m.main()"
    r = measure([sys.executable, "-X", "importtime", "-c", entry, "check", str(path)], stdout)
    (folder / "importtime.txt").write_text(r["err"])
    rows = []  # (self us, cumulative us, nesting level, module), in the order printed: children first
    for line in r["err"].splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2][1:].rstrip()  # after the separator's space, two spaces per nesting level
            level = (len(name) - len(name.lstrip())) // 2
            rows.append((int(parts[0].split(":")[-1]), int(parts[1]), level, name.strip()))
    # each package's cost where another package (or the script) imports it, nested imports of
    # other packages included; labellint's own modules by their self time
    by_package: dict[str, int] = {}
    stack: list[tuple[int, str]] = []
    for _, cumulative, level, name in reversed(rows):  # parents first
        while stack and stack[-1][0] >= level:
            stack.pop()
        package = name.split(".")[0]
        if package != (stack[-1][1] if stack else None):
            by_package[package] = by_package.get(package, 0) + cumulative
        stack.append((level, package))
    total = sum(cumulative for _, cumulative, level, _ in rows if level == 0)
    own = sum(us for us, _, _, name in rows if name.split(".")[0] == "labellint")
    print(f"\nimports (python -X importtime, {folder / 'importtime.txt'}): {total / 1000:.0f} ms in all "
          f"(importtime's own overhead included); labellint's own modules {own / 1000:.0f} ms; "
          f"the packages it pulls in:")
    for package, us in sorted(by_package.items(), key=lambda kv: -kv[1])[:12]:
        if package != "labellint":
            print(f"  {us / 1000:7.1f} ms  {package}")
    prof = folder / "check.prof"
    measure([sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "labellint", "check", str(path)], stdout)
    import pstats

    # by cumulative time the waits for the loader's children lead (parallel._read); by own time
    # too (the Unpickler's load is that wait), then what this process spends its own CPU on
    print(f"\ncProfile of the command, this process only ({prof}; the loader's children are not in it):")
    stats = pstats.Stats(str(prof), stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(r"labellint", 25)
    stats.sort_stats("tottime").print_stats(20)


def loader(path: Path, reps: int, json_load: bool) -> None:
    loads = []
    for _ in range(max(3, reps // 2)):
        r = measure(python_code(LOADER, path))
        if r["code"] != 0:
            print(f"\nloader failed:\n{r['err'][-2000:]}")
            return
        loads.append(float(r["out"].split()[0]))
    info = r["out"].split()
    print(f"\nlabellint.coco.load alone            median {statistics.median(loads):.2f} s   "
          f"({info[1]} images, {info[2]} annotations, {info[3]} categories; split decode: {info[4]})")
    if json_load:
        r = measure(python_code(JSON_LOAD, path))
        if r["code"] == 0:
            j = float(r["out"])
            print(f"json.load                             {j:.2f} s   (peak RSS {r['maxrss'] / MIB:.0f} MiB; "
                  f"{j / statistics.median(loads):.0f}x the loader)")
        else:
            print(f"json.load failed: {r['err'].strip().splitlines()[-1:]}")


def rules(path: Path) -> None:
    r = measure(python_code(RULES, path))
    if r["code"] != 0:
        print(f"\nper-rule timing failed:\n{r['err'][-2000:]}")
        return
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file", type=Path, default=DEFAULT_FILE)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--stdout", choices=["tty", "pipe"], default="tty",
                    help="where labellint's text report goes: a pseudo-terminal (default) or a pipe")
    ap.add_argument("--json", action="store_true", help="also time `labellint check FILE -f json` (stdout a pipe)")
    ap.add_argument("--memory-runs", type=int, default=1, help="untimed runs that sample peak PSS (0: none)")
    ap.add_argument("--no-phases", action="store_true", help="skip the in-process breakdown of labellint's run")
    ap.add_argument("--no-loader", action="store_true", help="skip the loader alone")
    ap.add_argument("--no-json-load", action="store_true", help="skip json.load (slow: ~10-20 s, ~3 GB)")
    ap.add_argument("--no-rules", action="store_true", help="skip the per-rule timings")
    ap.add_argument("--profile", type=Path, metavar="DIR",
                    help="also write python -X importtime and cProfile outputs of the command to DIR")
    ap.add_argument("--nice", type=int, default=0,
                    help="run every measured process at this niceness increment; a negative one (root only) "
                         "shields both sides alike from other work on a shared machine")
    args = ap.parse_args(argv)
    global NICE
    NICE = args.nice

    path = ensure_file(args.file.resolve())
    if path is None:
        return 0
    print(f"## Spine: {path} ({path.stat().st_size / MIB:.0f} MiB)")
    print(f"machine: {machine()}" + (f"; measured processes at nice {args.nice:+d}" if args.nice else ""))
    print(f"measured: {installed()}; bytecode cached under {ENV['PYTHONPYCACHEPREFIX']}")
    (cmd, stdout), ok = headline(path, args)
    if cmd is None:
        return 2
    verdicts = [ok]
    if args.memory_runs:
        verdicts.append(memory(cmd, stdout, args.memory_runs))
    if not args.no_phases:
        phases(path, stdout, 3)
    if args.profile:
        profile(path, args.profile, stdout)
    if not args.no_loader:
        loader(path, args.reps, not args.no_json_load)
    if not args.no_rules:
        rules(path)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
