"""Small pieces both tasks use: the device, the model, seeding, seeded flips, batching, the
optimiser step and the shared training loop in the run folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semantic_genesis.finetune.backbone import build_model
from semantic_genesis.finetune.config import FinetuneConfig
from semantic_genesis.finetune.recipes import Recipe
from semantic_genesis.finetune.trainer import FitResult, fit, run_folder
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.seed import derive_rng


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks the first CUDA device when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SemgenError(f"device {name!r} asked for, but no CUDA device is available")
    return torch.device(name)


def build_task_model(
    task: str,
    n_out: int,
    cfg: FinetuneConfig,
    patches: dict[str, Sequence[int] | None],
    device: torch.device,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The task's network as the config asks (init, width, norm, freezing, backbone), its
    ``patches`` checked against the backbone, moved to ``device``; with its init summary."""
    model, init_info = build_model(
        task, n_out, cfg.init, cfg.width, cfg.norm, cfg.freeze_encoder, cfg.linear_probe,
        backbone=cfg.backbone, patches=patches,
    )
    model.to(device)
    return model, init_info


def training_rng(cfg: FinetuneConfig, stream: str) -> np.random.Generator:
    """The training draws' generator (stream ``stream`` of ``cfg.seed``); torch's own generator
    is seeded from ``cfg.seed`` too, so a run repeats exactly."""
    rng = derive_rng(cfg.seed, stream)
    torch.manual_seed(cfg.seed)
    return rng


def optimiser_step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> float:
    """One gradient step on ``loss``; returns its value."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


def fit_in_folder(
    model: torch.nn.Module,
    cfg: FinetuneConfig,
    recipe: Recipe,
    data_dir: Path,
    out_dir: Path,
    init_info: dict[str, Any],
    n_classes: int,
    rng: np.random.Generator,
    train_epoch: Callable[[torch.optim.Optimizer], float],
    validate: Callable[[], tuple[float, float]],
    desc: str,
) -> FitResult:
    """Run the shared training loop in ``out_dir``'s run folder (its model card, settings and
    resumable checkpoints; ``rng``, the training draws, is saved with them)."""
    files = run_folder(cfg, data_dir, out_dir, init_info, n_classes, recipe.patch, {"train": rng})
    return fit(model, recipe, cfg.epochs, train_epoch, validate, desc=desc, run=files)


def random_flips(tensors: Sequence[torch.Tensor], rng: np.random.Generator) -> list[torch.Tensor]:
    """Flip each sample along each spatial axis with probability 0.5; the same flips for every
    tensor given (an image batch and its label batch). Tensors are (N, C, X, Y, Z)."""
    flips = rng.random((tensors[0].shape[0], 3)) < 0.5
    out = [t.clone() for t in tensors]
    for i, axes in enumerate(flips):
        dims = [d + 1 for d in np.flatnonzero(axes)]  # sample i has no batch axis: C, X, Y, Z
        if dims:
            for t in out:
                t[i] = torch.flip(t[i], dims)
    return out


def batches(n: int, batch_size: int) -> Iterator[slice]:
    """Consecutive slices covering ``range(n)``."""
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def to_tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A (N, X, Y, Z) numpy batch as a float32 (N, 1, X, Y, Z) tensor on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).unsqueeze(1).to(device)


@dataclass
class TaskOutcome:
    """What a task run returns to :func:`semantic_genesis.finetune.finetune`."""

    metric: str  # the headline test metric: "auc" or "iou"
    test: dict[str, Any]  # test metrics
    fit: FitResult
    data: dict[str, Any]  # counts per split and notes
    init: dict[str, Any]  # what initialised the model
    model: torch.nn.Module
