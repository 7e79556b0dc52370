"""check_device: the device names every verb accepts, checked before any work."""

from __future__ import annotations

import pytest
import torch

from semantic_genesis.utils.device import check_device
from semantic_genesis.utils.errors import SemgenError


@pytest.mark.parametrize("name", ["auto", "cpu"])
def test_always_available_names_pass_unchanged(name: str) -> None:
    assert check_device(name) == name


@pytest.mark.parametrize("name", ["banana", "", "CUDA", "cuda:", "cuda:-1", "cuda:x", "gpu", " cpu"])
def test_unknown_names_are_refused_with_the_choices(name: str) -> None:
    with pytest.raises(SemgenError, match="is not one of auto, cpu, cuda"):
        check_device(name)


def test_non_string_is_refused() -> None:
    with pytest.raises(SemgenError, match="not one of"):
        check_device(3)  # type: ignore[arg-type]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_a_gpu_is_refused(name: str) -> None:
    with pytest.raises(SemgenError, match="no CUDA device is available"):
        check_device(name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_index_beyond_the_gpus_is_refused() -> None:
    assert check_device("cuda:0") == "cuda:0"
    with pytest.raises(SemgenError, match="CUDA device"):
        check_device(f"cuda:{torch.cuda.device_count()}")


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_mps_without_the_backend_is_refused() -> None:
    with pytest.raises(SemgenError, match="MPS backend is not available"):
        check_device("mps")
