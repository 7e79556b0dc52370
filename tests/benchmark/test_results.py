"""The results writer flags numbers that are missing or may be wrong (issue 14)."""

from __future__ import annotations

import math
from types import SimpleNamespace

from semantic_genesis.benchmark.results import flagged_runs, results_markdown


def _row(seed: int, score: float, warnings: str = "") -> dict:
    return {"task": "t", "init": "scratch", "label_fraction": 1.0, "seed": seed,
            "metric": "auc", "score": score, "warnings": warnings,
            "run_dir": f"runs/t__scratch__f1__s{seed}"}


def test_failed_nan_and_warned_runs_are_listed() -> None:
    rows = [_row(0, 0.8), _row(1, math.nan), _row(2, 0.7, "3 candidates outside their scan")]
    flagged = flagged_runs(rows, {"t__scratch__f1__s3": "bad data"})
    assert list(flagged) == ["t__scratch__f1__s3", "t__scratch__f1__s1", "t__scratch__f1__s2"]
    assert "FAILED" in flagged["t__scratch__f1__s3"]
    assert "undefined (NaN)" in flagged["t__scratch__f1__s1"]
    assert "outside their scan" in flagged["t__scratch__f1__s2"]
    config = SimpleNamespace(inits={"scratch": "scratch"}, seeds=[0, 1, 2, 3],
                             label_fractions=[1.0], scratch="scratch", models_genesis="mg")
    md = results_markdown([], [], config, {}, flagged)
    assert "## Runs to read with care" in md and "`t__scratch__f1__s3`: FAILED" in md
    assert flagged_runs([_row(0, 0.8)], {}) == {}
