"""restorations.png shows each distinct image once, with a title that says what it is."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semantic_genesis.pretrain.figures import curves_figure, plot_restorations, restorations_figure


def _cubes(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((2, 1, 8, 8, 4), dtype=np.float32)


def _titles(fig) -> list[str]:  # noqa: ANN001
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def test_each_image_is_shown_once_with_its_name() -> None:
    """The clean cube is the target (up to the flips the input shares): one column, not two."""
    fig = restorations_figure(_cubes(1), _cubes(2), _cubes(0))
    assert _titles(fig) == ["input (perturbed)", "restored", "target"]
    assert len(fig.axes) == 2 * 3  # two cubes, three images each


def test_without_a_decoder_there_is_no_restoration_column() -> None:
    fig = restorations_figure(_cubes(1), None, _cubes(3))
    assert _titles(fig) == ["input (perturbed)", "target"]


def test_plot_restorations_writes_a_png(tmp_path: Path) -> None:
    clean = _cubes(0)
    out = plot_restorations(clean, _cubes(1), None, clean, tmp_path / "r.png", title="epoch 1")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_accuracy_on_a_fixed_axis_with_chance_and_whole_epochs() -> None:
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1 / e, "train_acc": 0.2 * e,
                "val_acc": 0.25, "lr": 1e-3} for e in (1, 2)]
    fig = curves_figure(history, n_classes=4)
    panels = {ax.get_title(): ax for ax in fig.axes}
    acc = panels["pseudo-class accuracy"]
    assert acc.get_ylim() == (0.0, 1.02)
    chance = [ln for ln in acc.get_lines() if ln.get_label() == "chance (1/4)"]
    assert len(chance) == 1 and list(chance[0].get_ydata()) == [0.25, 0.25]
    fig.canvas.draw()
    ticks = [t for t in panels["total loss"].get_xticks() if 1 <= t <= 2]
    assert ticks == [1.0, 2.0]  # no epoch 1.2, 1.4, ...
    assert not [ln for ln in panels["total loss"].get_lines() if "chance" in ln.get_label()]
