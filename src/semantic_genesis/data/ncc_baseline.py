"""The floor a representation must beat on the phantom NCC target: trivial cube features.

For every candidate of a phantoms folder (``candidates.csv``) the cube around it (32 x 32 x 16
voxels, the demo's probe cube) gives two numbers: its mean HU (what a pooled feature of a
constant encoder sees) and its *size*, the voxels above -500 HU in the cube's central half.
A logistic regression on these, scored by AUC on held-out patients (per-patient splits, as the
frozen-feature probe of method.md §7.3), says how much of the nodule/non-nodule signal is
trivial. The hard negatives of :mod:`semantic_genesis.data.candidates` are there to keep it
low: a representation that is no better than this has not learnt shape or context.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from semantic_genesis.io.manifests import read_csv

FEATURES = ("mean_hu", "dense_voxels")


def candidate_features(
    folder: str | Path, cube: tuple[int, int, int] = (32, 32, 16)
) -> list[dict[str, Any]]:
    """One row per candidate: seriesuid, class, kind, and the :data:`FEATURES` of the cube
    (HU clipped to [-1000, 1000]; voxels outside the scan count as air)."""
    from semantic_genesis.io import read_volume

    folder = Path(folder)
    rows = read_csv(folder / "candidates.csv",
                    ["seriesuid", "coordX", "coordY", "coordZ", "class"])
    half = np.asarray(cube) // 2
    out: list[dict[str, Any]] = []
    loaded: dict[str, Any] = {}  # the current patient's volume and clipped HU
    for row in rows:
        pid = row["seriesuid"]
        if pid not in loaded:
            vol = read_volume(folder / "images" / f"{pid}.nii.gz")
            loaded = {pid: (vol, np.clip(np.asarray(vol.array, dtype=np.float32), -1000, 1000))}
        vol, hu = loaded[pid]
        world = np.array([[float(row[k]) for k in ("coordX", "coordY", "coordZ")]])
        centre = np.rint(vol.world_to_voxel(world)[0]).astype(int)
        padded = np.full(tuple(cube), -1000.0, dtype=np.float32)
        lo, hi = centre - half, centre - half + np.asarray(cube)
        src = tuple(slice(max(a, 0), min(b, n)) for a, b, n in zip(lo, hi, hu.shape, strict=True))
        dst = tuple(slice(s.start - a, s.stop - a) for s, a in zip(src, lo, strict=True))
        padded[dst] = hu[src]
        inner = padded[tuple(slice(n // 4, n - n // 4) for n in cube)]
        out.append({"seriesuid": pid, "class": int(row["class"]), "kind": row.get("kind", ""),
                    "mean_hu": float(padded.mean()),
                    "dense_voxels": int(np.count_nonzero(inner > -500))})
    return out


def trivial_auc(
    rows: list[dict[str, Any]], features: tuple[str, ...] = FEATURES, splits: int = 20,
    test_fraction: float = 0.3, seed: int = 0,
) -> tuple[float, float]:
    """Mean and standard deviation of the held-out AUC of a logistic regression on
    ``features`` over ``splits`` random per-patient splits (splits with one class only in the
    test part are skipped)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupShuffleSplit
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.array([[r[f] for f in features] for r in rows], dtype=float)
    y = np.array([r["class"] for r in rows])
    groups = np.array([r["seriesuid"] for r in rows])
    scores = []
    gss = GroupShuffleSplit(n_splits=splits, test_size=test_fraction, random_state=seed)
    for train, test in gss.split(x, y, groups):
        if len(set(y[test])) < 2 or len(set(y[train])) < 2:
            continue
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        model.fit(x[train], y[train])
        scores.append(roc_auc_score(y[test], model.predict_proba(x[test])[:, 1]))
    return float(np.mean(scores)), float(np.std(scores))
