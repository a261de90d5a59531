"""One `labellint check` run: files in, findings, notes and an exit code out.

Everything between argument parsing (cli.py) and rendering (report/) lives here.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from labellint import baseline as baseline_mod
from labellint import config as config_mod
from labellint import engine, progress, registry
from labellint.coco import NotCoco, load, load_bytes
from labellint.context import RunContext
from labellint.errors import InputError, LabellintError
from labellint.findings import Finding, Severity, rank
from labellint.fsutil import atomic_write, cwd_relative, display_path, file_kind, line_for_people


@dataclass
class Options:
    select: list[str] | None = None
    ignore: tuple = ()
    extend_select: tuple = ()
    fail_on: Severity | None = None
    config: Path | None = None
    baseline: Path | None = None
    diff_base: str | None = None
    images: Path | None = None
    backbone: Path | None = None  # ONNX embedding model for the LL5xx rules ($LABELLINT_BACKBONE)
    device: str = "auto"
    batch_size: int = 32
    no_cache: bool = False
    predictions: Path | None = None  # a detector's COCO results, for the LL6xx rules
    ray: str | None = None  # --ray auto|ADDRESS: the images and embeddings passes on a Ray cluster
    ray_actors: int = 0  # --ray-actors: backbone actors (0: one per GPU, else one per CPU)
    ray_batch: int = 0  # --ray-batch: images per batch on the cluster (0: the default)
    outputs: tuple = ()  # files the command writes when the run is done (a report, a baseline): never an input
    fix: bool = False  # apply safe fixes (and unsafe ones with unsafe_fixes) and write the files
    unsafe_fixes: bool = False
    diff: bool = False  # compute the fixes but write nothing (Result.fixes holds them)
    keep_datasets: bool = False  # keep each loaded Dataset in Result.datasets (the HTML gallery draws from it)


@dataclass
class FileOutcome:
    path: str  # relative to the repository root (see fsutil.display_path)
    status: str  # "linted", "skipped" or "error"
    note: str | None = None
    counts: dict = field(default_factory=dict)


@dataclass
class Result:
    findings: list[Finding] = field(default_factory=list)
    files: list[FileOutcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # one line each, repository-relative paths (JSON, SARIF)
    error_lines: list[str] = field(default_factory=list)  # the same for people: paths relative to the cwd
    notes: list[str] = field(default_factory=list)
    skipped_rules: dict[str, str] = field(default_factory=dict)  # code -> reason
    skipped_needs: dict[str, tuple] = field(default_factory=dict)  # code -> the run inputs it lacked
    shown: dict[str, str] = field(default_factory=dict)  # relpath -> the path people read (cwd-relative)
    rules: list = field(default_factory=list)  # every rule enabled for some file
    fail_on: Severity = Severity.ERROR
    hidden: int = 0  # findings hidden by the baseline or the diff base
    stale: list[dict] = field(default_factory=list)
    datasets: dict = field(default_factory=dict)  # relpath -> Dataset, with Options.keep_datasets
    sources: dict = field(default_factory=dict)  # relpath -> the Path that was read
    fixes: list = field(default_factory=list)  # fix.runner.FileFix per file, with --fix/--diff

    def shown_path(self, relpath: str) -> str:
        """A file's path in the text report: relative to the current directory, as ruff and
        compilers print it (machine formats keep the repository-relative ``relpath``)."""
        return self.shown.get(relpath, relpath)

    def by_severity(self) -> Counter:
        by_level = Counter(f.severity for f in self.findings)
        return Counter({str(level): n for level, n in by_level.items()})

    def exit_code(self, exit_zero: bool = False) -> int:
        if self.errors:
            return 2
        if exit_zero:
            return 0
        return 1 if any(f.severity >= self.fail_on for f in self.findings) else 0


# the run inputs a rule may REQUIRE, as the option that gives each (per-rule reasons in JSON/SARIF)
_REQUIREMENTS = {"images": "--images DIR",
                 "backbone": "--backbone MODEL.onnx (or LABELLINT_BACKBONE)",
                 "predictions": "--predictions PRED.json"}


def skip_reason(needs) -> str:
    """Why a rule was skipped, from the inputs it lacked: every one of them (a rule that needs
    both images and a backbone says so), e.g. ``needs --images DIR and --backbone MODEL.onnx (...)``."""
    return "needs " + " and ".join(_REQUIREMENTS.get(n, n) for n in needs) if needs else "skipped"


_NOT_WALKED = (".git", ".labellint_cache")


@dataclass
class Inputs:
    """What the paths given to ``check`` name: the files to lint, in order, and the files found in
    folders but skipped, each with why (as FileOutcome notes)."""

    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str, str]] = field(default_factory=list)  # (path, relpath, note)
    given: set[Path] = field(default_factory=set)  # the files named on the command line


def expand(paths) -> list[Path]:
    """The files to lint (see :func:`discover`)."""
    return discover(paths).files


def discover(paths) -> Inputs:
    """The files that ``paths`` name. A file given is linted whatever it is (reading it refuses
    anything but a regular file). A folder is walked for ``*.json`` files (not into .git or
    .labellint_cache, nor into linked folders); in it, a FIFO, a device or a socket is skipped with
    a note, and so is a symbolic link that leads out of the folder: a dataset pull request must
    not get the linter to read /dev/zero, hang on a FIFO, or quote a file from elsewhere on the
    machine (a CI secret). A link that stays inside the folder is linted, as its target, once."""
    out = Inputs()
    seen: set[tuple[int, int]] = set()
    for p in map(Path, paths):
        if not p.is_dir():
            out.files.append(p)
            out.given.add(p)
            continue
        root = os.path.realpath(p)
        found = []
        for folder, dirs, names in os.walk(p, followlinks=False):
            dirs[:] = [d for d in dirs if d not in _NOT_WALKED]
            found.extend(Path(folder, name) for name in names if name.endswith(".json"))
        for q in sorted(found):
            target, why = _walked_file(q, root)
            if why is not None:
                out.skipped.append((q, _link_relpath(q), why))
                continue
            try:
                st = os.stat(target)
            except OSError:
                continue  # gone since the walk
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                out.files.append(target)
    return out


def _walked_file(q: Path, root: str) -> tuple[Path, str | None]:
    """(the path to read, None) for a file found in the folder ``root``, or (q, why it is skipped)."""
    try:
        st = os.lstat(q)
    except OSError:
        return q, "gone while the folder was read"
    target = q
    if stat.S_ISLNK(st.st_mode):
        real = os.path.realpath(q)
        if os.path.commonpath([root, real]) != root:
            return q, "a symbolic link out of the folder, not followed"
        try:
            st = os.stat(real)
        except OSError:
            return q, "a broken symbolic link"
        target = Path(real)
    if not stat.S_ISREG(st.st_mode):
        return q, f"{file_kind(st.st_mode)}, not a regular file: not read"
    return target, None


def _link_relpath(q: Path) -> str:
    """A found file's path as reports name it, without following it if it is a link."""
    folder, _ = display_path(q.parent)
    return q.name if folder == "." else f"{folder}/{q.name}"


def _identity(path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _refuse_output(output: Path, what: str) -> LabellintError:
    return LabellintError(f"the output would overwrite {what}: write it to another file (nothing was written)",
                          cwd_relative(output))


def check(paths, opts: Options, console: Console | None = None) -> Result:
    """Lint ``paths``: each file on its own (its findings new since ``--diff-base`` where asked),
    then the rules that look across files, then the baseline; one ranking at the end."""
    console = console or Console(stderr=True)
    rules = registry.by_code()
    config_mod.check_cli_codes(rules, opts.select, opts.ignore, opts.extend_select)  # once, naming the option
    inputs = _discovered(list(paths))
    outputs, found_inputs = _outputs_over_inputs(inputs, opts)
    result = Result()
    for q, relpath, note in inputs.skipped:
        result.shown[relpath] = cwd_relative(q)
        result.files.append(FileOutcome(relpath, "skipped", note))
    _, plugin_warnings = registry.discover()
    result.notes.extend(plugin_warnings)
    run = _Run(opts, rules, result, _run_context(opts, console, result.notes))
    with progress.bar(console) as bar:
        task = bar.add_task("linting", total=len(inputs.files))
        run.context.progress = bar if progress.enabled(console) else None
        for path in inputs.files:
            bar.update(task, description=f"linting {cwd_relative(path)}")
            run.lint_file(path)
            bar.advance(task)
        run.cross_file()
    for ident, f in found_inputs.items():
        relpath = display_path(f)[0]
        if any(o.path == relpath and o.status != "skipped" for o in result.files):
            raise _refuse_output(outputs[ident], f"the dataset {cwd_relative(f)}, one of the files linted")
    result.rules = [run.enabled[c] for c in sorted(run.enabled)]
    # several configs: the strictest fail-on of the linted files wins
    result.fail_on = opts.fail_on or min(run.fail_levels, default=Severity.ERROR)
    if opts.baseline is not None:
        _apply_baseline(result, opts.baseline)
    result.findings = rank(result.findings)
    return result


def _discovered(paths: list) -> Inputs:
    inputs = discover(paths)
    if not inputs.files:  # a renamed or emptied folder must not pass as "0 files linted"
        shown = ", ".join(map(str, paths[:3])) + (", ..." if len(paths) > 3 else "")
        extra = f" ({len(inputs.skipped)} skipped: not regular files or links out of the folder)" if inputs.skipped else ""
        raise LabellintError(f"no JSON files found in {shown}{extra}")
    return inputs


def _outputs_over_inputs(inputs: Inputs, opts: Options) -> tuple[dict, dict]:
    """A report written over an input: the same file (a link or a hard link included) is refused
    before anything is read; a file found in a folder counts once it proves to be a dataset (a
    previous report or baseline found there may be replaced). (outputs, found inputs) by identity."""
    outputs = {ident: out for out in opts.outputs if (ident := _identity(out)) is not None}
    if not outputs:
        return outputs, {}
    for given in [*inputs.given, opts.predictions, opts.baseline, opts.config]:
        ident = _identity(given) if given is not None else None
        if ident in outputs:
            raise _refuse_output(outputs[ident], f"the input {cwd_relative(given)}")
    return outputs, {ident: f for f in inputs.files if f not in inputs.given and (ident := _identity(f)) in outputs}


def _run_context(opts: Options, console: Console, notes: list) -> RunContext:
    context = RunContext(images=opts.images, backbone=opts.backbone or os.environ.get("LABELLINT_BACKBONE") or None,
                         device=opts.device, batch_size=opts.batch_size, no_cache=opts.no_cache, console=console,
                         notes=notes)
    if opts.predictions is not None:  # read once per run, for the "predictions" pass
        from labellint.gate import predictions as predictions_mod

        context.predictions = predictions_mod.load_cached(opts.predictions)
    return context


def _apply_baseline(result: Result, path: Path) -> None:
    entries = baseline_mod.read(path)
    linted = {f.path for f in result.files if f.status == "linted"}
    kept, stale = baseline_mod.apply(result.findings, entries, linted)
    result.hidden += len(result.findings) - len(kept)
    result.findings, result.stale = kept, stale
    if stale:
        result.notes.append(f"{len(stale)} baseline entr{'y is' if len(stale) == 1 else 'ies are'} stale "
                            f"(fixed or gone): run `labellint baseline create` to prune {path}")


class _Run:
    """What one check run keeps between its files."""

    def __init__(self, opts: Options, rules: dict, result: Result, context: RunContext):
        self.opts, self.rules, self.result, self.context = opts, rules, result, context
        self.many: list = []  # (dataset, settings) kept for rules that look across files
        self.many_base: list = []  # the same at the --diff-base ref
        self.enabled: dict[str, object] = {}
        self.fail_levels: list = []
        self.executors: dict = {}  # RaySettings -> its executor
        if opts.ray:
            context.executor = self._executor(opts.ray, opts.ray_actors, opts.ray_batch)
        self.fixing = opts.fix or opts.diff
        # fingerprints the baseline accepts: never fixed
        self.accepted = ({e["fingerprint"] for e in baseline_mod.read(opts.baseline)}
                         if self.fixing and opts.baseline is not None else set())

    def _executor(self, address: str, actors: int = 0, batch: int = 0):
        """The Ray executor for these settings, one per run (labellint.distributed loads only here)."""
        from labellint import distributed

        settings = distributed.RaySettings(address, int(actors or 0), int(batch or 0))
        if settings not in self.executors:
            self.executors[settings] = distributed.executor(settings)
        return self.executors[settings]

    def lint_file(self, path: Path) -> None:
        """One file: its findings, or why it was skipped, or its one error."""
        result = self.result
        relpath, root = display_path(path)
        result.shown[relpath] = cwd_relative(path)
        try:
            self._lint(path, relpath, root)
        except NotCoco:
            result.files.append(FileOutcome(relpath, "skipped", "not a COCO file (no 'images' or 'annotations')"))
        except LabellintError as exc:
            if exc.path is None:
                exc.path = relpath
            if exc.one_line() not in result.errors:  # a broken config is one error, not one per file
                result.errors.append(exc.one_line())
                result.error_lines.append(line_for_people(exc, result.shown))
            result.files.append(FileOutcome(relpath, "error", exc.one_line()))

    def _lint(self, path: Path, relpath: str, root) -> None:
        opts, result = self.opts, self.result
        cfg = config_mod.load_for(path, self.rules, opts.config)
        self.fail_levels.append(cfg.fail_on)
        settings = config_mod.settings_for(cfg, self.rules, relpath, path, opts.select, opts.ignore,
                                           opts.extend_select)
        ds = load(path, relpath)
        context = self.context.for_file(path)
        if context.executor is None and cfg.ray is not None:  # ray = ... in [tool.labellint]
            context.executor = self._executor(cfg.ray, cfg.ray_actors, cfg.ray_batch)
        base = _base(path, relpath, root, opts.diff_base, settings, self.context) if opts.diff_base else None
        if self.fixing:
            from labellint.fix import runner

            exclude = self.accepted | (base[0] if base else set())
            ds, findings, skipped, record = runner.fix_dataset(ds, settings, context, opts.unsafe_fixes, exclude)
            if record.changed and not opts.diff:
                atomic_write(path, record.fixed)
            result.fixes.append(record)  # after the write: a failed one is not reported as fixed
        else:
            findings, skipped = engine.lint_file(ds, settings, context)
        if engine.wants_many(settings):
            self.many.append((ds, settings))
        for code in skipped:
            needs = tuple(n for n in self.rules[code].requires if not self.context.has(n))
            result.skipped_needs[code] = needs
            result.skipped_rules[code] = skip_reason(needs)
        if opts.diff_base:
            before, base_ds = base if base else (set(), None)
            findings = self._new_since_base(findings, before)
            if base_ds is not None and engine.wants_many(settings):
                self.many_base.append((base_ds, settings))
        for r in settings.rules:
            self.enabled[r.code] = r
        result.findings.extend(findings)
        result.sources[relpath] = path
        if opts.keep_datasets:
            result.datasets[relpath] = ds
        result.files.append(FileOutcome(relpath, "linted", counts={
            "images": len(ds.images), "annotations": len(ds.annotations), "categories": len(ds.categories)}))

    def _new_since_base(self, findings: list, before: set) -> list:
        """The findings whose fingerprints the base did not have (a rule that failed always counts)."""
        new = [f for f in findings if f.fingerprint not in before or f.rule_failed]
        self.result.hidden += len(findings) - len(new)
        return new

    def cross_file(self) -> None:
        """The rules that look across the files linted together (only what is new since the base)."""
        if len(self.many) < 2:
            return
        cross = engine.lint_many(self.many, self.context)
        if self.opts.diff_base:
            before = ({f.fingerprint for f in engine.lint_many(self.many_base, self.context)}
                      if len(self.many_base) > 1 else set())
            cross = self._new_since_base(cross, before)
        self.result.findings.extend(cross)


def _base(path, relpath, root, ref, settings, context) -> tuple[set[str], object] | None:
    """The fingerprints of the file's findings at the git ref ``ref`` and its Dataset there
    (None when the file did not exist there or could not be linted: everything is new)."""
    if root is None:
        raise LabellintError("--diff-base needs the file to be inside a git repository", relpath)
    git_rel = path.resolve().relative_to(root).as_posix()
    old = baseline_mod.git_show(root, ref, git_rel)
    if old is None:
        return None
    try:
        base_ds = load_bytes(old, relpath)
    except (NotCoco, InputError):
        return None
    base_findings, _ = engine.lint_file(base_ds, settings, context.for_file(path))
    return {f.fingerprint for f in base_findings}, base_ds
