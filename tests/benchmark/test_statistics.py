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


def test_paired_statistics_agree_with_scipy_and_the_formula() -> None:
    from scipy.stats import ttest_rel, wilcoxon

    from semantic_genesis.benchmark.statistics import paired_stats

    a = [0.81, 0.77, 0.85, 0.79, 0.90, 0.74, 0.83, 0.80, 0.86, 0.78]
    b = [0.75, 0.76, 0.80, 0.70, 0.84, 0.73, 0.79, 0.78, 0.80, 0.71]
    d = np.subtract(a, b)
    st = paired_stats(a, b)
    assert st["n"] == 10 and st["mean_diff"] == pytest.approx(d.mean())
    assert st["p"] == pytest.approx(ttest_rel(a, b).pvalue)
    assert st["p_wilcoxon"] == pytest.approx(wilcoxon(d).pvalue)
    assert st["d_z"] == pytest.approx(d.mean() / d.std(ddof=1))
    lo, hi = st["diff_ci"]
    assert lo < d.mean() < hi and lo > 0  # every difference is positive
    assert st["d_z_ci"][0] < st["d_z"] < st["d_z_ci"][1]
    assert paired_stats(a, b) == st  # seeded bootstrap: repeatable
    # pairs with a NaN are dropped; one pair leaves everything but the mean undefined
    short = paired_stats([0.5, math.nan], [0.4, 0.3])
    assert short["n"] == 1 and short["mean_diff"] == pytest.approx(0.1)
    assert math.isnan(short["p"]) and math.isnan(short["d_z"])


def test_paired_comparisons_pair_by_seed() -> None:
    from scipy.stats import ttest_rel

    from semantic_genesis.benchmark.statistics import paired_comparisons

    scratch = _rows("t", "scratch", 1.0, [0.60, 0.70, 0.65, 0.62])
    sg = _rows("t", "sg", 1.0, [0.66, 0.71, 0.70, 0.64])
    sg = sg[::-1]  # another order: the pairs follow the seed
    extra = {**_rows("t", "scratch", 1.0, [0.5])[0], "seed": 9}  # a seed sg did not run
    cmp = paired_comparisons(summarise(scratch + sg + [extra]), ["scratch"])
    assert [(c.init, c.baseline, c.n) for c in cmp] == [("sg", "scratch", 4)]
    assert cmp[0].p == pytest.approx(ttest_rel([0.66, 0.71, 0.70, 0.64],
                                               [0.60, 0.70, 0.65, 0.62]).pvalue)
    # mg vs scratch is kept, scratch vs mg (the same comparison) is not repeated
    mg = _rows("t", "mg", 1.0, [0.61, 0.72, 0.66, 0.60])
    pairs = {(c.init, c.baseline) for c in paired_comparisons(summarise(scratch + sg + mg),
                                                              ["scratch", "mg"])}
    assert pairs == {("sg", "scratch"), ("mg", "scratch"), ("sg", "mg")}


def test_fraction_to_match_interpolates() -> None:
    from semantic_genesis.benchmark.statistics import fraction_to_match

    curve = [(0.1, 0.60), (0.25, 0.70), (0.5, 0.80), (1.0, 0.85)]
    f, words = fraction_to_match(curve, 0.75)  # halfway between 0.25 and 0.5
    assert f == pytest.approx(0.375) and words == "37.5 %"
    assert fraction_to_match(curve, 0.5) == (0.1, "<= 10 %")
    f, words = fraction_to_match(curve, 0.9)
    assert math.isnan(f) and words == "> 100 %"
    rows = []
    for frac, mean in ((0.25, 0.70), (0.5, 0.76), (1.0, 0.80)):
        rows += _rows("t", "scratch", frac, [mean - 0.01, mean, mean + 0.01])
    for frac, mean in ((0.25, 0.72), (0.5, 0.84), (1.0, 0.85)):
        rows += _rows("t", "sg", frac, [mean - 0.01, mean, mean + 0.01])
    eff = {e.init: e for e in label_efficiency(summarise(rows))}
    assert eff["scratch"].scratch_full == pytest.approx(0.80)
    assert eff["sg"].fraction_to_match == pytest.approx(0.25 + 0.25 * 0.08 / 0.12)
    assert eff["scratch"].match == "100 %"


def test_protocols_are_summarised_apart() -> None:
    rows = _rows("t", "scratch", 1.0, [0.6, 0.7]) + [
        {**r, "protocol": "probe-logreg"} for r in _rows("t", "scratch", 1.0, [0.9, 0.8])]
    cells = summarise(rows)
    assert [(c.protocol, c.mean) for c in cells] == [("finetune", pytest.approx(0.65)),
                                                     ("probe-logreg", pytest.approx(0.85))]
    assert cells[0].seeds == [0, 1]
