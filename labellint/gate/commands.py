"""Click commands of the companion: ``evaluate``, ``train`` and ``gate`` (argument handling only).

cli.py adds them to the main group. torch is imported only when a command trains.

``python -m labellint evaluate ...`` runs :func:`main_alone`, which does not import cli.py (rich,
the rules engine, the report formats): about 0.1 s less start-up for a command whose whole run
on a large detection set is under a second.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from labellint.errors import LabellintError
from labellint.guard import GuardedGroup

#: as cli.py's main group has them (help on -h, 100 columns)
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _console(stderr: bool = False):
    """The console cli.py makes (same settings), without importing cli.py."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    is_tty = stream.isatty()
    return Console(file=stream, width=None if is_tty else 200, soft_wrap=not is_tty,
                   highlight=False, emoji=False, markup=False)


def _plain(render, result) -> str:
    """What a rich renderer prints, as plain text (for --output-file)."""
    import os

    from rich.console import Console

    with open(os.devnull, "w") as sink:
        console = Console(record=True, width=200, file=sink, markup=False, highlight=False)
        render(result, console)
        return console.export_text()


def _emit(text: str, output_file: Path | None) -> None:
    if output_file is not None:
        from labellint.fsutil import atomic_write

        atomic_write(output_file, text)
    else:
        sys.stdout.write(text)


@click.command("evaluate")
@click.argument("gt", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("pred", type=click.Path(path_type=Path))
@click.option("--iou-type", type=click.Choice(["bbox", "segm"]), default="bbox", show_default=True)
@click.option("--output-format", "-f", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--output-file", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report here (atomically) instead of standard output.")
@click.option("--backend", type=click.Choice(["hotcoco", "pycocotools"]), default="hotcoco", show_default=True,
              help="hotcoco is fast; pycocotools is the reference implementation.")
def evaluate_cmd(gt, pred, iou_type, output_format, output_file, backend):
    """COCO-style evaluation of PRED (COCO results, or a RUN/ folder of `labellint train`) on GT.

    Prints the 12 standard numbers in pycocotools order and AP, AP50 and AR@100 per class.
    """
    from labellint.gate import evaluate as ev
    from labellint.gate.runs import predictions_path

    result = ev.evaluate(gt, predictions_path(pred), iou_type, backend)
    if output_format == "json":
        _emit(ev.render_json(result), output_file)
    else:
        if output_file is not None:
            _emit(_plain(ev.render_text, result), output_file)
        else:
            ev.render_text(result, _console())
    for w in result.warnings:
        click.echo(f"labellint: warning: {w}", err=True)


def _train_options(f):
    """The recipe: the same options for `train` and `gate --retrain`."""
    from labellint.gate.config import MODELS, TrainConfig

    d = TrainConfig()
    options = [
        click.option("--model", type=click.Choice(MODELS), default=d.model, show_default=True),
        click.option("--epochs", type=click.IntRange(1), default=d.epochs, show_default=True),
        click.option("--batch-size", type=click.IntRange(1), default=d.batch_size, show_default=True),
        click.option("--image-size", type=click.IntRange(32), default=d.image_size, show_default=True,
                     help="Shorter image side the model sees (longer side at most 5/3 of it)."),
        click.option("--lr", type=click.FloatRange(0, min_open=True), default=d.lr, show_default=True,
                     help="Peak learning rate (SGD, momentum 0.9; warm-up, then cosine decay)."),
        click.option("--seed", type=int, default=d.seed, show_default=True),
        click.option("--device", default="auto", show_default=True,
                     help="auto (CUDA when available), cpu, cuda or cuda:N."),
        click.option("--backbone-weights", type=click.Path(dir_okay=False, path_type=Path),
                     help="ImageNet weights for the backbone (a torchvision state_dict file)."),
        click.option("--download-weights", is_flag=True,
                     help="Download the ImageNet backbone weights into the torch hub cache when not there."),
        click.option("--rpn-proposals", type=click.IntRange(1), default=d.rpn_proposals, show_default=True,
                     help="Region proposals kept per image in training (torchvision: 2000)."),
        click.option("--roi-batch", type=click.IntRange(1), default=d.roi_batch, show_default=True,
                     help="Sampled regions per image for the box head (torchvision: 512)."),
        click.option("--workers", type=click.IntRange(0), default=d.workers, show_default=True,
                     help="Data loader processes (0: load in the training process)."),
        click.option("--threads", type=click.IntRange(0), default=d.threads, show_default=True,
                     help="CPU threads for torch (0: its default). On a machine busy with other work, 1 is "
                          "often much faster."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _config(model, epochs, batch_size, image_size, lr, seed, device, backbone_weights, download_weights,
            rpn_proposals, roi_batch, workers, threads):
    from labellint.gate.config import TrainConfig

    return TrainConfig(model=model, epochs=epochs, batch_size=batch_size, image_size=image_size, lr=lr, seed=seed,
                       device=device, backbone_weights=str(backbone_weights) if backbone_weights else None,
                       download_weights=download_weights, rpn_proposals=rpn_proposals, roi_batch=roi_batch,
                       workers=workers, threads=threads)


@click.command("train")
@click.argument("train_file", metavar="TRAIN.json", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--images", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Image root: file_name values are resolved under it.")
@click.option("--val", "val_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Validation COCO file (a fixed benchmark split): predictions and metrics are on it. "
                   "Required unless --folds.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Run folder: model.pt, predictions.json, metrics.json, config.json (with --folds: "
                   "fold-1/ ... fold-K/, folds.json and the merged predictions.json).")
@click.option("--predict", "predict_files", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Also write predictions on this COCO file (RUN/predictions-NAME.json), e.g. for "
                   "`labellint check --predictions`. Repeatable.")
@click.option("--folds", type=click.IntRange(2), default=None,
              help="Cross-validate: K models, each trained on K-1 folds of TRAIN.json's images and predicting "
                   "the fold it did not see; OUT/predictions.json holds every image's out-of-fold predictions "
                   "for `labellint check --predictions`. A killed run continues at its fold.")
@_train_options
def train_cmd(train_file, images, val_file, out, predict_files, folds, **recipe):
    """Train a torchvision detector on TRAIN.json and evaluate it on --val (or cross-validate with --folds)."""
    from labellint.gate import train as train_mod

    config = _config(**recipe)
    if folds is not None:
        if val_file is not None or predict_files:
            raise click.UsageError("--folds predicts the held-out folds of TRAIN.json: leave out --val and --predict")
        from labellint.gate import folds as folds_mod

        manifest = folds_mod.cross_validate(train_file, images, out, config, folds, console=_console(stderr=True))
        aps = ", ".join(f"{f['AP50']:.3f}" for f in manifest["per_fold"])
        click.echo(f"wrote {out / 'predictions.json'}: {manifest['predictions']} out-of-fold predictions from "
                   f"{folds} models (held-out AP50 per fold against these labels: {aps})")
        return
    if val_file is None:
        raise click.UsageError("--val is required (or --folds K to cross-validate)")
    run = train_mod.train(train_file, val_file, images, out, config, console=_console(stderr=True),
                          predict_files=predict_files)
    m = run.metrics
    click.echo(f"wrote {out}: AP {m['bbox']['stats'][0]:.3f}, AP50 {m['bbox']['stats'][1]:.3f}, "
               f"AR@100 {m['bbox']['stats'][8]:.3f} on {val_file} ({run.seconds:.0f}s)")


@click.command("gate")
@click.option("--gt", "--val", "gt", type=click.Path(dir_okay=False, path_type=Path),
              help="Ground truth of the fixed benchmark split (the val file).")
@click.option("--baseline", type=click.Path(path_type=Path), help="Baseline predictions, or a RUN/ folder.")
@click.option("--candidate", type=click.Path(path_type=Path), help="Candidate predictions, or a RUN/ folder.")
@click.option("--retrain", nargs=2, type=click.Path(dir_okay=False, path_type=Path),
              metavar="BASE.json CANDIDATE.json",
              help="Train the same recipe on both annotation files, then gate (needs --val and --images).")
@click.option("--images", type=click.Path(file_okay=False, path_type=Path), help="Image root (with --retrain).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Runs are cached under CACHE/runs/ by content hash (with --retrain). Default: the user's cache "
                   "folder (~/.cache/labellint on Linux, or $LABELLINT_CACHE_DIR); never inside the data.")
@click.option("--max-drop", type=click.FloatRange(0), default=0.01, show_default=True,
              help="Largest drop of the metric that is allowed (absolute, e.g. 0.01 = one AP point).")
@click.option("--metric", type=click.Choice(["AP", "AP50", "AP75", "AR100"]), default="AP", show_default=True)
@click.option("--classes", multiple=True,
              help="Also gate these classes (names or ids, comma-separated; 'all' for every class).")
@click.option("--bootstrap", type=click.IntRange(0), default=1000, show_default=True,
              help="Paired bootstrap samples over images (0: compare point estimates only).")
@click.option("--confidence", type=click.FloatRange(0.5, 1.0, max_open=True), default=0.95, show_default=True)
@click.option("--bootstrap-seed", type=int, default=42, show_default=True)
@click.option("--iou-type", type=click.Choice(["bbox", "segm"]), default="bbox", show_default=True)
@click.option("--output-format", "-f", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True)
@click.option("--output-file", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report here (atomically); the text report still goes to the terminal.")
@_train_options
def gate_cmd(gt, baseline, candidate, retrain, images, cache_dir, max_drop, metric, classes, bootstrap, confidence,
             bootstrap_seed, iou_type, output_format, output_file, **recipe):
    """Fail (exit 1) when the candidate's metric drops more than --max-drop with confidence.

    \b
    Two evaluations on the same images:
      labellint gate --gt VAL.json --baseline A.json --candidate B.json
      labellint gate --gt VAL.json --baseline RUN_A/ --candidate RUN_B/
    The whole loop (train both with one recipe and seed, evaluate on VAL, gate):
      labellint gate --retrain BASE.json CANDIDATE.json --val VAL.json --images DIR
    """
    from labellint.gate import compare

    if gt is None:
        raise LabellintError("missing --gt/--val: the ground truth both are evaluated on")
    if retrain:
        if baseline or candidate:
            raise LabellintError("use either --retrain BASE.json CANDIDATE.json or --baseline/--candidate, not both")
        if images is None:
            raise LabellintError("--retrain needs --images DIR (the image root of the annotation files)")
        from labellint.gate import retrain as retrain_mod

        baseline, candidate = retrain_mod.retrain_pair(retrain[0], retrain[1], gt, images, _config(**recipe),
                                                       cache_dir, console=_console(stderr=True))
    elif baseline is None or candidate is None:
        raise LabellintError("give --baseline and --candidate (prediction files or RUN/ folders), or --retrain")
    result = compare.gate(gt, baseline, candidate, max_drop=max_drop, metric=metric, classes=_split(classes),
                          n_bootstrap=bootstrap, confidence=confidence, seed=bootstrap_seed, iou_type=iou_type)
    rendered = None
    if output_format == "json":
        rendered = compare.render_json(result)
    elif output_format == "markdown":
        rendered = compare.render_markdown(result)
    if output_file is not None:
        from labellint.fsutil import atomic_write

        atomic_write(output_file, rendered if rendered is not None else _plain(compare.render_text, result))
    if rendered is not None and output_file is None:
        sys.stdout.write(rendered)
    else:
        compare.render_text(result, _console())
    sys.exit(result.exit_code)


def _split(values) -> list[str]:
    out: list[str] = []
    for v in values:
        out.extend(c.strip() for c in v.split(",") if c.strip())
    return out


COMMANDS = (evaluate_cmd, train_cmd, gate_cmd)
#: commands that ``python -m labellint`` runs without importing cli.py
ALONE = {"evaluate": evaluate_cmd}


def main_alone(args: list[str]) -> None:
    """``labellint NAME ARGS...`` for a command in :data:`ALONE`, as the full command line runs it."""
    group = GuardedGroup(name="labellint", commands=[ALONE[args[0]]], context_settings=CONTEXT_SETTINGS)
    group.main(args, prog_name="labellint")
