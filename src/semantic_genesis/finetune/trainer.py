"""The fine-tuning loop shared by both tasks (method.md §7.2).

Adam at the recipe's learning rate; ReduceLROnPlateau on the validation loss (factor 0.5,
patience 6, min_delta 1e-4, min_lr 1e-6); early stopping when the validation loss has not
improved for the recipe's patience; the weights of the best validation loss are kept, as the
reference's "best val_loss checkpoint". The task supplies one training epoch and one validation.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from semantic_genesis.finetune.recipes import Recipe
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.progress import progress


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


def fit(
    model: nn.Module,
    recipe: Recipe,
    epochs: int,
    train_epoch: Callable[[torch.optim.Optimizer], float],
    validate: Callable[[], tuple[float, float]],
    desc: str = "finetune",
) -> FitResult:
    """Train ``model`` and leave it holding the weights of the best validation loss.

    Args:
        model: the network; only parameters with ``requires_grad`` are optimised.
        recipe: learning rate, patience and plateau schedule.
        epochs: the most epochs to run.
        train_epoch: runs one epoch with the optimiser, returns the mean training loss.
        validate: returns (validation loss, validation metric) with the model in eval mode.
        desc: the progress bar's label.
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
    result = FitResult(best_epoch=0, best_val_loss=math.inf)
    best_state = copy.deepcopy(model.state_dict())
    bar = progress(range(1, max(1, epochs) + 1), desc=desc)
    for epoch in bar:
        t0 = time.perf_counter()
        train_loss = float(train_epoch(opt))
        val_loss, val_metric = validate()
        if not math.isfinite(train_loss) or not math.isfinite(val_loss):
            nan_weights = any(not bool(torch.isfinite(p).all()) for p in model.parameters())
            cause = ("the network's weights hold NaN" if nan_weights
                     else "try a lower learning rate (--lr)")
            if epoch == 1 and nan_weights:
                cause += " (at the first epoch: check the initialisation and the data)"
            raise SemgenError(
                f"the loss became {train_loss if not math.isfinite(train_loss) else val_loss} "
                f"at epoch {epoch}; {cause}"
            )
        result.history.append(
            EpochRecord(
                epoch,
                train_loss,
                float(val_loss),
                float(val_metric),
                opt.param_groups[0]["lr"],
                time.perf_counter() - t0,
            )
        )
        sched.step(val_loss)
        if val_loss < result.best_val_loss - recipe.plateau_min_delta or result.best_epoch == 0:
            result.best_val_loss, result.best_epoch = float(val_loss), epoch
            best_state = copy.deepcopy(model.state_dict())
        bar.set_postfix(
            loss=f"{train_loss:.4f}",
            val=f"{val_loss:.4f}",
            metric=f"{val_metric:.3f}",
            best=result.best_epoch,
        )
        if epoch - result.best_epoch >= recipe.patience:
            result.stopped_early = True
            break
    model.load_state_dict(best_state)
    return result
