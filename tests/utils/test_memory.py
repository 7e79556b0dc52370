"""glibc keeps freed memory: the perturbation batches stop costing page faults."""

import os
import subprocess
import sys

import pytest

from semantic_genesis import cli

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")

# a fresh interpreter: mallopt changes the whole process
CHURN = """
import resource, sys, torch
from semantic_genesis.transforms import build_preset
from semantic_genesis.utils.memory import keep_freed_memory
applied = keep_freed_memory()
torch.set_num_threads(1)
preset, x = build_preset("sg"), torch.rand(8, 1, 32, 32, 16)
gen = torch.Generator().manual_seed(0)
for _ in range(4):
    preset(x, gen)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(8):
    preset(x, gen)
print(applied, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 64)
"""


def _churn(env: dict[str, str] | None = None) -> tuple[bool, float]:
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    run_env.pop("GLIBC_TUNABLES", None)
    run_env.update(env or {})
    out = subprocess.run(
        [sys.executable, "-c", CHURN], env=run_env, capture_output=True, text=True, check=True
    )
    applied, faults = out.stdout.split()
    return applied == "True", float(faults)


def test_sg_batches_take_almost_no_page_faults_once_warm():
    applied, faults_per_cube = _churn()
    # the user's own setting wins: here glibc's default trim threshold, so nothing is applied
    default_applied, default_faults = _churn({"MALLOC_TRIM_THRESHOLD_": "131072"})
    assert applied and not default_applied
    assert faults_per_cube < 5  # about 100 per cube with glibc's defaults on the CI machine
    assert faults_per_cube < default_faults / 5


def test_every_semgen_command_applies_it(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append(1) or True)
    cli.main([])
    capsys.readouterr()
    assert calls == [1]
