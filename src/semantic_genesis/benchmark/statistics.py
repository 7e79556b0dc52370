"""Comparing initialisations over repeated runs: mean ± std, t-tests, label efficiency.

The papers report mean ± std over repeated runs and independent two-sample t-tests between
methods (method.md §7.2, §8.1-8.2), and TransVW adds how many fewer labels a method needs to
reach the score that training from scratch reaches with all of them (method.md §8.3). These
functions compute the same from the rows of a benchmark (one row per finished run), plus paired
statistics over the seeds two initialisations share (paired t-test, Wilcoxon, Cohen's d_z with
bootstrap intervals, method.md §7.3).
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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
    protocol: str = "finetune"  # finetune, probe-logreg, probe-knn, probe-voxel
    seeds: list[int] = field(default_factory=list)  # the seed of each score


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
    groups: dict[tuple[str, str, str, float], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        key = (row["task"], _protocol(row), row["init"], float(row["label_fraction"]))
        groups[key].append(row)
    out = []
    for (task, protocol, init, frac), runs in groups.items():
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
                protocol=protocol,
                seeds=[int(r["seed"]) for r in runs],
            )
        )
    by_key = {(s.task, s.protocol, s.init, s.fraction): s for s in out}
    for s in out:
        for base, attr in ((scratch, "p_vs_scratch"), (mg, "p_vs_mg")):
            other = by_key.get((s.task, s.protocol, base, s.fraction)) if base else None
            if other is not None and other is not s:
                setattr(s, attr, ttest_p(s.scores, other.scores))
    return sorted(out, key=lambda s: (s.task, s.protocol, s.fraction, s.init))


def _protocol(row: dict[str, Any]) -> str:
    """A row's protocol; rows of releases before the probes are fine-tuning rows."""
    return str(row.get("protocol") or "finetune")


@dataclass
class LabelEfficiency:
    """How few labels an initialisation needs to reach scratch's scores.

    Two readings (method.md §8.3): the smallest label fraction *run* whose mean reaches
    scratch's best mean (``fraction_to_reach``, TransVW's annotation saving), and the fraction
    needed to match scratch *at the largest fraction run* (usually 100 %), linearly interpolated
    on the initialisation's mean-score vs label-fraction curve (``fraction_to_match``; ``match``
    says it in words: ``"<= 10 %"`` when already matched at the smallest fraction run,
    ``"> 100 %"`` when never matched)."""

    task: str
    init: str
    scratch_best: float  # best mean score of scratch over all label fractions
    scratch_best_fraction: float  # the (smallest) fraction at which scratch reaches it
    fraction_to_reach: float  # smallest fraction whose mean reaches it; nan if none does
    label_saving: float  # 1 - fraction_to_reach / scratch_best_fraction (nan if none)
    protocol: str = "finetune"
    scratch_full: float = math.nan  # scratch's mean at the largest fraction run
    fraction_to_match: float = math.nan  # interpolated fraction reaching scratch_full
    match: str = ""  # fraction_to_match in words


def _pct(fraction: float) -> str:
    return f"{100 * fraction:.3g} %"


def fraction_to_match(curve: Sequence[tuple[float, float]], target: float) -> tuple[float, str]:
    """The label fraction at which a mean-score curve first reaches ``target``, linearly
    interpolated between the fractions run; with its reading in words.

    Args:
        curve: (label fraction, mean score) points; NaN means are skipped.
        target: the score to match (higher is better).

    Returns:
        ``(fraction, words)``: ``(f_min, "<= f_min")`` when the smallest fraction already
        reaches it (nothing below it was run), ``(nan, "> f_max")`` when no fraction does.
    """
    points = sorted((f, m) for f, m in curve if not math.isnan(m))
    if not points or math.isnan(target):
        return math.nan, "–"
    if points[0][1] >= target:
        return points[0][0], f"<= {_pct(points[0][0])}"
    for (f0, m0), (f1, m1) in zip(points, points[1:], strict=False):
        if m1 >= target:
            f = f0 + (target - m0) * (f1 - f0) / (m1 - m0)
            return f, _pct(f)
    return math.nan, f"> {_pct(points[-1][0])}"


def label_efficiency(
    summaries: Iterable[CellSummary], scratch: str = "scratch"
) -> list[LabelEfficiency]:
    """For every task, protocol and initialisation: the smallest label fraction (of those run)
    whose mean score reaches the best mean score training from scratch reaches (TransVW's
    annotation saving, method.md §8.3; higher scores are better), and the interpolated fraction
    that matches scratch at the largest fraction run (:func:`fraction_to_match`)."""
    by_task: dict[tuple[str, str], list[CellSummary]] = defaultdict(list)
    for s in summaries:
        by_task[(s.task, s.protocol)].append(s)
    out = []
    for (task, protocol), cells in sorted(by_task.items()):
        base = [c for c in cells if c.init == scratch and not math.isnan(c.mean)]
        if not base:
            continue
        best = max(c.mean for c in base)
        best_frac = min(c.fraction for c in base if c.mean == best)
        full = max(base, key=lambda c: c.fraction).mean
        for init in sorted({c.init for c in cells}):
            mine = [c for c in cells if c.init == init]
            reached = sorted(c.fraction for c in mine if not math.isnan(c.mean) and c.mean >= best)
            frac = reached[0] if reached else math.nan
            match, words = fraction_to_match([(c.fraction, c.mean) for c in mine], full)
            out.append(
                LabelEfficiency(
                    task=task,
                    init=init,
                    scratch_best=best,
                    scratch_best_fraction=best_frac,
                    fraction_to_reach=frac,
                    label_saving=1.0 - frac / best_frac,
                    protocol=protocol,
                    scratch_full=full,
                    fraction_to_match=match,
                    match=words,
                )
            )
    return out


@dataclass
class PairedComparison:
    """One initialisation against a baseline over the seeds both ran (method.md §7.3).

    A seed fixes the split (probes) or the label subset and training draws (fine-tuning) for
    every initialisation, so the two scores of a seed are a pair: the paired test removes the
    split-to-split spread that the two-sample test counts as noise."""

    task: str
    protocol: str
    fraction: float
    init: str
    baseline: str
    n: int  # seeds with a finite score on both sides
    mean_diff: float  # mean of (init - baseline)
    diff_ci: tuple[float, float]  # bootstrap 95 % percentile interval of the mean difference
    p: float  # two-sided paired t-test (scipy.stats.ttest_rel)
    p_wilcoxon: float  # two-sided Wilcoxon signed-rank test (robustness check)
    d_z: float  # Cohen's d_z: mean difference / sample std of the differences
    d_z_ci: tuple[float, float]  # bootstrap 95 % percentile interval of d_z


#: bootstrap resamples of the paired differences
BOOTSTRAP = 2000
NAN2 = (math.nan, math.nan)


def paired_stats(a: Sequence[float], b: Sequence[float], seed: int = 0,
                 n_boot: int = BOOTSTRAP) -> dict[str, Any]:
    """Paired statistics of scores ``a`` and ``b`` (same order = same seed); pairs with a NaN
    are dropped. Keys: ``n``, ``mean_diff``, ``diff_ci``, ``p``, ``p_wilcoxon``, ``d_z``,
    ``d_z_ci``; undefined values are NaN (fewer than two pairs; no spread in the
    differences for p and d_z)."""
    from scipy.stats import ttest_rel, wilcoxon

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = ~(np.isnan(x) | np.isnan(y))
    d = x[ok] - y[ok]
    out: dict[str, Any] = {"n": int(len(d)), "mean_diff": float(d.mean()) if len(d) else math.nan,
                           "diff_ci": NAN2, "p": math.nan, "p_wilcoxon": math.nan,
                           "d_z": math.nan, "d_z_ci": NAN2}
    if len(d) < 2:
        return out
    sd = float(d.std(ddof=1))
    idx = np.random.default_rng(seed).integers(0, len(d), (n_boot, len(d)))
    boot = d[idx]
    out["diff_ci"] = tuple(float(v) for v in np.percentile(boot.mean(1), [2.5, 97.5]))
    if sd > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out["p"] = float(ttest_rel(x[ok], y[ok]).pvalue)
            out["p_wilcoxon"] = float(wilcoxon(d).pvalue)
            sds = boot.std(1, ddof=1)
            dz = boot.mean(1)[sds > 0] / sds[sds > 0]
        out["d_z"] = float(d.mean()) / sd
        if len(dz):
            out["d_z_ci"] = tuple(float(v) for v in np.percentile(dz, [2.5, 97.5]))
    return out


def paired_comparisons(
    summaries: Iterable[CellSummary], baselines: Sequence[str]
) -> list[PairedComparison]:
    """Every initialisation against each baseline, per (task, protocol, label fraction), over
    the seeds both ran."""
    cells = list(summaries)
    by_key = {(s.task, s.protocol, s.fraction, s.init): s for s in cells}
    out = []
    for s in cells:
        for i, base in enumerate(baselines):
            if s.init in baselines[:i]:  # mg vs scratch is there; scratch vs mg would repeat it
                continue
            other = by_key.get((s.task, s.protocol, s.fraction, base))
            if other is None or other is s or not s.seeds or not other.seeds:
                continue
            theirs = dict(zip(other.seeds, other.scores, strict=True))
            common = [(score, theirs[sd]) for sd, score in zip(s.seeds, s.scores, strict=True)
                      if sd in theirs]
            stats = paired_stats([c[0] for c in common], [c[1] for c in common])
            out.append(PairedComparison(s.task, s.protocol, s.fraction, s.init, base, **stats))
    return out
