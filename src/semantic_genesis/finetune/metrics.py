"""Target-task metrics: Dice and IoU at threshold 0.5, and ROC AUC.

The reference evaluates segmentation offline with IoU and Dice at a 0.5 threshold and
classification with the ROC AUC (method.md §7.2). Conventions used here:

- binary masks: a prediction and a target that are both empty score 1 (nothing to find, nothing
  found); one empty and the other not scores 0;
- label maps (:func:`segmentation_scores`): the score of each foreground class (1..C-1)
  computed as a binary mask, then their mean (background is not scored, as in the paper's tasks).
  A class absent from both the prediction and the truth is not scored at all (counting it as a
  perfect 1 would lift the mean for a class nobody looked for): it is listed in
  ``ignored_classes``, its per-class value is ``nan``, and when no class is left the means are
  ``nan`` too;
- AUC: MONAI's ``compute_roc_auc`` (ties count one half, i.e. the Mann-Whitney statistic); ``nan``
  when only one class is present, because the AUC is then undefined. Non-finite scores are an
  error: a NaN prediction has no rank.

Whoever reports these numbers flags every ``nan`` and every ignored class on the console
(:func:`flag`, a :class:`MetricWarning`) and in its report.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch


class MetricWarning(UserWarning):
    """A number in a report that is undefined or was computed on less than it claims."""


def flag(message: str, notes: list[str] | None = None) -> None:
    """Say ``message`` on the console (a :class:`MetricWarning`) and add it to ``notes``, the
    report's list of warnings."""
    warnings.warn(message, MetricWarning, stacklevel=2)
    if notes is not None:
        notes.append(message)


def _binary(pred: np.ndarray, target: np.ndarray) -> tuple[float, float, float]:
    p = np.asarray(pred).astype(bool)
    t = np.asarray(target).astype(bool)
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {p.shape} differs from target shape {t.shape}")
    inter = float(np.logical_and(p, t).sum())
    return inter, float(p.sum()), float(t.sum())


def dice_score(pred: np.ndarray, target: np.ndarray) -> float:
    """Dice = 2|A∩B| / (|A| + |B|) of two binary masks (1.0 when both are empty)."""
    inter, a, b = _binary(pred, target)
    return 1.0 if a + b == 0 else 2.0 * inter / (a + b)


def iou_score(pred: np.ndarray, target: np.ndarray) -> float:
    """IoU = |A∩B| / |A∪B| of two binary masks (1.0 when both are empty)."""
    inter, a, b = _binary(pred, target)
    union = a + b - inter
    return 1.0 if union == 0 else inter / union


def segmentation_scores(
    pred_labels: np.ndarray, target_labels: np.ndarray, n_labels: int
) -> dict[str, Any]:
    """Dice and IoU of a label map against the truth.

    Args:
        pred_labels: integer label map (binary tasks: the mask thresholded at 0.5).
        target_labels: integer label map of the same shape.
        n_labels: number of labels including background (2 for a binary task).

    Returns:
        ``dice`` and ``iou`` (mean over the foreground classes present in the prediction or
        the truth; ``nan`` when there is none), ``ignored_classes`` (the classes absent from
        both, not scored) and, for more than one foreground class, ``dice_<c>`` / ``iou_<c>``
        per class (``nan`` for an ignored class).
    """
    scores: dict[str, Any] = {}
    dices, ious, ignored = [], [], []
    for c in range(1, n_labels):
        p, t = pred_labels == c, target_labels == c
        if not (p.any() or t.any()):
            ignored.append(c)
            dice = iou = math.nan
        else:
            dice, iou = dice_score(p, t), iou_score(p, t)
            dices.append(dice)
            ious.append(iou)
        if n_labels > 2:
            scores[f"dice_{c}"], scores[f"iou_{c}"] = dice, iou
    scores["dice"] = float(np.mean(dices)) if dices else math.nan
    scores["iou"] = float(np.mean(ious)) if ious else math.nan
    scores["ignored_classes"] = ignored
    return scores


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (``nan`` if one class)."""
    from monai.metrics import compute_roc_auc

    s = torch.as_tensor(np.asarray(scores, dtype=np.float64).ravel())
    y = torch.as_tensor(np.asarray(labels).astype(np.int64).ravel())
    if s.numel() != y.numel():
        raise ValueError(f"{s.numel()} scores but {y.numel()} labels")
    if not bool(torch.isfinite(s).all()):
        bad = int((~torch.isfinite(s)).sum())
        raise ValueError(f"{bad} of {s.numel()} scores are not finite (NaN or inf)")
    if y.numel() == 0 or y.unique().numel() < 2:
        return math.nan
    return float(compute_roc_auc(s, y))
