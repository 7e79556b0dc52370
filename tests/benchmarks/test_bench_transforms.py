"""benchmarks/bench_transforms.py runs and reports what its docstring promises (tiny sizes: the
figures themselves are not asserted, speed is measured, not tested)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_transforms.py"


def run(*args: str) -> dict:
    cmd = [sys.executable, str(BENCH), "--json", "--batch", "2", "--numpy-cubes", "1"]
    cmd += ["--repeats", "1", "--seeds", "1", "--size", "32", "32", "16", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)
    return json.loads(done.stdout)


def test_sg_rows_ratios_and_kernel_comparison():
    result = run("--preset", "sg")
    rows = {r["name"]: r for r in result["rows"]}
    assert list(rows) == [
        "elastic", "local-shuffle", "non-linear", "in-paint", "out-paint", "noise",
        "sg-no-elastic", "sg",
    ]  # fmt: skip
    assert result["kernels"].startswith("native kernels")
    for name, row in rows.items():
        assert row["torch_ms_per_cube"] > 0 and row["numpy_ms_per_cube"] > 0
        assert row["speedup"] > 0
        # the same transform without the kernels, timed in the same run, where they are used
        assert ("kernels_speedup" in row) == (name not in ("local-shuffle",))
    assert rows["sg"]["speedup_vs_expected"] > 0


def test_without_kernels_no_comparison(monkeypatch):
    monkeypatch.setenv("SEMGEN_NATIVE", "0")
    result = run("--preset", "sg")
    assert result["kernels"] == "torch (SEMGEN_NATIVE=0)"
    assert all("kernels_speedup" not in r for r in result["rows"])
