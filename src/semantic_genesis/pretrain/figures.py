"""Figures a run keeps up to date every epoch, those its method declares (``Method.figures``):
``curves.png`` (one panel per declared statistic) and ``restorations.png``.

``restorations.png`` shows, for a fixed validation batch perturbed with a fixed seed, the
central axial slice of the perturbed network input, the restoration (sigmoid of the decoder
output) and the target (the clean cube, flipped as the input was), so successive epochs compare
directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from semantic_genesis.utils.atomic import atomic_path

if TYPE_CHECKING:  # pragma: no cover - types only
    from semantic_genesis.pretrain.methods import Metric

CURVES_PNG = "curves.png"
RESTORATIONS_PNG = "restorations.png"
#: the file of each figure kind (``Method.figures``).
FIGURE_FILES = {"curves": CURVES_PNG, "restorations": RESTORATIONS_PNG}


def _figure(nrows: int, ncols: int, size: tuple[float, float]) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=80, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _save(fig: Any, path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    return path


def plot_curves(
    history: list[dict[str, Any]],
    path: Path,
    n_classes: int | None = None,
    metrics: Sequence[Metric] | None = None,
) -> Path:
    """curves.png (see :func:`curves_figure`)."""
    return _save(curves_figure(history, n_classes, metrics), path)


def _builtin_metrics() -> list[Metric]:
    """Every statistic the built-in methods declare (each name once)."""
    from semantic_genesis.pretrain.methods import known_methods

    found: dict[str, Metric] = {}
    for entry in known_methods():
        made = entry.make()
        for m in made.metrics() if made is not None else []:
            found.setdefault(m.name, m)
    return list(found.values())


def curves_figure(
    history: list[dict[str, Any]],
    n_classes: int | None = None,
    metrics: Sequence[Metric] | None = None,
) -> Any:
    """Total loss, each of ``metrics`` (the method's statistics; default: those of the
    built-in methods) found in ``history`` (training and validation), and the learning rate.

    Bounded statistics (accuracies) sit on a fixed [0, 1] axis; with ``n_classes`` those marked
    ``chance`` show 1 / n_classes dashed.
    """
    from matplotlib.ticker import MaxNLocator

    declared = list(metrics) if metrics is not None else _builtin_metrics()
    panels = [("loss", "total loss", False, False)] + [
        (m.name, m.title or m.name, m.bounded, m.chance)
        for m in declared
        if any(r.get(f"train_{m.name}") is not None for r in history)
    ]
    if any(r.get("probe_auc") is not None for r in history):  # the online probe, §7.3
        panels.append(("probe_auc", "online probe AUC (frozen encoder)", True, False))
    panels.append(("lr", "learning rate", False, False))
    fig, axes = _figure(1, len(panels), (3.2 * len(panels), 3.0))
    epochs = [r["epoch"] for r in history]
    for ax, (stat, title, bounded, chance) in zip(axes[0], panels, strict=True):
        keys = [stat] if stat in ("lr", "probe_auc") else [f"train_{stat}", f"val_{stat}"]
        for key in keys:
            values = [np.nan if r.get(key) is None else r[key] for r in history]
            ax.plot(
                epochs,
                values,
                marker="." if len(epochs) < 30 else None,
                label=key.split("_")[0] if stat != "lr" else "lr",
            )
        if bounded:
            ax.set_ylim(0.0, 1.02)  # accuracies on one fixed axis, epoch after epoch
        if chance and n_classes:
            ax.axhline(1 / n_classes, color="0.35", ls="--", lw=1,
                       label=f"chance (1/{n_classes})")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    return fig


def plot_restorations(
    clean: np.ndarray,
    perturbed: np.ndarray,
    restored: np.ndarray | None,
    target: np.ndarray,
    path: Path,
    title: str = "",
) -> Path:
    """restorations.png (see :func:`restorations_figure`). ``clean`` is not drawn: the target
    is the clean cube as the network must restore it (with the flips its input also got), so
    the clean cube would show the same anatomy twice."""
    del clean
    return _save(restorations_figure(perturbed, restored, target, title), path)


def restoration_columns(
    perturbed: np.ndarray, restored: np.ndarray | None, target: np.ndarray
) -> list[tuple[str, np.ndarray]]:
    """The images to show, each once, with their titles: the perturbed input, the restoration
    (methods with a decoder) and the target."""
    columns = [("input (perturbed)", perturbed)]
    if restored is not None:
        columns.append(("restored", restored))
    columns.append(("target", target))
    return columns


def restorations_figure(
    perturbed: np.ndarray, restored: np.ndarray | None, target: np.ndarray, title: str = ""
) -> Any:
    """Rows = cubes, columns = :func:`restoration_columns`, central z slice.

    Arrays are ``(N, 1, X, Y, Z)`` in [0, 1]; ``restored`` is None for methods without a decoder.
    """
    columns = restoration_columns(perturbed, restored, target)
    n = perturbed.shape[0]
    fig, axes = _figure(n, len(columns), (2.0 * len(columns), 2.0 * n))
    z = perturbed.shape[-1] // 2
    for i in range(n):
        for j, (name, arr) in enumerate(columns):
            ax = axes[i][j]
            ax.imshow(arr[i, 0, :, :, z].T, cmap="gray", vmin=0, vmax=1, origin="lower")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def draw_figures(trainer: Any, history: list[dict[str, Any]], out_dir: Path, epoch: int) -> None:
    """Draw the figures ``trainer.method`` declares into ``out_dir`` (``history``: the run's
    metrics rows so far)."""
    method = trainer.method
    if "curves" in method.figures:
        plot_curves(history, out_dir / CURVES_PNG, trainer.info.n_classes,
                    method.metrics())
    if "restorations" in method.figures:
        batch = trainer.figure_batch()
        plot_restorations(
            batch["clean"],
            batch["perturbed"],
            batch["restored"],
            batch["target"],
            out_dir / RESTORATIONS_PNG,
            title=f"{method.label}, epoch {epoch} (fixed validation batch)",
        )
