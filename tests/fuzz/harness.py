"""The fuzz harness: make cases, run them under limits, judge what came out, keep what failed.

A **case** is a command line (one of the option sets below: the text report, ``-f json``/``sarif``/
``github``, ``-f html -o``, ``--fix`` and ``--unsafe-fixes`` on the case's own copy, ``--diff``,
``--images`` on a small generated folder, ``--statistics``, ``--predictions``, a labellint.toml,
``labellint apply`` with review decisions) and the files it reads, each a tree of values
(values.py) mutated along its structure (mutate.py) and written as JSON or TOML, sometimes with its
bytes broken afterwards. Case ``i`` of seed ``s`` is always the same case, whichever worker runs it
and in whatever order.

**Running**: ``fork`` mode (the default) sends each case to a worker (worker.py) that has imported
labellint once and forks a child per case; ``subprocess`` mode runs ``python -m labellint`` itself,
start-up and all. Both apply the same limits: RLIMIT_AS (``mem``, 2 GiB), a wall-clock timeout
(``timeout``, 20 s), no core files, at most 1 GiB per written file.

**The oracle** (:func:`judge`) fails a case on: a hang, a death by signal, MemoryError, a
traceback, ``labellint: internal error``, a rule that crashed (the engine reports it as a finding),
a Python error or warning line on stderr, an exit code other than 0/1/2 (0/2 for ``apply``), exit 2
with no ``labellint: error:`` line, control characters (ANSI escapes) or bidi controls from the
data in the terminal output, JSON/SARIF output that is not strict JSON (or not valid SARIF, when
../shared has its schema), a JSON summary whose ``exit_code`` is not the exit code, a forged GitHub
workflow command, markup from the data in the HTML page, an input file changed that the command
must not change, a file that ``--fix``/``apply`` wrote that is not JSON, untouched top-level
sections changed by ``--fix``, anything written by a run that failed with exit 2, and temporary
files left behind.

Each failure gets a **signature** (its class, the exception type and the innermost labellint
frame; for an internal error or a crashed rule the case is run again with LABELLINT_DEBUG=1 to get
that frame; a hang's frame comes from the stack dump): one signature is one bug to route. The
first case of each signature is kept; :func:`shrink` makes it small (fewer entries, fewer keys,
shorter strings, smaller tokens, a plainer command) while the signature stays, and :func:`save`
writes it as a folder with its files, ``repro.sh`` (one line) and ``failure.json``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import corpus, mutate
from .values import Pairs, Token, dump_json, dump_toml

WORKER = Path(__file__).with_name("worker.py")
DEFAULT_TIMEOUT = 20.0
DEFAULT_MEM = 2 << 30
DEFAULT_RSS = 1 << 30  # peak resident memory above which a case fails as memory-hungry
PRELOAD = ("labellint.cli,labellint.report.html,labellint.report.sarif,labellint.fix.runner,labellint.fix.decisions,"
           "labellint.gate.predictions,labellint.gate.objectlab,labellint.images,labellint.rules.*,numpy.ma,"
           "PIL.Image,PIL.PngImagePlugin,PIL.JpegImagePlugin")  # imported once by the worker, not by every case

# -- option sets ------------------------------------------------------------------------------------

#: name, argv (before the dataset path), weight
OPTION_SETS = [
    ("plain", ["check"], 3.0),
    ("json", ["check", "-f", "json"], 2.0),
    ("sarif", ["check", "-f", "sarif"], 2.0),
    ("github", ["check", "-f", "github"], 1.5),
    ("html", ["check", "-f", "html", "-o", "review.html"], 1.5),
    ("gitlab", ["check", "-f", "gitlab"], 0.7),
    ("junit", ["check", "-f", "junit"], 0.7),
    ("markdown", ["check", "-f", "markdown"], 0.7),
    ("label-studio", ["check", "-f", "label-studio", "-o", "tasks.json"], 0.7),
    ("fix", ["check", "--fix"], 2.0),
    ("unsafe-fixes", ["check", "--unsafe-fixes"], 1.0),
    ("diff", ["check", "--diff"], 1.5),
    ("images", ["check", "--images", "images"], 2.0),
    ("statistics", ["check", "--statistics"], 1.0),
    ("predictions", ["check", "--predictions", "pred.json"], 1.5),
    ("config", ["check"], 1.5),  # labellint.toml beside the file, found by the upward search
    ("explicit-config", ["check", "--config", "labellint.toml"], 0.5),
    ("apply", ["apply", "decisions.json"], 1.0),
    ("apply-dry-run", ["apply", "--dry-run", "decisions.json"], 0.5),
    ("apply-output", ["apply", "-o", "out.json", "decisions.json"], 0.5),
]
DATASET = "ann.json"


@dataclass
class FileSpec:
    kind: str  # "json" or "toml"
    tree: object
    indent: object = None
    ensure_ascii: bool = False
    byte_mutation: tuple | None = None  # (name, fraction): see mutate.mutate_bytes

    def render(self, canary: str = corpus.CANARY_ABS) -> bytes:
        text = dump_toml(self.tree) if self.kind == "toml" else dump_json(self.tree, self.indent, self.ensure_ascii)
        data = text.encode("utf-8", "surrogatepass")
        data = data.replace(corpus.CANARY_ABS.encode(), json.dumps(canary)[1:-1].encode())
        if self.byte_mutation:
            data = mutate.mutate_bytes(data, *self.byte_mutation)
        return data


@dataclass
class Case:
    seed: str
    index: int
    name: str  # the option set
    argv: list
    files: dict  # file name in the case folder -> FileSpec
    images: bool = False
    source: str = ""  # the seed document
    log: list = field(default_factory=list)  # what the mutations did, one line each

    @property
    def full_argv(self) -> list:
        return [*self.argv, DATASET]

    @property
    def command(self) -> str:
        return "labellint " + " ".join(_quote(a) for a in self.full_argv)


def _quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w./=-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"


class Seeds:
    """The documents cases start from (loaded once per run)."""

    def __init__(self, use_shared: bool = True, n_images: int = 24):
        self.shared = list(corpus.shared_seeds(n_images)) if use_shared else []


def make_case(seed, index: int, seeds: Seeds) -> Case:
    rng = random.Random(f"{seed}/{index}")
    name, base, _ = mutate.weighted(rng, [((n, a, w), w) for n, a, w in OPTION_SETS])
    argv = list(base)
    images = name == "images" or (name == "html" and rng.random() < 0.5)
    if argv[0] == "check" and name not in ("diff", "images") and rng.random() < 0.15:
        images = True
    if images and "--images" not in argv:
        argv += ["--images", "images"]
    with_preds = name == "predictions" or (argv[0] == "check" and name != "diff" and rng.random() < 0.08)
    if with_preds and "--predictions" not in argv:
        argv += ["--predictions", "pred.json"]
    with_config = name in ("config", "explicit-config") or (argv[0] == "check" and rng.random() < 0.08)

    preds = None
    if seeds.shared and rng.random() < 0.5:
        source, doc, preds = rng.choice(seeds.shared)
        doc = copy.deepcopy(doc)
    else:
        source = "generated"
        doc = corpus.gen_doc(rng, corpus.GOOD_IMAGES if images and rng.random() < 0.5 else None)
    if images:
        pool = list(corpus.GOOD_IMAGES) * 3 + list(corpus.ODD_IMAGES)
        for im in doc.get("images", []):
            if rng.random() < 0.85:
                im["file_name"] = rng.choice(pool)
    case = Case(seed=str(seed), index=index, name=name, argv=argv, files={}, images=images, source=source)
    case.files[DATASET] = FileSpec("json", doc, indent=rng.choice([None, None, None, 1, 2, 4, "\t"]),
                                   ensure_ascii=rng.random() < 0.15)
    if with_preds:
        p = copy.deepcopy(preds) if preds and rng.random() < 0.7 else corpus.gen_predictions(rng, doc)
        case.files["pred.json"] = FileSpec("json", p, indent=rng.choice([None, 2]))
    if with_config:
        case.files["labellint.toml"] = FileSpec("toml", corpus.gen_config(rng))
    if argv[0] == "apply":
        case.files["decisions.json"] = FileSpec("json", corpus.gen_decisions(rng, doc), indent=2)

    n = rng.choice([0] + [1] * 7 + [2] * 4 + [3] * 2 + [4])
    for _ in range(n):
        _mutate_once(rng, case)
    if not case.log:
        case.log.append("no mutation")
    return case


def _mutate_once(rng: random.Random, case: Case) -> None:
    aux = [k for k in case.files if k != DATASET]
    target = rng.choice(aux) if aux and rng.random() < 0.5 else DATASET
    spec = case.files[target]
    if rng.random() < 0.1:
        spec.byte_mutation = (rng.choice(mutate.BYTE_MUTATIONS), round(rng.random(), 3))
        case.log.append(f"{target}: bytes {spec.byte_mutation[0]} at {spec.byte_mutation[1]:.0%}")
        return
    table = list(mutate.GENERIC)
    if target == DATASET:
        table += mutate.COCO + [(mutate.m_whole, 0.3)]
    elif target == "pred.json":
        table += [(mutate.m_prediction, 6)]
    elif target == "labellint.toml":
        table += [(mutate.m_config, 8)]
    elif target == "decisions.json":
        table += [(mutate.m_decision, 6)]
    for _ in range(5):  # a mutation that does not apply to this tree: draw another
        fn = mutate.weighted(rng, table)
        if fn is mutate.m_whole:
            spec.tree = fn(rng, spec.tree)
            case.log.append(f"{target}: whole document = {mutate.short(spec.tree)}")
            return
        if fn is mutate.m_file_name:
            what = fn(rng, spec.tree, case.images)
        else:
            what = fn(rng, spec.tree)
        if what:
            case.log.append(f"{target}: {what}")
            return


# -- running ----------------------------------------------------------------------------------------

def base_env() -> dict:
    """The environment every case runs in: the developer's LABELLINT_* settings left out (they
    would change the verdict), no progress bar, one BLAS thread (workers share two cores)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABELLINT_")}
    env.update(LABELLINT_NO_PROGRESS="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONFAULTHANDLER="1")
    env.pop("PYTHONWARNINGS", None)
    return env


@dataclass
class Outcome:
    rc: int
    timed_out: bool
    wall: float
    maxrss_kb: int | None
    stdout: bytes
    stderr: bytes


class Worker:
    """Runs cases one at a time: a fork server (``mode="fork"``) or ``python -m labellint``
    processes (``mode="subprocess"``). ``entry`` replaces labellint's main in fork mode."""

    def __init__(self, mode: str = "fork", timeout: float = DEFAULT_TIMEOUT, mem: int = DEFAULT_MEM,
                 entry: str | None = None, env: dict | None = None):
        self.mode, self.timeout, self.mem, self.entry = mode, timeout, mem, entry
        self.preload = "" if entry else PRELOAD  # a planted entry needs none of labellint
        self.env = dict(env or {})
        self.proc = None
        self.io = Path(tempfile.mkdtemp(prefix="labellint-fuzz-io-"))

    def _start(self):
        cmd = [sys.executable, str(WORKER), "--preload", self.preload]
        if self.entry:
            cmd += ["--entry", self.entry]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=base_env(), text=True,
                                     bufsize=1)

    def run(self, folder: Path, argv: list, env: dict | None = None, timeout: float | None = None) -> Outcome:
        timeout = timeout or self.timeout
        env = {**self.env, **(env or {})}
        out, err = self.io / "stdout", self.io / "stderr"
        if self.mode == "subprocess":
            res = self._run_subprocess(folder, argv, env or {}, timeout, out, err)
        else:
            res = self._run_fork(folder, argv, env or {}, timeout, out, err)
        return Outcome(res["rc"], res["timed_out"], res["wall"], res.get("maxrss_kb"), out.read_bytes(),
                       err.read_bytes())

    def _run_fork(self, folder, argv, env, timeout, out, err) -> dict:
        req = {"dir": str(folder), "argv": argv, "env": env, "stdout": str(out), "stderr": str(err),
               "timeout": timeout, "mem": self.mem}
        for attempt in range(2):
            if self.proc is None or self.proc.poll() is not None:
                self._start()
            try:
                self.proc.stdin.write(json.dumps(req) + "\n")
                self.proc.stdin.flush()
                line = self.proc.stdout.readline()
            except (BrokenPipeError, OSError):
                line = ""
            if line:
                return json.loads(line)
            self.close()  # the server itself died: start a new one and run the case again
        raise RuntimeError("the fuzz worker died twice on one case")

    def _run_subprocess(self, folder, argv, env, timeout, out, err) -> dict:
        from .worker import ABORT_GRACE, _wait_exit, limit_child

        full_env = {**base_env(), **env}
        start = time.monotonic()
        with open(out, "wb") as fo, open(err, "wb") as fe:
            proc = subprocess.Popen([sys.executable, "-m", "labellint", *argv], cwd=folder, env=full_env,
                                    stdin=subprocess.DEVNULL, stdout=fo, stderr=fe,
                                    preexec_fn=lambda: limit_child(self.mem))
            timed_out = not _wait_exit(proc.pid, timeout)
            if timed_out:
                _killpg(proc.pid, signal.SIGABRT)  # PYTHONFAULTHANDLER: the stacks go to stderr
                if not _wait_exit(proc.pid, ABORT_GRACE):
                    _killpg(proc.pid, signal.SIGKILL)
            _, status, usage = os.wait4(proc.pid, 0)  # reaped here for its peak memory
            proc.returncode = os.waitstatus_to_exitcode(status)
            _killpg(proc.pid, signal.SIGKILL)
        return {"rc": proc.returncode, "timed_out": timed_out, "wall": round(time.monotonic() - start, 3),
                "maxrss_kb": usage.ru_maxrss}

    def close(self):
        if self.proc is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def remove(self):
        self.close()
        shutil.rmtree(self.io, ignore_errors=True)


def _killpg(pid, sig):
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def materialize(case: Case, folder: Path, image_template: Path | None) -> dict:
    """Write the case's files into ``folder``; returns {name: bytes} as written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    canary = folder.resolve() / corpus.CANARY
    for name, spec in case.files.items():
        data = spec.render(str(canary))
        (folder / name).write_bytes(data)
        written[name] = data
    if case.images:
        corpus.copy_tree(image_template / "images", folder / "images")
        shutil.copyfile(image_template / corpus.CANARY, canary)
    return written


class OpenWatch:
    """Whether a file was opened while the watch was on (Linux inotify through libc; elsewhere
    ``opened()`` is always None). Only opening counts: a stat() to refuse a path is fine."""

    IN_OPEN, IN_ACCESS = 0x20, 0x01

    def __init__(self, path: Path):
        self.fd = -1
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
            if fd >= 0 and libc.inotify_add_watch(fd, os.fsencode(path), self.IN_OPEN | self.IN_ACCESS) >= 0:
                self.fd = fd
            elif fd >= 0:
                os.close(fd)
        except (OSError, AttributeError):
            pass

    def opened(self) -> bool | None:
        if self.fd < 0:
            return None
        try:
            return bool(os.read(self.fd, 4096))
        except BlockingIOError:
            return False
        finally:
            os.close(self.fd)
            self.fd = -1


def case_env(folder: Path) -> dict:
    return {"LABELLINT_CACHE_DIR": str(folder.parent / (folder.name + ".cache"))}


# -- the oracle -------------------------------------------------------------------------------------

_TERMINAL_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_BIDI = re.compile(r"[\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_PY_ERROR = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Z]\w*(?:Error|Exception|Exit): ", re.M)
_PY_WARNING = re.compile(r"^(\S[^\n]*?):(\d+): (\w*Warning): ([^\n]*)", re.M)
_RULE_FAILED = re.compile(r"rule (LL\d+) \(([^)]*)\) failed on [^:]*: ([\w.]+)")
_GITHUB_COMMAND = re.compile(r"^::(error|warning|notice) (file|title)=")
_MARKUP_FROM_DATA = re.compile(r"<fuzz-xss|<img src=x onerror=fuzz", re.I)  # the tags of values.hostile_strings, unescaped
_CODE_SPAN = re.compile(r"(`+).*?(?<!`)\1(?!`)", re.S)
_WRITERS = {"fix", "unsafe-fixes"}
_CRASHES = {"crash", "memory", "traceback", "internal-error", "python-error", "hang"}
_OUTPUTS = {"html": {"review.html"}, "apply-output": {"out.json"},
            "label-studio": {"tasks.json", "tasks.label-config.xml"}}


@dataclass
class Failure:
    cls: str
    detail: str = ""
    signature: str = ""


def _strict_json(data: bytes):
    def refuse(name):
        raise ValueError(f"{name} is not JSON")
    return json.loads(data.decode("utf-8"), parse_constant=refuse)


def _lenient_json(data: bytes):
    return json.loads(data.decode("utf-8-sig", "surrogatepass"))


def _parses(data: bytes, strict: bool) -> bool:
    try:
        (_strict_json if strict else _lenient_json)(data)
        return True
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False


_sarif_validator = None
_sarif_lock = threading.Lock()


def sarif_validator():
    """The SARIF 2.1.0 schema of ../shared (draft-04), or None without it or jsonschema."""
    global _sarif_validator
    with _sarif_lock:
        if _sarif_validator is None:
            _sarif_validator = False
            path = corpus.SHARED / "data/sarif/sarif-schema-2.1.0.json"
            try:
                import jsonschema

                if path.is_file():
                    _sarif_validator = jsonschema.Draft4Validator(json.loads(path.read_text()))
            except ImportError:
                pass
        return _sarif_validator or None


def judge(case: Case, out: Outcome, folder: Path, before: dict, rss_limit: int = DEFAULT_RSS) -> list[Failure]:
    """Everything wrong with one run (empty: it passed)."""
    stdout = out.stdout.decode("utf-8", "replace")
    stderr = out.stderr.decode("utf-8", "replace")
    both = stdout + "\n" + stderr
    if out.timed_out:
        return [Failure("hang", f"over {out.wall:.0f} s")]
    fails: list[Failure] = []
    if out.rc < 0:
        name = signal.Signals(-out.rc).name if -out.rc in signal.valid_signals() else str(-out.rc)
        fails.append(Failure("crash", name))
    memory = "MemoryError" in both or "Cannot allocate memory" in both or "std::bad_alloc" in both
    if memory:  # the memory limit, however it surfaced (a traceback, an internal error): one failure
        fails.append(Failure("memory"))
    elif out.maxrss_kb and out.maxrss_kb > rss_limit >> 10:
        # the address-space limit counts what the process had mapped before the case (more in a
        # fork-server child than in a fresh process): a peak this high is runaway memory in both
        fails.append(Failure("memory-hungry", f"{out.maxrss_kb >> 10} MiB resident"))
    elif "Traceback (most recent call last)" in both:
        fails.append(Failure("traceback"))
    elif "labellint: internal error" in stderr:
        m = re.search(r"labellint: internal error: ([\w.]+)", stderr)
        fails.append(Failure("internal-error", m.group(1) if m else ""))
    elif _PY_ERROR.search(stderr) and not out.rc < 0:
        fails.append(Failure("python-error", _PY_ERROR.search(stderr).group(0).strip()))
    m = _RULE_FAILED.search(both)
    if m and not (memory and "MemoryError" in m.group(3)):
        fails.append(Failure("rule-failed", f"{m.group(1)} {m.group(3)}"))
    w = _PY_WARNING.search(stderr)
    if w:
        fails.append(Failure("python-warning", f"{w.group(3)} {Path(w.group(1)).name}: {w.group(4)[:60]}"))
    if out.rc >= 0:
        allowed = {0, 2} if case.argv[0] == "apply" else {0, 1, 2}
        if out.rc not in allowed:
            fails.append(Failure("bad-exit", f"exit {out.rc}"))
        elif out.rc == 2 and not re.search(r"^labellint: (error|conflict|internal error)", stderr, re.M):
            fails.append(Failure("silent-exit-2", "Usage" if "Usage:" in stderr else ""))
    _check_text(case, stdout, stderr, fails)
    if not any(f.cls in _CRASHES for f in fails):  # a crash has no output worth judging: one cause, one failure
        _check_machine_output(case, out, stdout, folder, fails)
    _check_files(case, out, folder, before, fails)
    return fails


def _check_text(case, stdout, stderr, fails):
    diff = case.name == "diff"
    for stream, text in (("stdout", stdout), ("stderr", stderr)):
        m = _TERMINAL_CONTROL.search(text.replace("\r\n", "\n") if diff and stream == "stdout" else text)
        if m:
            cls = "escape-leak-diff" if diff and stream == "stdout" else "escape-leak"
            fails.append(Failure(cls, f"{stream} holds {m.group(0)!r}"))
            break
    texty = stdout if "-f" not in case.argv or case.name == "github" else ""
    for stream, text in (("stdout", "" if diff else texty), ("stderr", stderr)):
        m = _BIDI.search(text)
        if m:
            fails.append(Failure("bidi-leak", f"{stream} holds U+{ord(m.group(0)):04X}"))
            break
    if case.name == "github":
        for line in stdout.splitlines():
            if line.startswith("::") and not _GITHUB_COMMAND.match(line):
                fails.append(Failure("github-injection", line[:60]))
                break


def _check_machine_output(case, out, stdout, folder, fails):
    fmt = case.argv[case.argv.index("-f") + 1] if "-f" in case.argv else None
    if fmt in ("json", "sarif") and "-o" not in case.argv and out.rc in (0, 1, 2) and not out.timed_out:
        if not out.stdout.strip() and out.rc == 2:  # an error before the run: the guard's line, no report
            fails.append(Failure(f"{fmt}-output-missing", "exit 2 with an empty stdout"))
            return
        try:
            doc = _strict_json(out.stdout)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            fails.append(Failure(f"{fmt}-output-invalid", str(exc)[:80]))
            return
        if fmt == "json":
            code = doc.get("summary", {}).get("exit_code") if isinstance(doc, dict) else None
            if code != out.rc:
                fails.append(Failure("json-exit-code-lie", f"summary says {code}, exit {out.rc}"))
        else:
            validator = sarif_validator()
            if validator is not None:
                err = next(iter(validator.iter_errors(doc)), None)
                if err is not None:
                    where = "/".join(str(p) for p in err.absolute_path)
                    fails.append(Failure("sarif-invalid", f"{where}: {err.message[:60]}"))
    if fmt in ("gitlab", "junit", "markdown") and out.rc in (0, 1, 2) and not out.timed_out and out.stdout.strip():
        _check_ci_format(fmt, out.stdout, fails)
    if fmt == "html" and out.rc in (0, 1):
        page = folder / "review.html"
        if not page.is_file():
            fails.append(Failure("html-missing"))
        elif _MARKUP_FROM_DATA.search(page.read_text("utf-8", "replace")):
            fails.append(Failure("html-injection"))


def _check_ci_format(fmt: str, stdout: bytes, fails) -> None:
    """gitlab: a JSON array with unique fingerprints; junit: well-formed XML; markdown: under the
    comment cap, and no HTML tag that the data could have put there."""
    import xml.etree.ElementTree as ET

    try:
        if fmt == "gitlab":
            doc = _strict_json(stdout)
            prints = [issue.get("fingerprint") for issue in doc] if isinstance(doc, list) else None
            if prints is None or len(set(prints)) != len(prints):
                fails.append(Failure("gitlab-invalid", "not an array of issues with unique fingerprints"))
        elif fmt == "junit":
            ET.fromstring(stdout)
        elif len(stdout) > 65_536 or _MARKUP_FROM_DATA.search(
                _CODE_SPAN.sub("", stdout.decode("utf-8", "replace"))):  # inside a code span it is text
            fails.append(Failure("markdown-unsafe", f"{len(stdout)} bytes"))
    except (ValueError, UnicodeDecodeError, RecursionError, ET.ParseError) as exc:
        fails.append(Failure(f"{fmt}-output-invalid", str(exc)[:80]))


def _check_files(case, out, folder, before, fails):
    for name, data in before.items():
        path = folder / name
        now = path.read_bytes() if path.is_file() else None
        if now == data:
            continue
        writer = (name == DATASET and (case.name in _WRITERS or case.name == "apply"))
        if not writer:
            fails.append(Failure("input-modified", f"{name} ({case.name})"))
            continue
        if now is None:
            fails.append(Failure("lost-data", f"{name} is gone"))
            continue
        if out.rc == 2:
            fails.append(Failure("wrote-on-error", name))
        strict = _parses(data, strict=True)
        if not _parses(now, strict):
            fails.append(Failure("wrote-invalid-json", f"{name} ({case.name}, {'strict' if strict else 'lenient'})"))
        elif case.name in _WRITERS:
            _untouched(data, now, fails)
    new = {p.name for p in folder.iterdir()} - set(before) - {"images", corpus.CANARY}
    for name in sorted(new):
        if re.fullmatch(r"\..*\.tmp", name):
            fails.append(Failure("temp-left", name))
        elif name not in _OUTPUTS.get(case.name, set()):
            fails.append(Failure("unexpected-file", name))
    if case.name == "apply-output" and (folder / "out.json").is_file():
        if not _parses((folder / "out.json").read_bytes(), strict=False):
            fails.append(Failure("wrote-invalid-json", "out.json (apply -o)"))


def _untouched(old: bytes, new: bytes, fails):
    """--fix edits entries of images/annotations/categories; every other top-level value stays."""
    try:
        a, b = _lenient_json(old), _lenient_json(new)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return
    for key in set(a) | set(b):
        if key in ("images", "annotations", "categories"):
            continue
        if json.dumps(a.get(key), sort_keys=True) != json.dumps(b.get(key), sort_keys=True):
            fails.append(Failure("fix-changed-untouched", f"top-level {key!r}"))
            return


# -- signatures -------------------------------------------------------------------------------------

_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+),? in (\S+)', re.M)
_PRODUCT = re.compile(r"[/\\](labellint|rules)[/\\]")


def _where(path: str) -> str:
    m = _PRODUCT.search(path)
    return path[m.start() + 1:].replace("\\", "/") if m else Path(path).name


def frames_of(text: str) -> tuple[list, str]:
    """(frames innermost first, the exception line) of the last traceback or stack dump in text."""
    if "Traceback (most recent call last)" in text:
        block = text[text.rindex("Traceback (most recent call last)"):]
        frames = [(m.group(1), int(m.group(2)), m.group(3)) for m in _FRAME.finditer(block)][::-1]
        exc = ""
        for line in block.splitlines()[1:]:
            if line and not line.startswith(" "):
                exc = line
                break
        return frames, exc
    m = re.search(r"^Current thread [^\n]*\n((?:\s+File[^\n]*\n?)+)", text, re.M)
    if m is None:
        m = re.search(r"^Thread [^\n]*\n((?:\s+File[^\n]*\n?)+)", text, re.M)
    if m:
        return [(f.group(1), int(f.group(2)), f.group(3)) for f in _FRAME.finditer(m.group(1))], ""
    return [], ""


def innermost(frames) -> str:
    for path, line, func in frames:
        if _PRODUCT.search(path) and "tests/fuzz" not in path.replace("\\", "/"):
            return f"{_where(path)}:{func}"
    return f"{_where(frames[0][0])}:{frames[0][2]}" if frames else "?"


def normalise(message: str) -> str:
    message = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", message)
    return re.sub(r"\d+", "N", message)[:80]


_NEEDS_DEBUG = {"internal-error", "rule-failed", "memory", "python-error"}


def sign(case: Case, fails: list[Failure], out: Outcome, rerun=None, known: dict | None = None) -> None:
    """Fill in each failure's signature; ``rerun(env)`` runs the case again (LABELLINT_DEBUG) for
    the frame of an error that printed none. ``known`` remembers, across the cases of a run, the
    signature each such error line led to, so that a bug met a thousand times costs one rerun."""
    text = out.stderr.decode("utf-8", "replace") + "\n" + out.stdout.decode("utf-8", "replace")
    debug_text = None
    known = {} if known is None else known
    for f in fails:
        line = _error_line(f, text)
        if line is not None and line in known:
            f.signature = known[line]
            continue
        if f.cls in ("hang", "crash", "traceback") or (f.cls in _NEEDS_DEBUG and "Traceback" in text):
            frames, exc = frames_of(text)
            kind = exc.split(":")[0] if exc else ""
            f.signature = " ".join(x for x in (f.cls, f.detail if f.cls == "crash" else "", kind,
                                               "@ " + innermost(frames)) if x)
        elif f.cls in _NEEDS_DEBUG:
            if debug_text is None and rerun is not None:
                debug_out = rerun({"LABELLINT_DEBUG": "1"})
                debug_text = debug_out.stderr.decode("utf-8", "replace")
            frames, exc = frames_of(debug_text or "")
            if frames:
                kind = exc.split(":")[0] if exc else f.detail
                code = f.detail.split()[0] if f.cls == "rule-failed" else ""
                f.signature = " ".join(x for x in (f.cls, code, kind, "@ " + innermost(frames)) if x)
            else:
                f.signature = f"{f.cls} {normalise(f.detail)}"
            if line is not None:
                known[line] = f.signature
        elif f.cls == "python-warning":  # "Category file.py: message": the file as it is, the message normalised
            where, _, message = f.detail.partition(": ")
            f.signature = f"{f.cls} {where}: {normalise(message)}"
        elif f.cls in ("bad-exit", "silent-exit-2", "input-modified", "wrote-invalid-json", "wrote-on-error",
                       "unexpected-file", "temp-left", "lost-data"):
            f.signature = f"{f.cls} {case.name} {normalise(f.detail.split(' ')[0])}"
        else:
            f.signature = f"{f.cls} {case.name}"


def _error_line(f: Failure, text: str) -> str | None:
    """What identifies an error that needs a rerun for its frame: its class and its message with
    numbers and quoted values normalised (None for the other failures)."""
    if f.cls not in _NEEDS_DEBUG or f.cls == "memory" or "Traceback" in text:
        return None  # memory errors all read alike: only their frames tell them apart
    pattern = {"internal-error": r"labellint: internal error: ([^\n]*)", "rule-failed": r"rule (LL\d+ [^\n]*)",
               "python-error": r"(" + _PY_ERROR.pattern.lstrip("^") + r"[^\n]*)"}[f.cls]
    m = re.search(pattern, text, re.M)
    return f"{f.cls}|{normalise(m.group(1)) if m else ''}"


# -- one case, many cases ---------------------------------------------------------------------------

@dataclass
class Found:
    case: Case
    failures: list
    outcome: Outcome | None

    @property
    def signatures(self) -> list[str]:
        return sorted({f.signature for f in self.failures})


def run_case(case: Case, worker: Worker, workdir: Path, image_template: Path | None,
             keep: bool = False, known: dict | None = None, timing: list | None = None) -> Found | None:
    """Run one case and judge it: None when it passed. ``timing`` gets (seconds, case) appended."""
    folder = workdir / f"case-{case.index}"
    shutil.rmtree(folder, ignore_errors=True)
    try:
        before = materialize(case, folder, image_template)
        env = case_env(folder)
        watch = OpenWatch(folder / corpus.CANARY) if case.images else None
        out = worker.run(folder, case.full_argv, env)
        if timing is not None:
            timing.append((out.wall, case))
        escaped = watch is not None and watch.opened()  # before judge() reads any file
        fails = judge(case, out, folder, before)
        if escaped:
            fails.append(Failure("image-root-escape", "opened the file beside the image root"))
        if not fails:
            return None

        def rerun(extra):
            shutil.rmtree(folder, ignore_errors=True)
            materialize(case, folder, image_template)
            return worker.run(folder, case.full_argv, {**env, **extra})

        sign(case, fails, out, rerun, known)
        return Found(case, fails, out)
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
            shutil.rmtree(folder.parent / (folder.name + ".cache"), ignore_errors=True)


@dataclass
class Report:
    cases: int = 0
    seconds: float = 0.0
    by_signature: dict = field(default_factory=dict)  # signature -> [Found (first), count]
    slowest: list = field(default_factory=list)

    def add(self, found: Found) -> list[str]:
        new = []
        for sig in found.signatures:
            if sig in self.by_signature:
                self.by_signature[sig][1] += 1
            else:
                self.by_signature[sig] = [found, 1]
                new.append(sig)
        return new

    @property
    def failing(self) -> bool:
        return bool(self.by_signature)

    def summary(self, saved: dict | None = None) -> str:
        lines = [f"{self.cases} cases in {self.seconds:.0f} s: {len(self.by_signature)} distinct failure(s)"]
        if self.slowest:
            lines.append("  slowest: " + ", ".join(f"{s:.1f} s (case {c.index}, {c.name})" for s, c in self.slowest[:3]))
        for sig, (found, count) in sorted(self.by_signature.items(), key=lambda kv: -kv[1][1]):
            case = found.case
            lines.append(f"  {count:4d} x {sig}")
            lines.append(f"         case {case.index} ({case.source}): {case.command}")
            for what in case.log[:4]:
                lines.append(f"           {what[:150]}")
            if saved and sig in saved:
                lines.append(f"         repro: {saved[sig]}")
        return "\n".join(lines)


def fuzz(seed, cases: int, jobs: int = 1, mode: str = "fork", timeout: float = DEFAULT_TIMEOUT,
         mem: int = DEFAULT_MEM, use_shared: bool = True, start: int = 0, deadline: float | None = None,
         on_new=None, workdir: Path | None = None, env: dict | None = None) -> Report:
    """Run cases ``start .. start+cases-1`` of ``seed`` on ``jobs`` workers; ``on_new(found, sigs)``
    is called (under a lock) for each case that shows a signature not seen before. ``env`` is
    added to every run's environment (e.g. a LABELLINT_<LIMIT> to try)."""
    seeds = Seeds(use_shared)
    own = workdir is None
    workdir = Path(workdir or tempfile.mkdtemp(prefix="labellint-fuzz-"))
    workdir.mkdir(parents=True, exist_ok=True)
    template = corpus.make_image_template(workdir / "template")
    report = Report()
    lock = threading.Lock()
    counter = iter(range(start, start + cases))
    t0 = time.monotonic()
    errors = []
    known: dict = {}  # error line -> signature (see sign); dict operations are atomic under the GIL

    def loop():
        worker = Worker(mode, timeout, mem, env=env)
        try:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None or (deadline is not None and time.monotonic() > deadline):
                    return
                case = make_case(seed, i, seeds)
                timing: list = []
                found = run_case(case, worker, workdir, template, known=known, timing=timing)
                with lock:
                    report.cases += 1
                    report.slowest = sorted(report.slowest + timing, key=lambda t: -t[0])[:5]
                    if found is not None:
                        new = report.add(found)
                        if new and on_new is not None:
                            on_new(found, new)
        except BaseException as exc:  # a harness bug must fail the run, not vanish with its thread
            errors.append(exc)
        finally:
            worker.remove()

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(max(1, jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report.seconds = time.monotonic() - t0
    if own:
        shutil.rmtree(workdir, ignore_errors=True)
    if errors:
        raise errors[0]
    return report


# -- shrinking ------------------------------------------------------------------------------------

def _paths(tree, prefix=()):
    """Every container's path in the tree, outermost first."""
    out = []
    queue = [(tree, prefix)]
    while queue:
        node, path = queue.pop(0)
        if isinstance(node, (dict, list, Pairs)):
            out.append(path)
            kids = (node.items() if isinstance(node, dict) else enumerate(v for _, v in node.items)
                    if isinstance(node, Pairs) else enumerate(node))
            for k, v in kids:
                if isinstance(v, (dict, list, Pairs, Token, str)):
                    queue.append((v, path + (k,)))
        elif isinstance(node, (Token, str)):
            out.append(path)
    return out


def _get_path(tree, path):
    for k in path:
        tree = tree.items[k][1] if isinstance(tree, Pairs) else tree[k]
    return tree


def _replace_path(tree, path, value):
    """A copy of the tree with the value at ``path`` replaced (only the spine is copied)."""
    if not path:
        return value
    k, rest = path[0], path[1:]
    if isinstance(tree, Pairs):
        items = list(tree.items)
        items[k] = (items[k][0], _replace_path(items[k][1], rest, value))
        return Pairs(items)
    new = copy.copy(tree)
    new[k] = _replace_path(tree[k], rest, value)
    return new


def shrink(found: Found, worker: Worker, workdir: Path, image_template: Path | None, budget: int = 300,
           seconds: float = 120.0) -> Found:
    """A smaller case with the same signature as ``found``'s first one: a plainer command, fewer
    files, then each file's tree from the outside in (lists cut by halves, then quarters, ... as in
    delta debugging; keys deleted; strings and tokens made smaller), until nothing more goes or
    ``budget`` runs or ``seconds`` are spent."""
    target = found.signatures[0]
    best = found
    tries = 0
    deadline = time.monotonic() + seconds
    seen: set[str] = set()

    def spent() -> bool:
        return tries >= budget or time.monotonic() > deadline

    def attempt(case: Case) -> bool:
        nonlocal tries, best
        key = hashlib.sha1(repr(case.full_argv).encode() + b"".join(
            n.encode() + b"\0" + spec.render() for n, spec in sorted(case.files.items()))).hexdigest()
        if key in seen or spent():
            return False
        seen.add(key)
        tries += 1
        f = run_case(case, worker, workdir, image_template)
        if f is not None and target in f.signatures:
            best = f
            return True
        return False

    def variant(**changes) -> Case:
        c = copy.copy(best.case)
        c.files = dict(best.case.files)
        c.argv = list(best.case.argv)
        for k, v in changes.items():
            setattr(c, k, v)
        return c

    def with_tree(name, path, value) -> Case:
        spec = copy.copy(best.case.files[name])
        spec.tree = _replace_path(spec.tree, path, value)
        return variant(files={**best.case.files, name: spec})

    def reduce(name, path) -> bool:
        """Make the node at ``path`` smaller while the failure stays; whether it changed."""
        changed = False
        node = _get_path(best.case.files[name].tree, path)
        if isinstance(node, list) and node:
            if attempt(with_tree(name, path, [])):
                return True
            size = len(node) // 2
            while size >= 1 and not spent():
                i = 0
                while i < len(node) and not spent():
                    if attempt(with_tree(name, path, node[:i] + node[i + size:])):
                        node, changed = node[:i] + node[i + size:], True
                    else:
                        i += size
                size //= 2
        elif isinstance(node, (dict, Pairs)):
            for key in range(len(node.items)) if isinstance(node, Pairs) else list(node):
                if spent():
                    break
                node = _get_path(best.case.files[name].tree, path)
                if isinstance(node, Pairs):
                    if key >= len(node.items):
                        break
                    smaller = Pairs(node.items[:key] + node.items[key + 1:])
                else:
                    smaller = {k: v for k, v in node.items() if k != key}
                changed |= attempt(with_tree(name, path, smaller))
            node = _get_path(best.case.files[name].tree, path)
            if isinstance(node, Pairs):
                changed |= attempt(with_tree(name, path, dict(node.items)))
        else:
            while not spent():
                smaller = node.smaller() if isinstance(node, Token) else (
                    node[: len(node) // 2] if isinstance(node, str) and len(node) > 16 else None)
                if smaller is None or not attempt(with_tree(name, path, smaller)):
                    break
                node, changed = smaller, True
        return changed

    # a plainer command: the extras an option set does not need dropped, with their files
    own = {n: a for n, a, _ in OPTION_SETS}
    for flag, value in (("--predictions", "pred.json"), ("--images", "images"), ("--config", "labellint.toml")):
        argv = best.case.argv
        if flag in argv and flag not in own.get(best.case.name, []):
            i = argv.index(flag)
            files = {k: v for k, v in best.case.files.items() if k != value}
            attempt(variant(argv=argv[:i] + argv[i + 2:], files=files,
                            images=best.case.images and flag != "--images"))
    for name in [k for k in best.case.files if k != DATASET and k not in best.case.argv]:
        attempt(variant(files={k: v for k, v in best.case.files.items() if k != name}))
    for name in list(best.case.files):
        spec = best.case.files[name]
        if spec.byte_mutation:
            attempt(variant(files={**best.case.files, name: FileSpec(spec.kind, spec.tree)}))
        spec = best.case.files[name]
        if spec.indent is not None or spec.ensure_ascii:
            attempt(variant(files={**best.case.files, name: FileSpec(spec.kind, spec.tree, None, False,
                                                                     spec.byte_mutation)}))
    progress = True
    while progress and not spent():
        progress = False
        for name in list(best.case.files):
            i = 0
            while not spent():
                paths = _paths(best.case.files[name].tree)
                if i >= len(paths):
                    break
                if reduce(name, paths[i]):
                    progress = True  # the tree changed: the same place again, in a fresh list of places
                else:
                    i += 1
    best.case.log = list(best.case.log) + [f"shrunk in {tries} runs"]
    return best


# -- keeping failures -------------------------------------------------------------------------------

def slug(signature: str) -> str:
    cls = signature.split()[0]
    return f"{cls}-{hashlib.sha1(signature.encode()).hexdigest()[:8]}"


def save(found: Found, out_dir: Path, image_template: Path | None, signature: str | None = None,
         mem: int = DEFAULT_MEM) -> str:
    """Write the case as ``out_dir/<class>-<hash>/`` (files, repro.sh, failure.json); returns the
    one-line reproduction command (under the memory limit the fuzzer applied: some failures need it)."""
    signature = signature or found.signatures[0]
    folder = Path(out_dir) / slug(signature)
    shutil.rmtree(folder, ignore_errors=True)
    case = found.case
    materialize(case, folder, image_template)
    args = " ".join(_quote(a) for a in case.full_argv)
    env = "LABELLINT_DEBUG=1 " if any(f.cls in _NEEDS_DEBUG for f in found.failures) else ""
    limit = f"ulimit -v {mem >> 10} && " if mem else ""
    command = f'cd {_quote(str(folder))} && {limit}{env}python -m labellint {args}'
    (folder / "repro.sh").write_text(f'#!/bin/sh\ncd "$(dirname "$0")" && {limit}{env}python -m labellint {args}\n')
    os.chmod(folder / "repro.sh", 0o755)
    info = {"signature": signature, "signatures": found.signatures, "command": case.command,
            "argv": case.full_argv, "option_set": case.name, "seed": case.seed, "index": case.index,
            "source": case.source, "mutations": case.log, "exit_code": found.outcome.rc,
            "timed_out": found.outcome.timed_out, "seconds": found.outcome.wall, "maxrss_kb": found.outcome.maxrss_kb,
            "failures": [{"class": f.cls, "detail": f.detail, "signature": f.signature} for f in found.failures],
            "stderr_tail": found.outcome.stderr.decode("utf-8", "replace")[-3000:],
            "reproduce": command,
            "regenerate": f"python benchmarks/fuzz.py --seed {case.seed} --start {case.index} --cases 1"}
    (folder / "failure.json").write_text(json.dumps(info, indent=2, ensure_ascii=True) + "\n")
    return command


def replay(folder: Path, worker: Worker) -> tuple[list[Failure], Outcome]:
    """Run a saved failure folder again (on a scratch copy) and judge it as the fuzzer did."""
    info = json.loads((folder / "failure.json").read_text())
    scratch = Path(tempfile.mkdtemp(prefix="labellint-replay-")) / "case"
    try:
        corpus.copy_tree(folder, scratch)
        for extra in ("repro.sh", "failure.json"):
            (scratch / extra).unlink()
        before = {p.name: p.read_bytes() for p in scratch.iterdir()
                  if p.is_file() and not p.is_symlink() and p.name != corpus.CANARY}
        case = Case(seed=info["seed"], index=info["index"], name=info["option_set"], argv=info["argv"][:-1],
                    files={k: None for k in before}, images=(scratch / "images").is_dir())
        watches = [OpenWatch(f / corpus.CANARY) for f in (folder, scratch) if (f / corpus.CANARY).is_file()]
        out = worker.run(scratch, info["argv"], case_env(scratch))
        escaped = any([w.opened() for w in watches])  # before judge() reads any file
        fails = judge(case, out, scratch, before)
        if escaped:
            fails.append(Failure("image-root-escape", "opened the file beside the image root"))

        def rerun(extra):
            shutil.rmtree(scratch)
            corpus.copy_tree(folder, scratch)
            return worker.run(scratch, info["argv"], {**case_env(scratch), **extra})

        sign(case, fails, out, rerun)
        return fails, out
    finally:
        shutil.rmtree(scratch.parent, ignore_errors=True)
