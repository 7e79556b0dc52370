"""Comparing initialisations over repeated runs: mean ± std, t-tests, label efficiency.

The papers report mean ± std over repeated runs and independent two-sample t-tests between
methods (method.md §7.2, §8.1-8.2), and TransVW adds how many fewer labels a method needs to
reach the score that training from scratch reaches with all of them (method.md §8.3). These
functions compute the same from the rows of a benchmark (one row per finished run).
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class CellSummary:
    """All runs (seeds) of one (task, initialisation, label fraction)."""

    task: str
    init: str
    fraction: float
    metric: str
    n: int
    mean: float
    std: float  # sample standard deviation (ddof=1); nan with one run
    scores: list[float]
    epochs_to_best: float  # mean over runs
    p_vs_scratch: float = math.nan  # two-sided Student t-test against the scratch runs
    p_vs_mg: float = math.nan  # ... and against the Models Genesis runs


def ttest_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of ``scipy.stats.ttest_ind(a, b)`` (nan if it is undefined).

    Undefined means fewer than two runs on a side, or no spread at all on both sides.
    """
    from scipy.stats import ttest_ind

    a = np.asarray([x for x in a if not math.isnan(x)], dtype=float)
    b = np.asarray([x for x in b if not math.isnan(x)], dtype=float)
    if len(a) < 2 or len(b) < 2 or (np.ptp(a) == 0 and np.ptp(b) == 0):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(ttest_ind(a, b).pvalue)


def summarise(
    rows: Iterable[dict[str, Any]], scratch: str = "scratch", mg: str | None = "mg"
) -> list[CellSummary]:
    """Group run rows by (task, init, label_fraction) and compare with the baselines.

    Args:
        rows: one dict per run with keys ``task``, ``init``, ``label_fraction``, ``seed``,
            ``metric``, ``score`` and optionally ``epochs_to_best``.
        scratch: the name of the from-scratch initialisation.
        mg: the name of the Models Genesis initialisation (None: no such comparison).

    Returns:
        One summary per group, sorted by task, fraction, then init.
    """
    groups: dict[tuple[str, str, float], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["task"], row["init"], float(row["label_fraction"]))].append(row)
    out = []
    for (task, init, frac), runs in groups.items():
        scores = [float(r["score"]) for r in runs]
        finite = [s for s in scores if not math.isnan(s)]
        epochs = [float(r.get("epochs_to_best", math.nan)) for r in runs]
        out.append(
            CellSummary(
                task=task,
                init=init,
                fraction=frac,
                metric=str(runs[0]["metric"]),
                n=len(finite),
                mean=float(np.mean(finite)) if finite else math.nan,
                std=float(np.std(finite, ddof=1)) if len(finite) > 1 else math.nan,
                scores=scores,
                epochs_to_best=float(np.nanmean(epochs))
                if any(not math.isnan(e) for e in epochs)
                else math.nan,
            )
        )
    by_key = {(s.task, s.init, s.fraction): s for s in out}
    for s in out:
        for base, attr in ((scratch, "p_vs_scratch"), (mg, "p_vs_mg")):
            other = by_key.get((s.task, base, s.fraction)) if base else None
            if other is not None and other is not s:
                setattr(s, attr, ttest_p(s.scores, other.scores))
    return sorted(out, key=lambda s: (s.task, s.fraction, s.init))


@dataclass
class LabelEfficiency:
    """How few labels an initialisation needs to reach scratch's best mean score."""

    task: str
    init: str
    scratch_best: float  # best mean score of scratch over all label fractions
    scratch_best_fraction: float  # the (smallest) fraction at which scratch reaches it
    fraction_to_reach: float  # smallest fraction whose mean reaches it; nan if none does
    label_saving: float  # 1 - fraction_to_reach / scratch_best_fraction (nan if none)


def label_efficiency(
    summaries: Iterable[CellSummary], scratch: str = "scratch"
) -> list[LabelEfficiency]:
    """For every task and initialisation, the smallest label fraction (of those run) whose mean
    score is at least the best mean score training from scratch reaches (TransVW's annotation
    saving, method.md §8.3; higher scores are better). Fractions are not interpolated."""
    by_task: dict[str, list[CellSummary]] = defaultdict(list)
    for s in summaries:
        by_task[s.task].append(s)
    out = []
    for task, cells in sorted(by_task.items()):
        base = [c for c in cells if c.init == scratch and not math.isnan(c.mean)]
        if not base:
            continue
        best = max(c.mean for c in base)
        best_frac = min(c.fraction for c in base if c.mean == best)
        for init in sorted({c.init for c in cells}):
            reached = sorted(
                c.fraction
                for c in cells
                if c.init == init and not math.isnan(c.mean) and c.mean >= best
            )
            frac = reached[0] if reached else math.nan
            out.append(
                LabelEfficiency(
                    task=task,
                    init=init,
                    scratch_best=best,
                    scratch_best_fraction=best_frac,
                    fraction_to_reach=frac,
                    label_saving=1.0 - frac / best_frac,
                )
            )
    return out
