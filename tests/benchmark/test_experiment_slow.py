"""The CPU experiment (slow): Semantic Genesis vs Models Genesis vs scratch on the phantom
targets, over three seeds, with the table and the plot.

Runs ``semantic_genesis/configs/experiment-phantom.yaml`` end to end (phantoms, prepare,
discover, pre-train SG and MG at width 8, then the benchmark). Set ``SEMGEN_EXPERIMENT_OUT`` to
keep the outputs (and to resume a killed run); otherwise they go to a temporary folder.
It asserts that the comparison is complete and well formed, not who wins: the result is
reported, whichever way it goes.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import pytest


@pytest.mark.slow
def test_phantom_experiment(tmp_path: Path) -> None:
    from semantic_genesis.benchmark.experiment import load_experiment_config, run_experiment

    out = Path(os.environ.get("SEMGEN_EXPERIMENT_OUT") or tmp_path / "experiment")
    config = load_experiment_config("experiment-phantom")
    result = run_experiment(config, out)
    bench = out / "benchmark"
    with open(bench / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    seeds = config.benchmark["seeds"]
    fractions = config.benchmark["label_fractions"]
    assert len(seeds) >= 3
    assert len(rows) == 3 * len(seeds) * len(fractions) * 2  # inits x seeds x fractions x tasks
    assert {r["init"] for r in rows} == {"scratch", "sg", "mg"}
    assert all(0 <= float(r["score"]) <= 1 for r in rows)
    for s in result.summaries:
        assert s.n == len(seeds) and not math.isnan(s.mean)
        if s.init != "scratch":
            assert not math.isnan(s.p_vs_scratch)
    md = (bench / "results.md").read_text()
    assert "phantom-ncc" in md and "phantom-ncs" in md and "p vs mg" in md
    assert (bench / "results.png").stat().st_size > 10_000
    print(md)
