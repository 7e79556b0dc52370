"""Every run records the versions, the hardware and the compiled kernels' state."""

from __future__ import annotations

import pytest

from semantic_genesis.transforms import native
from semantic_genesis.utils.provenance import run_info


def test_run_info_records_the_kernels_and_libraries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEMGEN_NATIVE", raising=False)
    info = run_info()
    kernels = info["native_kernels"]
    assert kernels["built"] is native.built() and kernels["in_use"] is native.built()
    assert kernels["summary"] == native.describe()
    assert {"torch", "numpy", "SimpleITK", "monai"} <= set(info["libraries"])
    assert isinstance(info["hardware"]["mps"], bool)


def test_run_info_says_when_the_kernels_are_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMGEN_NATIVE", "0")
    kernels = run_info()["native_kernels"]
    assert kernels["in_use"] is False and kernels["SEMGEN_NATIVE"] == "0"
    if native.built():
        assert kernels["summary"] == "torch (SEMGEN_NATIVE=0)"


def test_run_info_says_why_kernels_that_were_not_built_are_not_used(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native, "built", lambda: False)
    monkeypatch.setattr(native, "available", lambda: False)
    kernels = run_info()["native_kernels"]
    assert kernels["built"] is False and kernels["in_use"] is False
    assert "transforms._native is missing" in kernels["reason"]
