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


@pytest.fixture(scope="session")
def synthetic_cohort(tmp_path_factory: pytest.TempPathFactory):
    """A 6-patient synthetic cohort folder (4 train, 2 val), 96x96x64 voxels."""
    from tests.helpers import make_cohort

    path = tmp_path_factory.mktemp("synthetic_cohort")
    make_cohort(path)
    return path


@pytest.fixture(scope="session")
def synthetic_patterns(tmp_path_factory: pytest.TempPathFactory, synthetic_cohort):
    """A patterns folder over ``synthetic_cohort``: 3 classes, patch 32x32x16."""
    from semantic_genesis.io.manifests import read_cohort
    from tests.helpers import make_patterns

    path = tmp_path_factory.mktemp("synthetic_patterns")
    make_patterns(path, synthetic_cohort, read_cohort(synthetic_cohort))
    return path


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory):
    """Six tiny patients in the images/ + labels/ + candidates.csv layout (tests/targets.py)."""
    from tests.targets import write_tiny_data

    return write_tiny_data(tmp_path_factory.mktemp("tiny_target"))
