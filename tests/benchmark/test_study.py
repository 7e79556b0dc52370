"""The study's overview tables: markers from the paired test, semantic pairs, differences."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import ttest_rel

from semantic_genesis.benchmark.study import overview_table, semantic_pairs, semantics_table


def _rows(scores: dict[str, list[float]], task: str = "t", protocol: str = "probe-logreg"):
    return [{"task": task, "protocol": protocol, "init": init, "label_fraction": 1.0,
             "seed": seed, "score": score}
            for init, values in scores.items() for seed, score in enumerate(values)]


def test_pairs_follow_the_names() -> None:
    inits = ["scratch", "sg", "sg-no-sem", "mg", "mg-sem", "ae", "rotation-sem"]
    assert semantic_pairs(inits) == [("sg-no-sem", "sg"), ("mg", "mg-sem")]


def test_overview_marks_only_paired_significant_differences() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(0.6, 0.05, 10)
    scores = {"scratch": base.tolist(),
              "better": (base + 0.05 + rng.normal(0, 0.005, 10)).tolist(),  # paired: clear
              "same": (base + rng.normal(0, 0.05, 10)).tolist()}
    text = overview_table(_rows(scores))
    line = {r.split("|")[1].strip(): r for r in text.splitlines() if r.startswith("| ")}
    assert "▲" in line["better"] and "▼" not in line["better"]
    same_p = ttest_rel(scores["same"], scores["scratch"]).pvalue
    assert ("▲" in line["same"] or "▼" in line["same"]) == (same_p < 0.05)
    assert f"{np.mean(scores['better']):.3f} ± {np.std(scores['better'], ddof=1):.3f}" in text
    assert "2 tests" in text


def test_semantics_table_reports_the_paired_difference() -> None:
    without = [0.5, 0.6, 0.55, 0.52]
    with_sem = [0.6, 0.62, 0.6, 0.58]
    text = semantics_table(_rows({"ae": without, "ae-sem": with_sem, "lone": without}))
    diff = np.subtract(with_sem, without)
    p = ttest_rel(with_sem, without).pvalue
    row = next(r for r in text.splitlines() if r.startswith("| ae |"))
    assert f"{diff.mean():+.3f}" in row and f"p {p:.2g}" in row
    assert "lone" not in text and not math.isnan(p)


def test_study_figure_draws_a_panel_per_task_and_protocol(tmp_path) -> None:
    import matplotlib.image as mpimg

    from semantic_genesis.benchmark.study import study_figure

    rows = _rows({"scratch": [0.5, 0.6], "ae": [0.55, 0.6], "ae-sem": [0.6, 0.7]})
    rows += _rows({"scratch": [0.1, 0.2], "ae": [0.2, 0.3]}, task="s", protocol="probe-voxel")
    study_figure(rows, tmp_path / "study.png")
    image = mpimg.imread(tmp_path / "study.png")
    assert image.shape[1] > image.shape[0] > 100  # two panels side by side
    assert [p.name for p in tmp_path.iterdir()] == ["study.png"]  # no temporary file left
