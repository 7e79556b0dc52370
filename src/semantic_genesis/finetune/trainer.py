"""Fine-tuning on the shared training loop (:class:`semantic_genesis.training.Loop`).

Adam at the recipe's learning rate; ReduceLROnPlateau on the validation loss (factor 0.5,
patience 6, min_delta 1e-4, min_lr 1e-6); early stopping when the validation loss has not
improved for the recipe's patience; the weights of the best validation loss are kept, as the
reference's "best val_loss checkpoint" (method.md §7.2). The task supplies one training epoch and
one validation; the loop writes ``checkpoints/last.pt`` and ``best.pt`` (with the model card) and
``metrics.csv`` into the run folder each epoch, and a killed run resumes exactly from last.pt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from semantic_genesis.finetune.config import FinetuneConfig
from semantic_genesis.finetune.recipes import Recipe
from semantic_genesis.models.card import ModelCard
from semantic_genesis.training import Loop, NonFiniteMetric
from semantic_genesis.training.state import Generator
from semantic_genesis.utils.errors import SemgenError

#: settings a resumed fine-tune may change: where it runs, how long, what it writes at the end
RESUMABLE = ("resume", "device", "cache_dir", "epochs", "save_predictions")


@dataclass
class EpochRecord:
    """One epoch of the learning curves (curves.png, metrics.json)."""

    epoch: int  # 1-based
    train_loss: float
    val_loss: float
    val_metric: float
    lr: float
    seconds: float


@dataclass
class FitResult:
    """What training produced: the best weights and the curves."""

    best_epoch: int  # 1-based; = epochs to the best validation loss
    best_val_loss: float
    history: list[EpochRecord] = field(default_factory=list)
    stopped_early: bool = False


@dataclass
class RunFolder:
    """Where a task's training keeps its checkpoints and metrics.csv, and whether it resumes.

    ``card`` describes the weights; ``settings`` are stored with the checkpoints and a resume
    with other values (except :data:`RESUMABLE`) is refused; ``generators`` are the task's own
    random streams, saved and restored with the others."""

    out_dir: Path
    card: ModelCard
    settings: dict[str, Any]
    resume: bool = False
    generators: dict[str, Generator] = field(default_factory=dict)


def finetune_card(config: FinetuneConfig, init: dict[str, Any], n_classes: int,
                  patch: tuple[int, int, int]) -> ModelCard:
    """The model card of fine-tuned weights (checkpoints and model.pt)."""
    classify = config.task == "classify"
    return ModelCard(
        architecture=init.get("architecture", "encoder3d" if classify else "unet3d"),
        backbone=init.get("backbone", "reference"),
        width=init["width"],
        n_classes=n_classes,
        norm=init["norm"],
        head="mlp",
        patch_size=tuple(patch),
        modality=config.modality,
        pretext=f"finetune-{config.task}",
        semantic=False,
        # the pre-training cases stay listed, so a fine-tuned init is checked too (§1.1)
        seen_cases=list((init.get("model_card") or {}).get("seen_cases") or []),
        notes={"init": config.init, "linear_probe": config.linear_probe},
    )


def run_folder(config: FinetuneConfig, data_dir: Path, out_dir: Path, init: dict[str, Any],
               n_classes: int, patch: tuple[int, int, int],
               generators: dict[str, Generator]) -> RunFolder:
    """The :class:`RunFolder` of a task run (its card, settings and random streams)."""
    from semantic_genesis.utils.config import to_dict

    settings = {**to_dict(config), "data_dir": str(Path(data_dir).resolve())}
    return RunFolder(Path(out_dir), finetune_card(config, init, n_classes, patch), settings,
                     config.resume, generators)


def fit(
    model: nn.Module,
    recipe: Recipe,
    epochs: int,
    train_epoch: Callable[[torch.optim.Optimizer], float],
    validate: Callable[[], tuple[float, float]],
    desc: str = "finetune",
    run: RunFolder | None = None,
) -> FitResult:
    """Train ``model`` and leave it holding the weights of the best validation loss.

    Args:
        model: the network; only parameters with ``requires_grad`` are optimised.
        recipe: learning rate, patience and plateau schedule.
        epochs: the most epochs.
        train_epoch: runs one epoch with the optimiser, returns the mean training loss.
        validate: returns (validation loss, validation metric) with the model in eval mode.
        desc: the progress bar's label.
        run: the run folder for checkpoints, metrics.csv and resuming; None: in memory only.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise SemgenError("nothing to train: every parameter is frozen")
    opt = torch.optim.Adam(params, lr=recipe.lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt,
        mode="min",
        factor=recipe.plateau_factor,
        patience=recipe.plateau_patience,
        threshold=recipe.plateau_min_delta,
        threshold_mode="abs",
        min_lr=recipe.min_lr,
    )
    files: dict[str, Any] = {}
    if run is not None:
        files = {"out_dir": run.out_dir, "card": lambda epoch: run.card,
                 "settings": run.settings, "generators": run.generators}
    loop = Loop(model, opt, sched, epochs=max(1, epochs), patience=recipe.patience,
                min_delta=recipe.plateau_min_delta, desc=desc, resumable=RESUMABLE, **files)

    def evaluate() -> dict[str, float]:
        loss, metric = validate()
        return {"loss": loss, "metric": metric}

    try:
        done = loop.run(lambda epoch: {"loss": train_epoch(opt)}, evaluate,
                        resume=run is not None and run.resume)
    except NonFiniteMetric as exc:
        nan_weights = any(not bool(torch.isfinite(p).all()) for p in model.parameters())
        cause = "the network's weights hold NaN" if nan_weights else "try a lower learning rate (--lr)"
        if exc.epoch == 1 and nan_weights:
            cause += " (at the first epoch: check the initialisation and the data)"
        raise SemgenError(f"the loss became {exc.value} at epoch {exc.epoch}; {cause}") from None
    history = [
        EpochRecord(r["epoch"], r["train_loss"], r["val_loss"], r["val_metric"], r["lr"],
                    r["seconds"])
        for r in done.history
    ]
    return FitResult(done.best_epoch, done.best_loss, history, done.stopped_early)
