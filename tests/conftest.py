"""Shared test settings: quiet progress bars, one torch thread per xdist worker."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("SEMGEN_QUIET", "1")


@pytest.fixture(autouse=True, scope="session")
def _torch_threads() -> None:
    import torch

    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)
