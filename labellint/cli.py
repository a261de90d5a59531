"""Command line: argument handling only; the work lives in run.py, registry.py and report/."""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
from dataclasses import replace
from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from labellint import __version__, registry
from labellint.errors import LabellintError
from labellint.guard import GuardedGroup
from labellint.findings import Severity
from labellint.fsutil import atomic_write, line_for_people
from labellint.report import registry as reporters
from labellint.report import text as text_report
from labellint.report.ruledoc import print_rule_doc, rules_markdown
from labellint.report.safe import clean
from labellint.run import Options, Result, check as run_check


def _console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    is_tty = stream.isatty()
    return Console(file=stream, width=None if is_tty else 200, soft_wrap=not is_tty,
                   highlight=False, emoji=False, markup=False)


def _codes(values) -> list[str]:
    out = []
    for v in values:
        out.extend(c.strip() for c in v.split(",") if c.strip())
    return out


class _FormatChoice(click.Choice):
    """The --output-format values: the registered reporters, read when the option is parsed or
    its help shown, so a reporter registered after this module was imported is offered too."""

    def __init__(self):  # not click.Choice's: it would keep the choices of the moment
        self.case_sensitive = True

    @property
    def choices(self) -> tuple[str, ...]:
        return reporters.names()


def _severity(ctx, param, value):
    if value is None:
        return None
    try:
        return Severity.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _extra_reports(ctx, param, values) -> tuple:
    """--report FORMAT:FILE values as (reporter, path) pairs; a path may itself hold colons."""
    out, seen = [], set()
    for value in values:
        name, sep, path = value.partition(":")
        if not sep or not path:
            raise click.BadParameter(f"{value!r} is not FORMAT:FILE (e.g. sarif:labellint.sarif)")
        if name not in reporters.names():
            raise click.BadParameter(f"unknown format {name!r} (one of {', '.join(reporters.names())})")
        if path in seen:
            raise click.BadParameter(f"{path} is named twice")
        seen.add(path)
        out.append((reporters.get(name), Path(path)))
    return tuple(out)


_Group = GuardedGroup


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="labellint")
def cli():
    """A label-quality linter for COCO object-detection datasets."""


_common = [
    click.option("--select", multiple=True, help="Only these rule codes or prefixes (comma-separated; ALL)."),
    click.option("--ignore", multiple=True, help="Skip these rule codes or prefixes."),
    click.option("--extend-select", multiple=True, help="Add these codes to the configured selection."),
    click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
                 help="Use this labellint.toml/pyproject.toml instead of searching upwards."),
    click.option("--images", type=click.Path(file_okay=False, path_type=Path),
                 help="Image root for rules that read pictures."),
]


def common(f):
    for option in reversed(_common):
        f = option(f)
    return f


def _options(select, ignore, extend_select, config_file, images, **kw) -> Options:
    return Options(select=_codes(select) or None, ignore=tuple(_codes(ignore)),
                   extend_select=tuple(_codes(extend_select)), config=config_file, images=images, **kw)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@common
@click.option("--output-format", "-f", type=_FormatChoice(), default="text", show_default=True)
@click.option("--output-file", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report here (atomically); the text report still goes to the terminal.")
@click.option("--report", "extra_reports", multiple=True, metavar="FORMAT:FILE", callback=_extra_reports,
              help="Also write a FORMAT report to FILE from the same run (repeatable), e.g. "
                   "--report sarif:labellint.sarif --report markdown:summary.md.")
@click.option("--fail-on", callback=_severity, help="Exit 1 on findings at or above: error, warning, info.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even with findings (errors reading input still exit 2).")
@click.option("--statistics", is_flag=True, help="Only the table of counts by rule.")
@click.option("--baseline", type=click.Path(dir_okay=False, path_type=Path), help="Hide findings listed in this baseline.")
@click.option("--diff-base", metavar="GITREF", help="Report only findings new since this git ref (e.g. origin/main).")
@click.option("--limit", default=50, show_default=True, help="Findings shown in the text and markdown reports (0: all).")
@click.option("--backbone", type=click.Path(dir_okay=False, path_type=Path), envvar="LABELLINT_BACKBONE",
              help="ONNX embedding model for the LL5xx rules (default: $LABELLINT_BACKBONE).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where the backbone runs (auto: CUDA when onnxruntime-gpu sees a GPU).")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=32, show_default=True,
              help="Crops per backbone call.")
@click.option("--no-cache", is_flag=True,
              help="Neither read nor write the image cache (the user's cache folder, ~/.cache/labellint on "
                   "Linux, or $LABELLINT_CACHE_DIR; never one inside the linted tree).")
@click.option("--predictions", type=click.Path(dir_okay=False, path_type=Path),
              help="A detector's COCO results on these images, for the model-based LL6xx rules.")
@click.option("--ray", "ray_address", metavar="auto|ADDRESS",
              help="Read the images and run the backbone on a Ray cluster (the ray extra): auto connects to "
                   "$RAY_ADDRESS, else starts a local Ray; HOST:PORT connects there. The images must be at the "
                   "same path on every node (a shared file system).")
@click.option("--ray-actors", type=click.IntRange(1, 100_000), help="Backbone actors on the cluster "
              "(default: one per GPU, else one per CPU).")
@click.option("--ray-batch", type=click.IntRange(1, 100_000), help="Images per batch on the cluster "
              "(a CPU task's share, a backbone call's; default 16, fewer when the images are few).")
@click.option("--fix", is_flag=True, help="Apply the fixes rated safe and write the files back (atomically; "
              "untouched bytes stay as they were). The report then shows what remains.")
@click.option("--unsafe-fixes", is_flag=True, help="With --fix or --diff, also the fixes rated unsafe "
              "(relabelling, deleting entries); implies --fix without --diff.")
@click.option("--diff", "show_diff", is_flag=True, help="Print what --fix would change as a diff and write nothing "
              "(exit 1 when something would change).")
def check(paths, select, ignore, extend_select, config_file, images, output_format, output_file, extra_reports,
          fail_on, exit_zero, statistics, baseline, diff_base, limit, backbone, device, batch_size, no_cache, predictions,
          ray_address, ray_actors, ray_batch, fix, unsafe_fixes, show_diff):
    """Lint COCO files (directories are searched for *.json)."""
    opts = _options(select, ignore, extend_select, config_file, images, fail_on=fail_on, baseline=baseline,
                    diff_base=diff_base, backbone=backbone, device=device, batch_size=batch_size,
                    no_cache=no_cache, predictions=predictions, ray=ray_address, ray_actors=ray_actors or 0,
                    ray_batch=ray_batch or 0)
    # refused when one is an input
    opts.outputs = ((output_file,) if output_file is not None else ()) + tuple(path for _, path in extra_reports)
    opts.diff = show_diff
    opts.fix = (fix or unsafe_fixes) and not show_diff
    opts.unsafe_fixes = unsafe_fixes
    if show_diff:
        return _diff(paths, opts)
    reporter = reporters.get(output_format)
    if output_file is not None and any(path == output_file for _, path in extra_reports):
        raise click.UsageError(f"{output_file} is both --output-file and a --report file")
    if reporter.output == reporters.FILE and output_file is None:
        raise click.UsageError(f"--output-format {reporter.name} needs --output-file {reporter.file_hint}")
    if any(r.keep_datasets for r in (reporter, *(extra for extra, _ in extra_reports))):
        opts.keep_datasets = True
    try:
        result = run_check(paths, opts, _console(stderr=True))
    except LabellintError as exc:
        if not reporter.owns_stdout or output_file is not None:
            raise  # the one error line; a report file is never written for a run that did not start
        # a machine format on stdout is always one document: CI reads it, the error included
        result = Result(errors=[exc.one_line()], error_lines=[line_for_people(exc)])
    code = result.exit_code(exit_zero)
    if result.errors:  # exit 2: one line per error on stderr and no text report (the machine formats carry them)
        _print_errors(result)
    to_stdout = output_file is None and reporter.output == reporters.STDOUT
    document = None
    options = reporters.ReportOptions(exit_code=code, limit=limit, statistics=statistics, images=opts.images,
                                      console=_console(stderr=True))
    # the text report is never made for a run with errors: their lines on stderr stand for it
    if (to_stdout or output_file is not None) and (reporter.output != reporters.CONSOLE or not result.errors):
        document = reporter.render(result, replace(options, output_file=output_file))
    if output_file is not None and document is not None:
        _write_report(reporter, document, output_file, result)
    for extra, path in extra_reports:
        if extra.output != reporters.CONSOLE or not result.errors:
            _write_report(extra, extra.render(result, replace(options, output_file=path)), path, result)
    if opts.fix and (not result.errors or any(r.changed for r in result.fixes)):  # files were rewritten: say so
        text_report.fix_summary(result, _console(stderr=True), written=True)
    if to_stdout:
        sys.stdout.write(document)
    if not result.errors and not (to_stdout and reporter.owns_stdout):
        text_report.render(result, _console(), limit, statistics)
    _leave(code)


def _write_report(reporter, document: str, path: Path, result) -> None:
    atomic_write(path, document)
    if reporter.written:
        n = len(result.findings)
        click.echo(f"{reporter.written} written to {path} ({n} finding{'s' * (n != 1)})", err=True)


def _leave(code: int) -> None:
    """End a check run. From the console entry point (not when the CLI runs inside another
    program, as in the tests) and with no other thread alive: flush, run the atexit handlers,
    and leave with ``os._exit``, skipping the interpreter's teardown, which frees every object of
    the run one by one (tens of thousands of findings, the dataset's columns) to no end."""
    if fast_exit and threading.active_count() == 1:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):  # a closed or broken stdout: the interpreter's own exit reports it
            sys.exit(code)
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _print_errors(result) -> None:
    """A run's input errors as the CLI promises them: one line each on stderr, paths relative to
    the current directory (``labellint: error: FILE:LINE:COL: message``)."""
    for line in result.error_lines or result.errors:
        click.echo(f"labellint: error: {clean(line)}", err=True)


def _diff(paths, opts) -> None:
    """--diff: the fixes as a unified diff on stdout, the summary on stderr; nothing written."""
    from labellint.fix import runner

    result = run_check(paths, opts, _console(stderr=True))
    if result.errors:  # the error lines and nothing else, as for `check`
        _print_errors(result)
        sys.exit(2)
    for record in result.fixes:
        if record.changed:
            sys.stdout.write(runner.unified_diff(record))
    text_report.fix_summary(result, _console(stderr=True), written=False)
    sys.exit(1 if any(r.changed for r in result.fixes) else 0)


@cli.command("apply")
@click.argument("decisions_file", metavar="DECISIONS.json", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("dataset", metavar="DATASET.json", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the result here instead of over DATASET (atomically either way).")
@click.option("--force", is_flag=True, help="Apply decisions about annotations that changed since the report was made.")
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
@click.option("--baseline", type=click.Path(dir_okay=False, path_type=Path),
              help="Add the findings decided 'keep' to this baseline file, so they are not reported again.")
def apply_cmd(decisions_file, dataset, output, force, dry_run, baseline):
    """Apply review decisions (the gallery's download, or a Label Studio JSON export of the
    label-studio report's tasks) to a COCO file: relabels, deletions, box edits, new boxes."""
    from labellint.coco import NotCoco, load
    from labellint.fix import decisions as decisions_mod
    from labellint.fix import labelstudio
    from labellint.fsutil import cwd_relative, display_path
    from labellint.report.safe import clean

    doc = decisions_mod.load(decisions_file)
    review = labelstudio.read(doc, str(decisions_file)) if labelstudio.is_export(doc) else None
    items = decisions_mod.parse(doc, str(decisions_file))[0] if review is None else []
    relpath, _ = display_path(dataset)  # what the decisions name (repository-relative)
    shown = cwd_relative(dataset)  # what people read
    mine, note = decisions_mod.for_file(items, relpath)
    try:
        ds = load(dataset, shown)
    except NotCoco:
        raise LabellintError("not a COCO annotation file (no 'images' or 'annotations'): nothing to apply to",
                             shown) from None
    if review is None:
        plan = decisions_mod.plan(ds, mine, force)
    else:
        plan, note = labelstudio.plan(ds, review, relpath, force)
    out = _console()
    if note:
        out.print(Text("note: " + clean(note), style="dim"))
    if plan.conflicts:
        for line in plan.conflicts[:20]:
            click.echo(f"labellint: conflict: {clean(line)}", err=True)
        more = f" (and {len(plan.conflicts) - 20} more)" if len(plan.conflicts) > 20 else ""
        click.echo(f"labellint: error: {shown}: {len(plan.conflicts)} decision(s){more} do not match the file "
                   "as it is now; nothing was written. Re-run the report and review again, or pass --force.", err=True)
        sys.exit(2)
    target = output or dataset
    if not dry_run and (plan.edits or output is not None):  # written first: a failed write prints no changes
        atomic_write(target, decisions_mod.apply(ds, plan, dataset))  # the file's byte-order mark kept
    for line in plan.changes:
        out.print(Text(clean(line)))
    for line in plan.already:
        out.print(Text(clean(line) + " (skipped)", style="dim"))
    if baseline is not None and plan.kept and not dry_run:
        from labellint import baseline as baseline_mod

        added = baseline_mod.add_entries(baseline, [
            {"fingerprint": d.fingerprint, "code": d.code or "", "path": d.path or relpath, "pointer": "",
             "message": "kept in review"} for d in plan.kept if d.fingerprint])
        out.print(Text(f"{added} kept finding{'s' * (added != 1)} added to {baseline}", style="dim"))
    verb = "would change" if dry_run else "changed"
    n = len(plan.changes)
    summary = (f"{verb} {n} annotation{'s' * (n != 1)} in {target}" if n else f"nothing to change in {shown}")
    extra = []
    if plan.already:
        extra.append(f"{len(plan.already)} already applied")
    if plan.kept:
        extra.append(f"{len(plan.kept)} kept as they are")
    if review is not None and review.unreviewed:
        extra.append(f"{review.unreviewed} task{'s' * (review.unreviewed != 1)} not reviewed")
    out.print(Text(summary + (f" ({', '.join(extra)})" if extra else ""), style="bold"))


@cli.command("rules")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
def rules_cmd(fmt):
    """List every rule: code, name, default severity, fix safety."""
    rules = registry.all_rules()
    if fmt == "json":
        click.echo(json.dumps([{"code": r.code, "name": r.name, "severity": str(r.severity), "fix": r.fix,
                                "summary": r.summary, "options": r.options, "origin": r.origin} for r in rules],
                              indent=2))
    elif fmt == "markdown":
        click.echo(rules_markdown(rules), nl=False)
    else:
        from rich.table import Table  # imported here: it costs start-up time of every `check`

        table = Table(show_edge=False, header_style="bold")
        for col in ("code", "name", "severity", "fix", "summary"):
            table.add_column(col)
        for r in rules:
            table.add_row(r.code, r.name, str(r.severity), r.fix, Text(r.summary))
        _console().print(table)


@cli.command("rule")
@click.argument("code")
def rule_cmd(code):
    """Print a rule's documentation and options."""
    rules = registry.by_code()
    rule = rules.get(code.upper()) or next((r for r in rules.values() if r.name == code), None)
    if rule is None:
        import difflib

        close = difflib.get_close_matches(code.upper(), list(rules), n=1)
        raise LabellintError(f"unknown rule '{code}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    console = _console()
    console.print(Text(f"{rule.code} {rule.name}", style="bold"))
    console.print(Text(f"default severity: {rule.severity} · fix: {rule.fix} · from: {rule.origin}"))
    opts = ", ".join(f"{k} = {v!r}" for k, v in rule.options.items()) or "none"
    console.print(Text(f"options: {opts}\n"))
    print_rule_doc(console, rule.doc)


@cli.group("baseline", cls=_Group)
def baseline_group():
    """Accept the current findings so that only new ones fail."""


@baseline_group.command("create")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@common
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path(".labellint-baseline.json"), show_default=True)
def baseline_create(paths, select, ignore, extend_select, config_file, images, output):
    """Write the fingerprints of the current findings to a baseline file (commit it)."""
    from labellint import baseline as baseline_mod

    opts = _options(select, ignore, extend_select, config_file, images, outputs=(output,))  # refused when an input
    result = run_check(paths, opts, _console(stderr=True))
    if result.errors:
        _print_errors(result)
        sys.exit(2)
    n = baseline_mod.write(output, result.findings)
    click.echo(f"wrote {n} finding{'s' * (n != 1)} to {output}")


@cli.command("demo")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo"))
@click.option("--images", "n_images", default=40, show_default=True, help="Number of images to draw.")
@click.option("--seed", default=0, show_default=True)
@click.option("--val-images", default=0, show_default=True,
              help="Also draw this many clean images as OUT/val.json (a benchmark split for train and gate).")
def demo_cmd(out, n_images, seed, val_images):
    """Build a small demo dataset (shapes, with seeded label defects) in OUT."""
    from labellint import demo

    path = demo.write(out, n_images, seed, val_images)
    click.echo(f"wrote {path} ({n_images} image{'s' * (n_images != 1)} under {out / 'images'}); "
               f"injected defects: {out / 'DEFECTS.md'}")
    if val_images:
        click.echo(f"wrote {out / 'val.json'} ({val_images} clean image{'s' * (val_images != 1)} for evaluation)")


@cli.group("backbone", cls=_Group)
def backbone_group():
    """Embedding backbones for the LL5xx rules."""


@backbone_group.command("export")
@click.option("--arch", required=True, help="torchvision ImageNet classifier, e.g. resnet50, mobilenet_v3_large.")
@click.option("--weights", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A state_dict file (.pth) to load instead of torchvision's ImageNet download.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the ONNX model (default: ARCH-embed.onnx).")
@click.option("--size", default=224, show_default=True, help="Input height and width.")
def backbone_export(arch, weights, output, size):
    """Export a torchvision model, classifier removed, as an embedding ONNX with its preprocessing."""
    from labellint.embed import export

    out = export.export(arch, weights, output or Path(f"{arch}-embed.onnx"), size=size)
    click.echo(f"wrote {out} (use it with --backbone {out})")


from labellint.gate.commands import COMMANDS as _GATE_COMMANDS  # noqa: E402  (evaluate, train, gate; torch stays lazy)

for _command in _GATE_COMMANDS:
    cli.add_command(_command)


fast_exit = False  # set by the console entry point (labellint.__main__), see _leave


def main():
    cli(prog_name="labellint")
