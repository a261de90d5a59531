"""``labellint gate``: candidate against baseline on one ground truth, with paired bootstrap intervals.

Both prediction sets are evaluated on the same images. hotcoco's ``compare`` resamples the
images (the same resample for both models: a paired bootstrap) and gives an interval for the
difference of each of the 12 summary metrics. It has no intervals per class, only point deltas;
so a gated class is compared by restricting both evaluations to that category
(``params.cat_ids = [c]``) and running the same paired bootstrap on them: the resampling unit
stays the image, and that class's AP is the summary AP of the restricted evaluation.

Verdict, for the overall metric and each gated class: **fail** when the upper end of the
interval for (candidate - baseline) is below ``-max_drop``, i.e. the drop exceeds what is
allowed with the chosen confidence; **warn** when the point estimate drops more than allowed but
the interval does not show it with confidence; otherwise **pass**. Without bootstrap
(``--bootstrap 0``) the point estimate decides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from labellint.errors import LabellintError
from labellint.gate import evaluate as ev_mod
from labellint.gate import predictions as predictions_mod
from labellint.gate import runs

METRIC_KEYS = {"AP": "AP", "AP50": "AP50", "AP75": "AP75", "AR100": "AR100"}


@dataclass
class Row:
    scope: str  # "overall" or the class name
    category_id: int | None
    baseline: float
    candidate: float
    delta: float
    lower: float | None = None
    upper: float | None = None
    verdict: str = "pass"  # pass, warn, fail or n/a

    def to_dict(self) -> dict:
        return {"scope": self.scope, "category_id": self.category_id, "baseline": self.baseline,
                "candidate": self.candidate, "delta": self.delta, "ci_lower": self.lower, "ci_upper": self.upper,
                "verdict": self.verdict}


@dataclass
class GateResult:
    gt: str
    baseline: str
    candidate: str
    metric: str
    max_drop: float
    confidence: float
    n_bootstrap: int
    n_images: int
    rows: list  # gated: overall first, then the selected classes
    overall: dict  # every summary metric: {key: {baseline, candidate, delta, ci_lower, ci_upper}}
    per_class: list  # point AP of every class: {id, name, baseline, candidate, delta}
    warnings: list = field(default_factory=list)

    @property
    def failed(self) -> list:
        return [r for r in self.rows if r.verdict == "fail"]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    @property
    def verdict(self) -> str:
        return "fail" if self.failed else "pass"

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "exit_code": self.exit_code, "metric": self.metric,
                "max_drop": self.max_drop, "confidence": self.confidence, "bootstrap": self.n_bootstrap,
                "images": self.n_images, "ground_truth": self.gt, "baseline": self.baseline,
                "candidate": self.candidate, "rows": [r.to_dict() for r in self.rows], "overall": self.overall,
                "per_class": self.per_class, "warnings": self.warnings}


def _verdict(delta: float, lower, upper, max_drop: float, a: float, b: float) -> str:
    if a < 0 or b < 0:  # -1: no ground truth for this metric
        return "n/a"
    if upper is not None:
        if upper < -max_drop:
            return "fail"
        return "warn" if delta < -max_drop else "pass"
    return "fail" if delta < -max_drop else "pass"


def _resolve_classes(names: list[str], gt: ev_mod.GroundTruth) -> list[int]:
    if not names:
        return []
    if any(n.lower() == "all" for n in names):
        return sorted(gt.category_names)
    by_name = {}
    for cid, name in gt.category_names.items():
        by_name.setdefault(name, cid)
        by_name.setdefault(name.lower(), cid)
    out = []
    for n in names:
        if n in by_name or n.lower() in by_name:
            cid = by_name.get(n, by_name.get(n.lower()))
        elif n.lstrip("-").isdigit() and int(n) in gt.category_names:
            cid = int(n)
        else:
            import difflib

            close = difflib.get_close_matches(n, list(gt.category_names.values()), n=1)
            raise LabellintError(f"--classes: no class '{n}' in {gt.path}" +
                                 (f" (did you mean '{close[0]}'?)" if close else ""))
        if cid not in out:
            out.append(cid)
    return out


def _run_warnings(label: str, path: Path, gt_sha: str) -> tuple[list[str], str | None]:
    cfg = runs.read_config(path) if Path(path).is_dir() else None
    if cfg is None:
        return [], None
    out = []
    val = cfg.get("val", {})
    if val.get("sha256") and val["sha256"] != gt_sha:
        out.append(f"the {label} run {path} predicted on another val file ({val.get('path')}) than the ground "
                   "truth given here: the comparison is not on the same images' labels")
    return out, cfg.get("recipe_hash")


def gate(gt, baseline, candidate, *, max_drop: float = 0.01, metric: str = "AP", classes=(),
         n_bootstrap: int = 1000, confidence: float = 0.95, seed: int = 42, iou_type: str = "bbox") -> GateResult:
    hotcoco = ev_mod._hotcoco()
    if metric not in METRIC_KEYS:
        raise LabellintError(f"unknown metric {metric!r} (use {', '.join(METRIC_KEYS)})")
    key = METRIC_KEYS[metric]
    g = ev_mod.load_ground_truth(gt, "hotcoco")
    from labellint.gate.train import sha256_file

    gt_sha = sha256_file(gt)
    warnings: list[str] = []
    recipes = []
    preds = []
    for label, given in (("baseline", baseline), ("candidate", candidate)):
        w, recipe = _run_warnings(label, Path(given), gt_sha)
        warnings.extend(w)
        recipes.append(recipe)
        p = predictions_mod.load(runs.predictions_path(given))
        predictions_mod.check_against(p, g.index, iou_type)
        preds.append(p)
    if recipes[0] and recipes[1] and recipes[0] != recipes[1]:
        warnings.append("the two runs were trained with different recipes (config.json differs): the difference "
                        "is not only the annotations'")
    if g.has_id_zero:
        warnings.append(ev_mod.ID0_WARNING)
    cat_ids = _resolve_classes(list(classes), g)

    def evaluated(p, only=None):
        e = ev_mod.make_eval(g, p, iou_type)
        if only is not None:
            params = e.params
            params.cat_ids = [only]
            e.params = params
        with ev_mod._quiet():
            e.evaluate()
        return e

    def compared(only=None):
        try:
            with ev_mod._quiet():
                return hotcoco.compare(evaluated(preds[0], only), evaluated(preds[1], only),
                                       n_bootstrap=n_bootstrap, seed=seed, confidence=confidence)
        except Exception as exc:
            raise LabellintError(f"hotcoco could not compare the evaluations: {type(exc).__name__}: {exc}") from None

    res = compared()
    overall = {}
    for k in res["metric_keys"]:
        ci = (res.get("ci") or {}).get(k) or {}
        overall[k] = {"baseline": res["metrics_a"].get(k, -1.0), "candidate": res["metrics_b"].get(k, -1.0),
                      "delta": res["deltas"].get(k, 0.0), "ci_lower": ci.get("lower"), "ci_upper": ci.get("upper")}
    rows = []
    o = overall[key]
    rows.append(Row("overall", None, o["baseline"], o["candidate"], o["delta"], o["ci_lower"], o["ci_upper"]))
    for cid in cat_ids:
        r = compared(cid)
        ci = (r.get("ci") or {}).get(key) or {}
        rows.append(Row(g.category_names[cid], cid, r["metrics_a"].get(key, -1.0), r["metrics_b"].get(key, -1.0),
                        r["deltas"].get(key, 0.0), ci.get("lower"), ci.get("upper")))
    for row in rows:
        row.verdict = _verdict(row.delta, row.lower, row.upper, max_drop, row.baseline, row.candidate)
    per_class = [{"id": c["cat_id"], "name": c["cat_name"], "baseline": c["ap_a"], "candidate": c["ap_b"],
                  "delta": c["delta"]} for c in res.get("per_category", [])]
    per_class.sort(key=lambda c: c["delta"])
    return GateResult(str(gt), str(baseline), str(candidate), metric, max_drop, confidence, n_bootstrap,
                      int(res.get("num_images", len(g.index.image_ids))), rows, overall, per_class, warnings)


# -- rendering --------------------------------------------------------------------------------------
def _num(v) -> str:
    return "n/a" if v is None or v < 0 else f"{v:.3f}"


def _signed(v) -> str:
    return "" if v is None else f"{v:+.3f}"


def _ci(lo, hi) -> str:
    return "" if lo is None or hi is None else f"[{lo:+.3f}, {hi:+.3f}]"


_MARK = {"pass": "pass", "warn": "warn (not significant)", "fail": "FAIL", "n/a": "n/a"}


def _headline(r: GateResult, shown=str) -> str:
    """What was compared and how; ``shown`` renders the ground truth's path (a code span in Markdown)."""
    how = (f"{r.confidence:.0%} paired bootstrap interval over images, {r.n_bootstrap} samples" if r.n_bootstrap
           else "point estimates (no bootstrap)")
    return (f"{r.metric} of the candidate against the baseline on {r.n_images} images of {shown(r.gt)}; allowed drop "
            f"{r.max_drop:g}; {how}")


def render_text(r: GateResult, console) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(show_edge=False, header_style="bold", title=Text(_headline(r)))
    for col, just in (("scope", "left"), ("baseline", "right"), ("candidate", "right"), ("Δ", "right"),
                      ("interval", "right"), ("verdict", "left")):
        table.add_column(col, justify=just)
    styles = {"fail": "bold red", "warn": "yellow", "pass": "green", "n/a": "dim"}
    for row in r.rows:
        table.add_row(Text(row.scope), _num(row.baseline), _num(row.candidate), _signed(row.delta),
                      _ci(row.lower, row.upper), Text(_MARK[row.verdict], style=styles[row.verdict]))
    console.print(table)
    metrics = Table(show_edge=False, header_style="bold", title="all summary metrics")
    for col in ("metric", "baseline", "candidate", "Δ", "interval"):
        metrics.add_column(col, justify="left" if col == "metric" else "right")
    for k, v in r.overall.items():
        metrics.add_row(k, _num(v["baseline"]), _num(v["candidate"]), _signed(v["delta"]),
                        _ci(v["ci_lower"], v["ci_upper"]))
    console.print(metrics)
    worst = [c for c in r.per_class if c["delta"] < 0][:5]
    if worst:
        per = Table(show_edge=False, header_style="bold", title="largest per-class AP drops (point estimates)")
        for col in ("class", "baseline", "candidate", "Δ"):
            per.add_column(col, justify="left" if col == "class" else "right")
        for c in worst:
            per.add_row(Text(c["name"]), _num(c["baseline"]), _num(c["candidate"]), _signed(c["delta"]))
        console.print(per)
    for w in r.warnings:
        console.print(Text(f"warning: {w}", style="yellow"))
    if r.failed:
        names = ", ".join(row.scope for row in r.failed)
        console.print(Text(f"gate: FAIL ({names}: {r.metric} drops more than {r.max_drop:g} with confidence)",
                           style="bold red"))
    else:
        console.print(Text("gate: pass", style="bold green"))


def render_json(r: GateResult) -> str:
    return json.dumps(r.to_dict(), indent=2) + "\n"


def render_markdown(r: GateResult) -> str:
    """The verdict for a pull-request comment or a job summary: class names and paths come from
    the data, so they are code spans (no link, mention or HTML); the table of scopes is cut to
    stay under GitHub's comment limit (``--classes all`` on thousands of classes)."""
    from labellint.report import markdown_safe as md

    icon = ":x:" if r.failed else ":white_check_mark:"
    head = [f"### {icon} labellint gate: {'fail' if r.failed else 'pass'}", "", _headline(r, md.code) + ".", "",
            "| scope | baseline | candidate | Δ | interval | verdict |", "|---|---:|---:|---:|---:|---|"]
    if r.failed:  # said before the table, which a very long run of classes may cut
        names = ", ".join(md.code(row.scope, 80) for row in r.failed[:20])
        more = f" and {len(r.failed) - 20} more" if len(r.failed) > 20 else ""
        head[3:3] = [f"**{r.metric} drops more than {r.max_drop:g} with confidence:** {names}{more}.", ""]
    rows = []
    for row in r.rows:
        verdict = f"**{_MARK[row.verdict]}**" if row.verdict == "fail" else _MARK[row.verdict]
        rows.append(f"| {md.cell(row.scope)} | {_num(row.baseline)} | {_num(row.candidate)} | {_signed(row.delta)} | "
                    f"{_ci(row.lower, row.upper)} | {verdict} |\n")
    tail = ["", "<details><summary>All summary metrics</summary>", "",
            "| metric | baseline | candidate | Δ | interval |", "|---|---:|---:|---:|---:|"]
    for k, v in r.overall.items():
        tail.append(f"| {k} | {_num(v['baseline'])} | {_num(v['candidate'])} | {_signed(v['delta'])} | "
                    f"{_ci(v['ci_lower'], v['ci_upper'])} |")
    tail += ["", "</details>"]
    worst = [c for c in r.per_class if c["delta"] < 0][:10]
    if worst:
        tail += ["", "<details><summary>Largest per-class AP drops</summary>", "",
                 "| class | baseline | candidate | Δ |", "|---|---:|---:|---:|"]
        for c in worst:
            tail.append(f"| {md.cell(c['name'])} | {_num(c['baseline'])} | {_num(c['candidate'])} | "
                        f"{_signed(c['delta'])} |")
        tail += ["", "</details>"]
    for w in r.warnings:
        tail += ["", f"> **Warning:** {md.text(w, 2000)}"]
    head_text, tail_text = "\n".join(head) + "\n", "\n".join(tail) + "\n"
    budget = md.MAX_BYTES - len((head_text + tail_text).encode("utf-8"))
    table = md.capped(rows, lambda n: f"\n*{n} more scopes not shown (the comment limit); see the JSON report.*\n"
                      if n else "", budget)
    return head_text + table + tail_text
