"""Writing a benchmark's results: results.csv, results.md, results.png, summary.json."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from semantic_genesis.benchmark.statistics import (
    CellSummary,
    LabelEfficiency,
    PairedComparison,
)
from semantic_genesis.finetune.metrics import MetricWarning
from semantic_genesis.io.manifests import write_csv
from semantic_genesis.utils.atomic import atomic_write_text, write_json

#: how a metric is named in headings
METRIC_NAMES = {"auc": "AUC", "iou": "IoU", "dice": "Dice"}

ROW_COLUMNS = [
    "task",
    "kind",
    "protocol",
    "init",
    "label_fraction",
    "seed",
    "metric",
    "score",
    "auc",
    "dice",
    "iou",
    "best_epoch",
    "epochs_to_best",
    "epochs_run",
    "run_dir",
    "notes",
    "warnings",
]


def _pct(fraction: float) -> str:
    """A label fraction as a percentage: 0.25 -> "25 %", 0.001 -> "0.1 %"."""
    return f"{100 * fraction:.3g} %"


def _num(x: float, digits: int = 4) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _p(p: float) -> str:
    if math.isnan(p):
        return "–"
    stars = "***" if p < 1e-3 else "**" if p < 1e-2 else "*" if p < 0.05 else "n.s."
    return f"{p:.2g} ({stars})"


def results_markdown(
    summaries: Sequence[CellSummary],
    efficiency: Sequence[LabelEfficiency],
    config: Any,
    notes: dict[str, str],
    flagged: dict[str, str] | None = None,
    paired: Sequence[PairedComparison] = (),
) -> str:
    """The results table as Markdown: one section per task and protocol (with its paired
    comparisons), then the flagged runs."""
    lines = [
        "# Fine-tuning benchmark",
        "",
        f"Initialisations: {', '.join(f'`{k}`' for k in config.inits)}; seeds "
        f"{list(config.seeds)}; label fractions {list(config.label_fractions)}"
        + (f"; protocols {', '.join(config.protocols)} (probe seeds "
           f"{list(config.probe_seeds)}, method.md §7.3)"
           if "probe" in getattr(config, "protocols", ()) else "") + ".",
        "Scores are test-set values, mean ± sample std over seeds; p-values are two-sided "
        "two-sample t-tests (scipy.stats.ttest_ind) over the seeds, against "
        f"`{config.scratch}` and `{config.models_genesis}` at the same label fraction "
        "(* p<0.05, ** p<0.01, *** p<0.001, n.s. otherwise; – where undefined).",
        "",
    ]
    for task, protocol in sorted({(s.task, s.protocol) for s in summaries}):
        cells = [s for s in summaries if (s.task, s.protocol) == (task, protocol)]
        how = "" if protocol == "finetune" else f", {protocol}"
        lines += [f"## {task} (test {METRIC_NAMES.get(cells[0].metric, cells[0].metric)}{how})",
                  ""]
        if notes.get(task):
            lines += [f"> {notes[task]}", ""]
        lines += [
            f"| init | labels | runs | {cells[0].metric} mean ± std | p vs "
            f"{config.scratch} | p vs {config.models_genesis} | epochs to best |",
            "|---|---|---|---|---|---|---|",
        ]
        for s in cells:
            lines.append(
                f"| {s.init} | {_pct(s.fraction)} | {s.n} | {_num(s.mean)} ± "
                f"{_num(s.std)} | {_p(s.p_vs_scratch)} | {_p(s.p_vs_mg)} | "
                f"{_num(s.epochs_to_best, 1)} |"
            )
        eff = [e for e in efficiency if (e.task, e.protocol) == (task, protocol)]
        if eff:
            e0 = eff[0]
            lines += [
                "",
                f"Smallest label fraction whose mean reaches {config.scratch}'s best "
                f"({_num(e0.scratch_best)} with {_pct(e0.scratch_best_fraction)} of the labels; "
                "only the fractions run are tried):",
                "",
                f"| init | fraction reaching it | labels saved | labels to match {config.scratch} "
                "at the most labels (interpolated) |",
                "|---|---|---|---|",
            ]
            for e in eff:
                frac = (
                    "not reached" if math.isnan(e.fraction_to_reach) else _pct(e.fraction_to_reach)
                )
                saved = "–" if math.isnan(e.label_saving) else f"{100 * e.label_saving:.0f} %"
                lines.append(f"| {e.init} | {frac} | {saved} | {e.match or '–'} |")
        lines += _paired_markdown([c for c in paired if (c.task, c.protocol) == (task, protocol)])
        lines.append("")
    lines += _flagged_markdown(flagged or {})
    lines += ["![results](results.png)", ""]
    return "\n".join(lines)


def _ci(ci: Sequence[float]) -> str:
    return "–" if any(math.isnan(v) for v in ci) else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"


def _paired_markdown(paired: Sequence[PairedComparison]) -> list[str]:
    """Paired comparisons over the seeds both sides ran (method.md §7.3)."""
    if not paired:
        return []
    lines = ["", "Paired over shared seeds (difference = init − baseline; 95 % bootstrap "
             "intervals; p: paired t-test, Wilcoxon signed-rank):", "",
             "| init | vs | labels | pairs | mean difference [95 % CI] | p (paired t) | "
             "p (Wilcoxon) | d_z [95 % CI] |", "|---|---|---|---|---|---|---|---|"]
    for c in paired:
        lines.append(
            f"| {c.init} | {c.baseline} | {_pct(c.fraction)} | {c.n} | {_num(c.mean_diff)} "
            f"{_ci(c.diff_ci)} | {_p(c.p)} | {_p(c.p_wilcoxon)} | {_num(c.d_z, 2)} "
            f"{_ci(c.d_z_ci)} |")
    return lines


def flagged_runs(rows: Sequence[dict[str, Any]], failed: dict[str, str]) -> dict[str, str]:
    """Cells whose number is missing or may be wrong, with the reason: failed cells, runs whose
    score is undefined (NaN, left out of the means) and runs that carry warnings. Each is said
    on the console (a warning) and listed in results.md."""
    out = {name: f"FAILED, not in the table: {why}" for name, why in sorted(failed.items())}
    for r in rows:
        name = Path(str(r.get("run_dir", ""))).name or "/".join(
            str(v) for v in (r["task"], r.get("protocol") or "finetune", r["init"],
                             f"f{float(r['label_fraction']):g}", f"s{r['seed']}"))
        score = float(r["score"]) if r.get("score") not in (None, "") else math.nan
        why = []
        if math.isnan(score):
            why.append(f"test {r.get('metric', 'score')} undefined (NaN), left out of the means")
        if r.get("warnings"):
            why.append(str(r["warnings"]))
        if why:
            out[name] = "; ".join(why)
    return out


def _flagged_markdown(flagged: dict[str, str]) -> list[str]:
    if not flagged:
        return []
    lines = ["## Runs to read with care", "",
             "These cells failed, or their numbers are undefined or carry a warning:", ""]
    lines += [f"- `{name}`: {why}" for name, why in flagged.items()]
    return lines + [""]


def write_results(
    out: Path,
    rows: list[dict[str, Any]],
    summaries: Sequence[CellSummary],
    efficiency: Sequence[LabelEfficiency],
    config: Any,
    failed: dict[str, str] | None = None,
    paired: Sequence[PairedComparison] = (),
) -> dict[str, str]:
    """results.csv, results.md, results.png and summary.json in ``out``; returns the flagged
    runs (:func:`flagged_runs`), each also said on the console."""
    from semantic_genesis.finetune.plots import plot_results

    rows = sorted(
        rows, key=lambda r: (r["task"], r.get("protocol") or "finetune",
                             float(r["label_fraction"]), r["init"], int(r["seed"]))
    )
    write_csv(
        out / "results.csv", ROW_COLUMNS, [{k: r.get(k, "") for k in ROW_COLUMNS} for r in rows]
    )
    notes = {r["task"]: r.get("notes", "") for r in rows}
    flagged = flagged_runs(rows, failed or {})
    for name, why in flagged.items():
        warnings.warn(f"benchmark: {name}: {why}", MetricWarning, stacklevel=2)
    atomic_write_text(
        out / "results.md", results_markdown(summaries, efficiency, config, notes, flagged, paired)
    )
    plot_results(_plotted(summaries), out / "results.png", list(config.inits))
    write_json(
        out / "summary.json",
        _finite(
            {
                "cells": [dataclasses.asdict(s) for s in summaries],
                "label_efficiency": [dataclasses.asdict(e) for e in efficiency],
                "paired": [dataclasses.asdict(c) for c in paired],
                "flagged": flagged,
            }
        ),
    )
    return flagged


def _plotted(summaries: Sequence[CellSummary]) -> list[CellSummary]:
    """The summaries as the plot groups them (by task): a probe's panel is its own task."""
    return [s if s.protocol == "finetune" else dataclasses.replace(
        s, task=f"{s.task} ({s.protocol})") for s in summaries]


def _finite(obj: Any) -> Any:
    """NaN (an undefined statistic) becomes null, so the JSON is valid everywhere."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj
