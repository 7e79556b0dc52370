"""Metrics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from semantic_genesis.finetune.metrics import dice_score, iou_score, roc_auc, segmentation_scores


def test_dice_and_iou_by_hand() -> None:
    pred = np.array([1, 1, 1, 0, 0, 0], bool)
    true = np.array([0, 1, 1, 1, 0, 0], bool)
    # |A∩B| = 2, |A| = 3, |B| = 3, |A∪B| = 4
    assert dice_score(pred, true) == pytest.approx(4 / 6)
    assert iou_score(pred, true) == pytest.approx(2 / 4)


def test_empty_masks_conventions() -> None:
    empty = np.zeros((2, 2, 2), bool)
    full = np.ones((2, 2, 2), bool)
    assert dice_score(empty, empty) == 1.0 and iou_score(empty, empty) == 1.0
    assert dice_score(empty, full) == 0.0 and iou_score(full, empty) == 0.0


def test_multiclass_scores_average_foreground_classes() -> None:
    true = np.array([0, 1, 1, 2, 2, 2])
    pred = np.array([0, 1, 2, 2, 2, 0])
    s = segmentation_scores(pred, true, n_labels=3)
    # class 1: pred {1}, true {1,2} -> dice 2*1/3, iou 1/2
    # class 2: pred {2,3,4}, true {3,4,5} -> dice 2*2/6, iou 2/4
    assert s["dice_1"] == pytest.approx(2 / 3) and s["iou_1"] == pytest.approx(1 / 2)
    assert s["dice_2"] == pytest.approx(2 / 3) and s["iou_2"] == pytest.approx(1 / 2)
    assert s["dice"] == pytest.approx(2 / 3) and s["iou"] == pytest.approx(1 / 2)
    binary = segmentation_scores(np.array([1, 0, 1]), np.array([1, 1, 0]), n_labels=2)
    assert set(binary) == {"dice", "iou", "ignored_classes"} and binary["iou"] == pytest.approx(1 / 3)
    assert binary["ignored_classes"] == []


def test_a_class_absent_from_both_is_ignored_not_perfect() -> None:
    """Issue 14: one stray label value 7 made classes 2..6 count as 1.0 each (mean 0.714 while
    the real classes scored 0)."""
    true = np.array([0, 1, 1, 0, 7])
    pred = np.array([1, 0, 0, 7, 0])
    s = segmentation_scores(pred, true, n_labels=8)
    assert s["dice"] == 0.0 and s["iou"] == 0.0
    assert s["ignored_classes"] == [2, 3, 4, 5, 6]
    assert math.isnan(s["dice_3"]) and s["dice_1"] == 0.0


def test_nothing_to_score_is_nan_not_one() -> None:
    """Issue 14: fractional labels rounded to an empty map scored IoU 1.0 against an empty
    prediction."""
    s = segmentation_scores(np.zeros(8, np.uint8), np.zeros(8, np.uint8), n_labels=2)
    assert math.isnan(s["iou"]) and math.isnan(s["dice"]) and s["ignored_classes"] == [1]


def test_summary_over_cases_flags_what_was_not_scored() -> None:
    from semantic_genesis.finetune.metrics import MetricWarning
    from semantic_genesis.finetune.tasks.segment import summarise_cases

    per_case = {
        "a": segmentation_scores(np.array([1, 0]), np.array([1, 0]), 2),
        "b": segmentation_scores(np.array([0, 0]), np.array([0, 0]), 2),
    }
    notes: list[str] = []
    with pytest.warns(MetricWarning, match="left out of the means: b"):
        m = summarise_cases(per_case, notes)
    assert m["iou"] == 1.0 and m["cases_not_scored"] == ["b"]
    assert m["ignored_classes"] == {"b": [1]} and len(notes) == 2


def test_nan_scores_are_an_error_not_an_auc() -> None:
    with pytest.raises(ValueError, match="not finite"):
        roc_auc(np.array([0.1, np.nan, 0.3]), np.array([0, 1, 1]))


def test_auc_by_hand_with_ties() -> None:
    # positives 0.9, 0.5; negatives 0.5, 0.2: pairs won 1 + 1 + 1 + 0.5 (tie) = 3.5 of 4
    assert roc_auc(np.array([0.5, 0.5, 0.2, 0.9]), np.array([0, 1, 0, 1])) == pytest.approx(0.875)
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    assert roc_auc(np.array([3.0, 2.0, 1.0]), np.array([0, 0, 1])) == 0.0
    assert math.isnan(roc_auc(np.array([0.3, 0.6]), np.array([1, 1])))


def test_auc_is_invariant_to_monotone_maps() -> None:
    rng = np.random.default_rng(0)
    scores, labels = rng.normal(size=50), rng.integers(0, 2, 50)
    assert roc_auc(scores, labels) == pytest.approx(roc_auc(1 / (1 + np.exp(-scores)), labels))


def test_balanced_validation_loss_weighs_both_classes_equally() -> None:
    from semantic_genesis.finetune.tasks.classify import balanced_bce

    logits = np.array([0.0, 0.0, 0.0, 2.0], np.float32)
    labels = np.array([0, 0, 0, 1])
    neg, pos = math.log(2), math.log(1 + math.exp(-2))  # BCE of logit 0 at y=0, logit 2 at y=1
    assert balanced_bce(logits, labels) == pytest.approx((neg + pos) / 2, rel=1e-6)
