"""results.png: panels only where there are scores, a fixed [0, 1] score axis, chance for AUC."""

from __future__ import annotations

import math
from pathlib import Path

from semantic_genesis.benchmark.statistics import CellSummary
from semantic_genesis.finetune.plots import (
    CHANCE_AUC,
    SCORE_LIMITS,
    plot_curves,
    plot_results,
    results_figure,
)

INITS = ["scratch", "mg", "sg"]


def _cells(task: str, metric: str, means: list[float], fractions=(1.0,)) -> list[CellSummary]:
    return [CellSummary(task, init, f, metric, 2, m, 0.02, [m, m], 3.0)
            for f in fractions for init, m in zip(INITS, means, strict=True)]


def _chance_lines(ax) -> list:  # noqa: ANN001
    return [ln for ln in ax.get_lines()
            if list(ln.get_ydata()) == [CHANCE_AUC, CHANCE_AUC] and "chance" in ln.get_label()]


def test_task_without_scores_gets_no_panel_and_auc_has_chance_on_a_fixed_axis() -> None:
    nan = math.nan
    summaries = _cells("ncc", "auc", [0.21, 0.35, 0.3]) + _cells("ncs", "iou", [nan, nan, nan])
    fig = results_figure(summaries, INITS)
    assert len(fig.axes) == 1  # the IoU task has nothing to draw
    (ax,) = fig.axes
    assert ax.get_ylim() == SCORE_LIMITS  # not starting at min(score) - 0.1
    assert len(_chance_lines(ax)) == 1
    assert _chance_lines(ax)[0].get_linestyle() == "--"
    assert "ncs" in fig._suptitle.get_text()


def test_zero_scores_are_drawn_and_written_and_segmentation_has_no_chance_line() -> None:
    fig = results_figure(_cells("ncs", "iou", [0.0, 0.0, 0.01]), INITS)
    (ax,) = fig.axes
    assert ax.get_ylim() == SCORE_LIMITS and not _chance_lines(ax)
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["0.000", "0.000", "0.010"]


def test_fraction_curves_only_for_tasks_with_several_fractions(tmp_path: Path) -> None:
    summaries = (_cells("ncc", "auc", [0.6, 0.7, 0.8], fractions=(0.5, 1.0))
                 + _cells("ncs", "dice", [0.1, 0.2, 0.3]))
    fig = results_figure(summaries, INITS)
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 3 and sum("label fraction" in t for t in titles) == 1
    assert all(ax.get_ylim() == SCORE_LIMITS for ax in fig.axes)
    assert sum(len(_chance_lines(ax)) for ax in fig.axes) == 2  # both AUC panels
    out = plot_results(summaries, tmp_path / "results.png", INITS)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_learning_curves_png(tmp_path: Path) -> None:
    from semantic_genesis.finetune.trainer import EpochRecord

    fields = EpochRecord.__dataclass_fields__
    history = [EpochRecord(**{k: (e if k == "epoch" else 0.5) for k in fields}) for e in (1, 2)]
    out = plot_curves(history, tmp_path / "curves.png", "auc", best_epoch=2, title="t")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
