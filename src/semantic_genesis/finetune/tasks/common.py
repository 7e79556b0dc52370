"""Small pieces both tasks use: the device, seeded flips, batching."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from semantic_genesis.finetune.trainer import FitResult
from semantic_genesis.utils.errors import SemgenError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks the first CUDA device when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SemgenError(f"device {name!r} asked for, but no CUDA device is available")
    return torch.device(name)


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
