"""Writing a benchmark's results: results.csv, results.md, results.png, summary.json."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from semantic_genesis.finetune.statistics import CellSummary, LabelEfficiency
from semantic_genesis.manifests import write_csv
from semantic_genesis.utils.atomic import atomic_write_text, write_json

ROW_COLUMNS = [
    "task",
    "kind",
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
) -> str:
    """The results table as Markdown: one section per task."""
    lines = [
        "# Fine-tuning benchmark",
        "",
        f"Initialisations: {', '.join(f'`{k}`' for k in config.inits)}; seeds "
        f"{list(config.seeds)}; label fractions {list(config.label_fractions)}.",
        "Scores are test-set values, mean ± sample std over seeds; p-values are two-sided "
        "two-sample t-tests (scipy.stats.ttest_ind) over the seeds, against "
        f"`{config.scratch}` and `{config.models_genesis}` at the same label fraction "
        "(* p<0.05, ** p<0.01, *** p<0.001, n.s. otherwise; – where undefined).",
        "",
    ]
    for task in sorted({s.task for s in summaries}):
        cells = [s for s in summaries if s.task == task]
        lines += [f"## {task} (test {cells[0].metric.upper()})", ""]
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
        eff = [e for e in efficiency if e.task == task]
        if eff:
            e0 = eff[0]
            lines += [
                "",
                f"Smallest label fraction whose mean reaches {config.scratch}'s best "
                f"({_num(e0.scratch_best)} with {_pct(e0.scratch_best_fraction)} of the labels; "
                "only the fractions run are tried):",
                "",
                "| init | fraction reaching it | labels saved |",
                "|---|---|---|",
            ]
            for e in eff:
                frac = (
                    "not reached" if math.isnan(e.fraction_to_reach) else _pct(e.fraction_to_reach)
                )
                saved = "–" if math.isnan(e.label_saving) else f"{100 * e.label_saving:.0f} %"
                lines.append(f"| {e.init} | {frac} | {saved} |")
        lines.append("")
    lines += ["![results](results.png)", ""]
    return "\n".join(lines)


def write_results(
    out: Path,
    rows: list[dict[str, Any]],
    summaries: Sequence[CellSummary],
    efficiency: Sequence[LabelEfficiency],
    config: Any,
) -> None:
    """results.csv, results.md, results.png and summary.json in ``out``."""
    from semantic_genesis.finetune.plots import plot_results

    rows = sorted(
        rows, key=lambda r: (r["task"], float(r["label_fraction"]), r["init"], int(r["seed"]))
    )
    write_csv(
        out / "results.csv", ROW_COLUMNS, [{k: r.get(k, "") for k in ROW_COLUMNS} for r in rows]
    )
    notes = {r["task"]: r.get("notes", "") for r in rows}
    atomic_write_text(out / "results.md", results_markdown(summaries, efficiency, config, notes))
    plot_results(summaries, out / "results.png", list(config.inits))
    write_json(
        out / "summary.json",
        _finite(
            {
                "cells": [dataclasses.asdict(s) for s in summaries],
                "label_efficiency": [dataclasses.asdict(e) for e in efficiency],
            }
        ),
    )


def _finite(obj: Any) -> Any:
    """NaN (an undefined statistic) becomes null, so the JSON is valid everywhere."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj
