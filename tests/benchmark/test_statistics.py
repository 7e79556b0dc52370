"""t-tests, summaries and label efficiency on crafted numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from semantic_genesis.benchmark.statistics import label_efficiency, summarise, ttest_p


def _rows(task, init, frac, scores):
    return [
        {
            "task": task,
            "init": init,
            "label_fraction": frac,
            "seed": i,
            "metric": "iou",
            "score": s,
            "epochs_to_best": 10 + i,
        }
        for i, s in enumerate(scores)
    ]


def test_ttest_matches_the_textbook_formula() -> None:
    from scipy.stats import t as student

    a, b = [0.80, 0.82, 0.84], [0.70, 0.71, 0.75]
    na, nb = len(a), len(b)
    sp2 = ((na - 1) * np.var(a, ddof=1) + (nb - 1) * np.var(b, ddof=1)) / (na + nb - 2)
    t = (np.mean(a) - np.mean(b)) / math.sqrt(sp2 * (1 / na + 1 / nb))
    expected = 2 * student.sf(abs(t), na + nb - 2)
    assert ttest_p(a, b) == pytest.approx(expected)
    assert ttest_p(a, b) < 0.05
    assert math.isnan(ttest_p([0.5], [0.4, 0.6]))  # one run: undefined
    assert math.isnan(ttest_p([0.5, 0.5], [0.5, 0.5]))  # no spread: undefined


def test_summary_means_stds_and_pvalues() -> None:
    rows = (
        _rows("ncs", "scratch", 1.0, [0.70, 0.71, 0.75])
        + _rows("ncs", "mg", 1.0, [0.76, 0.78, 0.77])
        + _rows("ncs", "sg", 1.0, [0.80, 0.82, 0.84])
    )
    cells = {s.init: s for s in summarise(rows)}
    assert cells["sg"].mean == pytest.approx(0.82)
    assert cells["sg"].std == pytest.approx(0.02)
    assert cells["sg"].n == 3 and cells["sg"].epochs_to_best == pytest.approx(11)
    assert cells["sg"].p_vs_scratch == pytest.approx(
        ttest_p([0.80, 0.82, 0.84], [0.70, 0.71, 0.75])
    )
    assert cells["sg"].p_vs_mg == pytest.approx(ttest_p([0.80, 0.82, 0.84], [0.76, 0.78, 0.77]))
    assert math.isnan(cells["scratch"].p_vs_scratch)  # not against itself
    assert math.isnan(summarise(rows, mg=None)[0].p_vs_mg)


def test_fraction_of_labels_reaching_scratchs_best() -> None:
    rows = []
    # scratch: best mean 0.80 at all labels
    for frac, mean in ((0.1, 0.60), (0.25, 0.70), (0.5, 0.76), (1.0, 0.80)):
        rows += _rows("t", "scratch", frac, [mean - 0.01, mean, mean + 0.01])
    # sg reaches 0.80 with a quarter of the labels; mg with half; rot never
    for frac, mean in ((0.1, 0.72), (0.25, 0.80), (0.5, 0.83), (1.0, 0.85)):
        rows += _rows("t", "sg", frac, [mean - 0.01, mean, mean + 0.01])
    for frac, mean in ((0.1, 0.65), (0.25, 0.75), (0.5, 0.81), (1.0, 0.82)):
        rows += _rows("t", "mg", frac, [mean - 0.01, mean, mean + 0.01])
    for frac, mean in ((0.1, 0.5), (0.25, 0.6), (0.5, 0.7), (1.0, 0.79)):
        rows += _rows("t", "rot", frac, [mean - 0.01, mean, mean + 0.01])
    eff = {e.init: e for e in label_efficiency(summarise(rows))}
    assert eff["scratch"].scratch_best == pytest.approx(0.80)
    assert eff["scratch"].fraction_to_reach == 1.0 and eff["scratch"].label_saving == 0.0
    assert eff["sg"].fraction_to_reach == 0.25 and eff["sg"].label_saving == pytest.approx(0.75)
    assert eff["mg"].fraction_to_reach == 0.5 and eff["mg"].label_saving == pytest.approx(0.5)
    assert math.isnan(eff["rot"].fraction_to_reach) and math.isnan(eff["rot"].label_saving)
