"""Target-task metrics: Dice and IoU at threshold 0.5, and ROC AUC.

The reference evaluates segmentation offline with IoU and Dice at a 0.5 threshold and
classification with the ROC AUC (method.md §7.2). Conventions used here:

- binary masks: a prediction and a target that are both empty score 1 (nothing to find, nothing
  found); one empty and the other not scores 0;
- multi-class label maps: the score of each foreground class (1..C-1) computed as a binary mask,
  then their mean (background is not scored, as in the paper's tasks);
- AUC: MONAI's ``compute_roc_auc`` (ties count one half, i.e. the Mann-Whitney statistic); ``nan``
  when only one class is present, because the AUC is then undefined.
"""

from __future__ import annotations

import math

import numpy as np
import torch


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
) -> dict[str, float]:
    """Dice and IoU of a label map against the truth.

    Args:
        pred_labels: integer label map (binary tasks: the mask thresholded at 0.5).
        target_labels: integer label map of the same shape.
        n_labels: number of labels including background (2 for a binary task).

    Returns:
        ``dice`` and ``iou`` (mean over foreground classes) and, for more than one foreground
        class, ``dice_<c>`` / ``iou_<c>`` per class.
    """
    scores: dict[str, float] = {}
    dices, ious = [], []
    for c in range(1, n_labels):
        p, t = pred_labels == c, target_labels == c
        dices.append(dice_score(p, t))
        ious.append(iou_score(p, t))
        if n_labels > 2:
            scores[f"dice_{c}"], scores[f"iou_{c}"] = dices[-1], ious[-1]
    scores["dice"] = float(np.mean(dices))
    scores["iou"] = float(np.mean(ious))
    return scores


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (``nan`` if one class)."""
    from monai.metrics import compute_roc_auc

    s = torch.as_tensor(np.asarray(scores, dtype=np.float64).ravel())
    y = torch.as_tensor(np.asarray(labels).astype(np.int64).ravel())
    if s.numel() != y.numel():
        raise ValueError(f"{s.numel()} scores but {y.numel()} labels")
    if y.numel() == 0 or y.unique().numel() < 2:
        return math.nan
    return float(compute_roc_auc(s, y))
