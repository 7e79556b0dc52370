"""Everything a run needs to continue exactly: random states and the early-stopping counters.

A resumed run must end with the same weights as one never interrupted (issue 6). So ``last.pt``
holds, besides model/optimiser/scheduler, every random state that feeds the run — Python's,
numpy's legacy global, torch's (CPU and CUDA) and the run's own generators (torch
``Generator`` or numpy ``Generator``) — in plain types that ``torch.load(weights_only=True)``
accepts.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

RNG_KEYS = ("python", "numpy", "torch", "cuda", "generators")

#: a run's own random generator: torch's (e.g. for on-device perturbations) or numpy's
Generator = torch.Generator | np.random.Generator


def _generator_state(gen: Generator) -> Any:
    if isinstance(gen, np.random.Generator):
        return dict(gen.bit_generator.state)  # plain dicts and ints
    return gen.get_state()


def capture_rng(generators: dict[str, Generator] | None = None) -> dict[str, Any]:
    """All random states of this process as tensors, lists, dicts and ints."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": {
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generators": {k: _generator_state(g) for k, g in (generators or {}).items()},
    }
    return state


def restore_rng(state: dict[str, Any], generators: dict[str, Generator] | None = None) -> None:
    """Put back the states recorded by :func:`capture_rng`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]},
            "has_gauss": np_state["has_gauss"],
            "gauss": np_state["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for key, gen in (generators or {}).items():
        if key not in state["generators"]:
            continue
        if isinstance(gen, np.random.Generator):
            gen.bit_generator.state = state["generators"][key]
        else:
            gen.set_state(state["generators"][key])


@dataclass
class EarlyStopping:
    """Stop after ``patience`` epochs without a validation-loss improvement (method.md §5.1)."""

    patience: int = 50
    min_delta: float = 0.0
    best_loss: float = float("inf")
    best_epoch: int = 0  # 1-based; 0 = none yet
    bad_epochs: int = 0

    def step(self, loss: float, epoch: int) -> bool:
        """Record epoch ``epoch``'s loss; True when it is a new best."""
        if loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch, self.bad_epochs = float(loss), epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        """True once ``patience`` epochs in a row brought no improvement."""
        return self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        """The counters, as plain types."""
        return {k: v for k, v in asdict(self).items() if k not in ("patience", "min_delta")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the counters saved by :meth:`state_dict`."""
        self.best_loss = float(state["best_loss"])
        self.best_epoch = int(state["best_epoch"])
        self.bad_epochs = int(state["bad_epochs"])
