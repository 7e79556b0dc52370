"""Figures of the fine-tuning stage: learning curves of one run, results of a benchmark."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from semantic_genesis.benchmark.statistics import CellSummary  # noqa: E402
from semantic_genesis.finetune.trainer import EpochRecord  # noqa: E402
from semantic_genesis.utils.atomic import atomic_path  # noqa: E402


def _save(fig: plt.Figure, path: str | Path) -> Path:
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_curves(
    history: Sequence[EpochRecord],
    path: str | Path,
    metric: str,
    best_epoch: int = 0,
    title: str = "",
) -> Path:
    """curves.png: training and validation loss, the validation metric (on the fixed score
    axis, with chance for AUC) and the learning rate per epoch; a dashed line marks the epoch
    whose weights were kept."""
    epochs = [h.epoch for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    axes[0].plot(epochs, [h.train_loss for h in history], "o-", ms=3, label="train")
    axes[0].plot(epochs, [h.val_loss for h in history], "o-", ms=3, label="validation")
    axes[0].set_ylabel("loss")
    axes[0].legend()
    axes[1].plot(epochs, [h.val_metric for h in history], "o-", ms=3, color="C2")
    _score_axis(axes[1], metric)
    axes[1].set_ylabel(f"validation {_METRIC_NAMES.get(metric.lower(), metric)}")
    axes[2].semilogy(epochs, [h.lr for h in history], "o-", ms=3, color="C3")
    axes[2].set_ylabel("learning rate")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if best_epoch:
            ax.axvline(best_epoch, color="k", ls="--", lw=0.8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


#: scores (AUC, Dice, IoU) live in [0, 1]: one fixed axis, so panels and runs compare directly
SCORE_LIMITS = (0.0, 1.05)
#: the AUC of a classifier that guesses
CHANCE_AUC = 0.5
_METRIC_NAMES = {"auc": "AUC", "iou": "IoU", "dice": "Dice"}


def plot_results(
    summaries: Sequence[CellSummary], path: str | Path, inits: Sequence[str] | None = None
) -> Path:
    """results.png (see :func:`results_figure`)."""
    return _save(results_figure(summaries, inits), path)


def results_figure(
    summaries: Sequence[CellSummary], inits: Sequence[str] | None = None
) -> plt.Figure:
    """One row per task with a score: bars (mean ± std over seeds, the mean written on each) of
    every initialisation at the largest label fraction and, when the task ran more than one
    fraction, the mean score against the label fraction. Scores share the fixed axis
    :data:`SCORE_LIMITS`; AUC panels show chance (0.5) as a dashed line. Tasks without any
    finite score get no panel; the figure's title names them."""
    inits = list(inits) if inits else sorted({s.init for s in summaries})
    every = sorted({s.task for s in summaries})
    tasks = [t for t in every if any(s.task == t and math.isfinite(s.mean) for s in summaries)]
    fractions = {t: sorted({s.fraction for s in summaries if s.task == t}) for t in tasks}
    several = any(len(f) > 1 for f in fractions.values())  # a curve needs two fractions
    fig, axes = plt.subplots(
        max(1, len(tasks)),
        2 if several else 1,
        figsize=(11 if several else 5.5, 3.4 * max(1, len(tasks))),
        squeeze=False,
    )
    for row, task in zip(axes, tasks, strict=False):
        cells = [s for s in summaries if s.task == task]
        _bars(row[0], cells, inits)
        if len(fractions[task]) > 1:
            _fraction_curve(row[1], cells, inits)
        elif several:
            row[1].remove()  # this task ran one fraction: nothing to draw
    if not tasks:
        axes[0][0].axis("off")
        axes[0][0].text(0.5, 0.5, "no finite score in any task", ha="center", va="center")
    missing = [t for t in every if t not in tasks]
    if missing:
        fig.suptitle(f"no finite score (not drawn): {', '.join(missing)}", fontsize=9)
    return fig


def _score_axis(ax: plt.Axes, metric: str) -> None:
    """The fixed score axis, and the chance line where chance has a value (AUC)."""
    ax.set_ylim(*SCORE_LIMITS)
    ax.set_ylabel(f"test {_METRIC_NAMES.get(metric.lower(), metric)}")
    ax.grid(alpha=0.3)
    if metric.lower() == "auc":
        ax.axhline(CHANCE_AUC, color="0.25", ls="--", lw=1, zorder=3,
                   label=f"chance (AUC = {CHANCE_AUC})")
        ax.annotate("chance", xy=(1, CHANCE_AUC), xycoords=("axes fraction", "data"),
                    xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)


def _bars(ax: plt.Axes, cells: Sequence[CellSummary], inits: Sequence[str]) -> None:
    top = max(s.fraction for s in cells)
    bars = [next((s for s in cells if s.init == i and s.fraction == top), None) for i in inits]
    means = [b.mean if b else math.nan for b in bars]
    stds = [0.0 if not b or math.isnan(b.std) else b.std for b in bars]
    drawn = ax.bar(range(len(inits)), means, yerr=stds, capsize=4,
                   color=[f"C{k}" for k in range(len(inits))])
    ax.bar_label(drawn, labels=["–" if math.isnan(m) else f"{m:.3f}" for m in means],
                 fontsize=8, padding=2)  # a score of 0 is a bar of height 0: say it
    many = len(inits) > 6  # a study's 16 inits: slanted names and values stay readable
    ax.set_xticks(range(len(inits)), inits, rotation=40 if many else 0,
                  ha="right" if many else "center", fontsize=8 if many else None)
    if many:
        for text in ax.texts:
            text.set_rotation(90)
    ax.set_title(f"{cells[0].task}: {100 * top:.3g} % of the labels, mean ± std over seeds",
                 fontsize=9)
    _score_axis(ax, cells[0].metric)


def _fraction_curve(ax: plt.Axes, cells: Sequence[CellSummary], inits: Sequence[str]) -> None:
    for k, init in enumerate(inits):
        pts = sorted((s.fraction, s.mean, 0.0 if math.isnan(s.std) else s.std)
                     for s in cells if s.init == init and math.isfinite(s.mean))
        if pts:
            xs, ys, es = zip(*pts, strict=True)
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=init, color=f"C{k}")
    ax.set_xscale("log")
    fractions = sorted({s.fraction for s in cells})
    ax.set_xticks(fractions, [f"{100 * f:.3g} %" for f in fractions])
    ax.minorticks_off()
    ax.set_xlabel("fraction of training labels")
    ax.set_title(f"{cells[0].task}: score against label fraction", fontsize=9)
    _score_axis(ax, cells[0].metric)
    ax.legend(fontsize=8, loc="best")
