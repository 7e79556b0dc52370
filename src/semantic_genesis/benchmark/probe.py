"""Probes on frozen features: logistic regression and kNN (AUC), a voxel head (Dice).

Once an encoder's features exist (:mod:`.features`), a probe cell (one initialisation, seed and
label fraction) costs milliseconds, so the paper's 10 runs per cell (method.md §7.2) are cheap.
Per seed (method.md §7.3):

1. a per-patient split: a seeded ``test_fraction`` of the patients is the test set, the rest
   the training set (a patient's cubes never sit on both sides); the draw is repeated (seeded)
   until both sides hold both classes. The split depends on the seed only, so every
   initialisation is tested on the same split at a seed: the scores are *paired* by seed
   (:func:`~semantic_genesis.benchmark.statistics.paired_comparison`);
2. the training cubes reduced to the label fraction, per class (nested across fractions, as
   fine-tuning's ``subsample``);
3. features standardised with the training set's mean and std;
4. ``logreg``: L2 logistic regression, fixed ``C`` (default 1.0 on standardised features, no
   inner search: the probe measures the features, not a tuned classifier, and a fixed C costs
   nothing), classes weighted to balance; ``knn``: k nearest neighbours (default 5) by cosine
   distance, score = share of positive neighbours. Both give the test ROC AUC.

Segmentation (``voxel``): the same split of patients; a balanced ridge classifier (alpha =
1 / C) on the sampled voxels' features of every level (whatever ``levels`` says: a segmentation
head reads the skips; foreground = any label > 0); its cut chosen for the best Dice on the
training patients' uniform voxels; the Dice of its predictions on the test patients' uniformly
drawn voxels (Dice is a ratio of voxel counts, so a uniform sample estimates it without
predicting every voxel).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from semantic_genesis.benchmark.features import Features
from semantic_genesis.finetune.data import subsample
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.seed import derive_rng

#: classification probes and the segmentation probe
CLASSIFY_PROBES = ("logreg", "knn")
SEGMENT_PROBES = ("voxel",)
#: draws tried for a split with both classes on both sides
SPLIT_TRIES = 100


@dataclass(frozen=True)
class ProbeSettings:
    """How a probe is fitted (BenchmarkConfig's ``probe_*`` fields)."""

    levels: str = "all"
    c: float = 1.0
    k: int = 5
    test_fraction: float = 0.3


def patient_split(
    groups: np.ndarray, labels: np.ndarray, seed: int, test_fraction: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (train, test) masks of a seeded per-patient split with both classes per side.

    Raises:
        SemgenError: fewer than two patients, or no draw gives both sides both classes.
    """
    patients = np.unique(groups)
    if len(patients) < 2:
        raise SemgenError(f"a per-patient split needs two patients or more, not {len(patients)}")
    n_test = min(len(patients) - 1, max(1, math.ceil(test_fraction * len(patients))))
    for attempt in range(SPLIT_TRIES):
        order = derive_rng(seed, "probe-split", attempt).permutation(len(patients))
        test = np.isin(groups, patients[order[:n_test]])
        if len(np.unique(labels[test])) > 1 and len(np.unique(labels[~test])) > 1:
            return ~test, test
    raise SemgenError(f"no per-patient split of {len(patients)} patients puts both classes on "
                      f"both sides ({SPLIT_TRIES} seeded draws): add patients or positives")


def distinct_seeds(groups: np.ndarray, labels: np.ndarray, seeds: list[int],
                   test_fraction: float = 0.3) -> list[int]:
    """The seeds whose per-patient split tests a set of patients no earlier seed tested.

    With few patients, seeds repeat splits (two scans give two splits, whatever the number of
    seeds): scoring a repeated split again would count one experiment several times and make
    the paired tests' p-values look stronger than the data allow."""
    seen: set[tuple] = set()
    keep = []
    for seed in seeds:
        _, test = patient_split(groups, (labels > 0).astype(np.int64), seed, test_fraction)
        key = tuple(np.unique(groups[test]).tolist())
        if key not in seen:
            seen.add(key)
            keep.append(seed)
    return keep


def reduce_labels(train: np.ndarray, labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """The training mask reduced to ``fraction`` of each class (at least one each)."""
    keep = np.zeros_like(train)
    for c in np.unique(labels[train]):
        idx = np.flatnonzero(train & (labels == c))
        keep[subsample(idx, fraction, seed, f"probe-labels-{c}")] = True
    return keep


def _standardise(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = x_train.mean(0), x_train.std(0)
    std[std < 1e-8] = 1.0  # a constant feature stays constant (0) instead of dividing by 0
    return (x_train - mean) / std, (x_test - mean) / std


def logreg_scores(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                  c: float = 1.0) -> np.ndarray:
    """Positive-class probabilities of a balanced L2 logistic regression (standardised)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    a, b = _standardise(x_train, x_test)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression(C=c, class_weight="balanced", max_iter=2000).fit(a, y_train)
    return clf.predict_proba(b)[:, 1]


def knn_scores(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
               k: int = 5) -> np.ndarray:
    """Share of positive neighbours among the ``k`` nearest (cosine, standardised)."""
    from sklearn.neighbors import KNeighborsClassifier

    a, b = _standardise(x_train, x_test)
    clf = KNeighborsClassifier(n_neighbors=min(k, len(a)), metric="cosine", algorithm="brute")
    clf.fit(a, y_train)
    return clf.predict_proba(b)[:, list(clf.classes_).index(1)]


def classify_probe(feats: Features, seed: int, fraction: float,
                   settings: ProbeSettings = ProbeSettings()) -> dict[str, float]:
    """Test AUC of each classification probe at one seed and label fraction."""
    from semantic_genesis.finetune.metrics import roc_auc

    train, test = patient_split(feats.groups, feats.labels, seed, settings.test_fraction)
    train = reduce_labels(train, feats.labels, fraction, seed)
    x, y = feats.select(settings.levels), feats.labels
    if len(np.unique(y[train])) < 2:
        return {p: math.nan for p in CLASSIFY_PROBES}
    return {
        "logreg": roc_auc(logreg_scores(x[train], y[train], x[test], settings.c), y[test]),
        "knn": roc_auc(knn_scores(x[train], y[train], x[test], settings.k), y[test]),
    }


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """2 |P ∩ T| / (|P| + |T|) of two boolean arrays (nan when both are empty)."""
    denom = int(pred.sum()) + int(truth.sum())
    return math.nan if denom == 0 else 2.0 * int((pred & truth).sum()) / denom


def segment_probe(feats: Features, seed: int, fraction: float,
                  settings: ProbeSettings = ProbeSettings()) -> dict[str, float]:
    """Test Dice of the voxel probe at one seed and label fraction (fraction of the training
    patients' voxels, per class)."""
    y = (feats.labels > 0).astype(np.int64)
    train, test = patient_split(feats.groups, y, seed, settings.test_fraction)
    train = reduce_labels(train, y, fraction, seed)
    if feats.uniform is not None:
        test &= feats.uniform.astype(bool)
    x = feats.features  # every level: at 1/8 resolution alone a small lesion is one cell
    if len(np.unique(y[train])) < 2:
        return {"voxel": math.nan}
    fit_on = train & (feats.uniform.astype(bool) if feats.uniform is not None else train)
    score = ridge_scores(x[train], y[train], np.concatenate([x[fit_on], x[test]]), settings.c)
    cut = best_threshold(score[: fit_on.sum()], y[fit_on] == 1)
    return {"voxel": dice(score[fit_on.sum():] >= cut, y[test] == 1)}


def ridge_scores(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                 c: float = 1.0) -> np.ndarray:
    """Decision values of a balanced ridge classifier (alpha = 1 / c, standardised): the
    voxel head. Thousands of voxels x up to 960 features: a closed-form solve takes
    milliseconds where an iterative logistic fit takes seconds per seed."""
    from sklearn.linear_model import RidgeClassifier

    a, b = _standardise(x_train, x_test)
    clf = RidgeClassifier(alpha=1.0 / c, class_weight="balanced").fit(a, y_train)
    return clf.decision_function(b)


def best_threshold(score: np.ndarray, truth: np.ndarray) -> float:
    """The cut on ``score`` (one of 50 quantiles) with the best Dice on the *training*
    patients' uniform voxels: a balanced fit cuts at equal priors, which over-segments the rare
    foreground of a uniform sample; the cut is chosen without seeing a test voxel."""
    cuts = np.quantile(score, np.linspace(0.5, 0.999, 50))
    dices = [dice(score >= c, truth) for c in cuts]
    return float(cuts[int(np.argmax([-1.0 if math.isnan(v) else v for v in dices]))])
