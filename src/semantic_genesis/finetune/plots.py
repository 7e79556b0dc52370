"""Figures of the fine-tuning stage: learning curves of one run, results of a benchmark."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from semantic_genesis.finetune.statistics import CellSummary  # noqa: E402
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
    """curves.png: training and validation loss, the validation metric and the learning rate
    per epoch; a dashed line marks the epoch whose weights were kept."""
    epochs = [h.epoch for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    axes[0].plot(epochs, [h.train_loss for h in history], "o-", ms=3, label="train")
    axes[0].plot(epochs, [h.val_loss for h in history], "o-", ms=3, label="validation")
    axes[0].set_ylabel("loss")
    axes[0].legend()
    axes[1].plot(epochs, [h.val_metric for h in history], "o-", ms=3, color="C2")
    axes[1].set_ylabel(f"validation {metric}")
    axes[2].semilogy(epochs, [h.lr for h in history], "o-", ms=3, color="C3")
    axes[2].set_ylabel("learning rate")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if best_epoch:
            ax.axvline(best_epoch, color="k", ls="--", lw=0.8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_results(
    summaries: Sequence[CellSummary], path: str | Path, inits: Sequence[str] | None = None
) -> Path:
    """results.png, one row per task: bars (mean ± std over seeds) of every initialisation at
    the largest label fraction and, when more than one fraction was run, the mean score
    against the label fraction."""
    tasks = sorted({s.task for s in summaries})
    inits = list(inits) if inits else sorted({s.init for s in summaries})
    several = len({s.fraction for s in summaries}) > 1  # a curve needs two fractions
    fig, axes = plt.subplots(
        max(1, len(tasks)),
        2 if several else 1,
        figsize=(11 if several else 5.5, 3.4 * max(1, len(tasks))),
        squeeze=False,
    )
    for row, task in zip(axes, tasks, strict=False):
        cells = [s for s in summaries if s.task == task]
        metric = cells[0].metric
        top = max(s.fraction for s in cells)
        bars = [next((s for s in cells if s.init == i and s.fraction == top), None) for i in inits]
        means = [b.mean if b else math.nan for b in bars]
        stds = [0.0 if not b or math.isnan(b.std) else b.std for b in bars]
        row[0].bar(
            range(len(inits)),
            means,
            yerr=stds,
            capsize=4,
            color=[f"C{k}" for k in range(len(inits))],
        )
        row[0].set_xticks(range(len(inits)), inits)
        row[0].set_ylabel(f"test {metric}")
        row[0].set_title(f"{task}: {100 * top:.3g} % of the labels, mean ± std over seeds", fontsize=9)
        finite = [m - s for m, s in zip(means, stds, strict=True) if not math.isnan(m)]
        if finite:  # scores live in [0, 1]
            row[0].set_ylim(max(0.0, min(finite) - 0.1), 1.02)
        for ax in row:
            ax.grid(alpha=0.3)
        if not several:
            continue
        for k, init in enumerate(inits):
            pts = sorted(
                (s.fraction, s.mean, 0.0 if math.isnan(s.std) else s.std)
                for s in cells
                if s.init == init
            )
            if pts:
                xs, ys, es = zip(*pts, strict=True)
                row[1].errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=init, color=f"C{k}")
        row[1].set_ylim(None, 1.02)
        row[1].set_xscale("log")
        fractions = sorted({s.fraction for s in cells})
        row[1].set_xticks(fractions, [f"{100 * f:.3g} %" for f in fractions])
        row[1].minorticks_off()
        row[1].set_xlabel("fraction of training labels")
        row[1].set_ylabel(f"test {metric}")
        row[1].set_title(f"{task}: score against label fraction", fontsize=9)
        row[1].legend(fontsize=8)
    return _save(fig, path)
