"""Random states captured and restored for an exact resume (semantic_genesis.training.state)."""

from __future__ import annotations

import io
import random

import numpy as np
import torch

from semantic_genesis.training.state import EarlyStopping, capture_rng, restore_rng
from semantic_genesis.utils.seed import derive_rng


def _draws(gens: dict) -> list:
    return [random.random(), float(np.random.rand()), float(torch.rand(1)),
            float(gens["np"].random()), float(torch.rand(1, generator=gens["torch"]))]


def test_every_stream_continues_after_a_round_trip_through_a_safe_checkpoint() -> None:
    gens = {"np": derive_rng(3, "x"), "torch": torch.Generator().manual_seed(4)}
    _draws(gens)
    buf = io.BytesIO()
    torch.save(capture_rng(gens), buf)
    expected = _draws(gens)
    _draws(gens)  # move every stream on
    buf.seek(0)
    fresh = {"np": derive_rng(9, "y"), "torch": torch.Generator().manual_seed(0)}
    restore_rng(torch.load(buf, weights_only=True), fresh)
    assert _draws(fresh) == expected


def test_early_stopping_counts_epochs_without_improvement_and_round_trips() -> None:
    early = EarlyStopping(patience=2, min_delta=0.1)
    assert early.step(1.0, 1) and not early.step(0.95, 2) and not early.should_stop
    assert not early.step(0.93, 3) and early.should_stop
    other = EarlyStopping(patience=2, min_delta=0.1)
    other.load_state_dict(early.state_dict())
    assert (other.best_loss, other.best_epoch, other.should_stop) == (1.0, 1, True)
