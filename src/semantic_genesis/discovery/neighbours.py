"""Nearest patients in feature space with FAISS (method.md §2.3).

The reference computes the Euclidean (L2) distance from the reference patient's feature to every
training and every validation feature in Python loops and argsorts them. We use FAISS: an exact
``IndexFlatL2`` by default (what the reference computes), or an inverted-file index (``ivf``,
approximate, for cohorts of hundreds of thousands of patients). FAISS returns squared L2
distances; the order is the same.

Train neighbours come from the training patients and always start with the reference itself
(rank 0); validation neighbours are the validation patients nearest to the *training* reference,
as in the reference code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from semantic_genesis.utils.errors import SemgenError


@dataclass(frozen=True)
class Neighbours:
    """Indices (into the train / val feature arrays) and squared L2 distances, nearest first."""

    train: np.ndarray
    train_dist: np.ndarray
    val: np.ndarray
    val_dist: np.ndarray


def build_index(features: np.ndarray, kind: str = "flat", nlist: int | None = None,
                nprobe: int | None = None):
    """A FAISS L2 index holding ``features`` (n, d).

    Args:
        features: float features, one row per patient.
        kind: ``flat`` (exact, default) or ``ivf`` (``IndexIVFFlat``: k-means into ``nlist``
            cells, search ``nprobe`` of them; approximate, for very large cohorts).
        nlist: IVF cells; default ``max(1, min(4 * sqrt(n), n // 39))`` (FAISS wants about 39
            training points per cell).
        nprobe: IVF cells visited per query; default ``min(nlist, 16)``.
    """
    import faiss

    x = np.ascontiguousarray(features, dtype=np.float32)
    n, d = x.shape
    if kind == "flat":
        index = faiss.IndexFlatL2(d)
    elif kind == "ivf":
        nlist = nlist or max(1, min(int(4 * math.sqrt(n)), n // 39))
        nlist = max(1, min(nlist, n))
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist, faiss.METRIC_L2)
        index.cp.min_points_per_centroid = 1  # small cohorts: no FAISS warning, still exact-ish
        index.cp.seed = 1234  # k-means is seeded, so the index (and the result) is reproducible
        index.train(x)
        index.nprobe = nprobe or min(nlist, 16)
    else:
        raise SemgenError(f"unknown index kind '{kind}' (use flat or ivf)")
    if n:
        index.add(x)
    return index


def search(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``index`` for each query: ``(distances, indices)``, (m, k) each;
    ``k`` is clipped to the index size; missing hits (IVF) are dropped as -1."""
    k = min(k, index.ntotal)
    q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, index.d)
    if k <= 0:
        return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
    return index.search(q, k)


def find_neighbours(reference: int, train_features: np.ndarray, val_features: np.ndarray,
                    k_train: int, k_val: int, kind: str = "flat", indexes=None) -> Neighbours:
    """The ``k_train`` training patients nearest to training patient ``reference`` (itself
    first) and the ``k_val`` validation patients nearest to it.

    ``indexes`` = ``(train_index, val_index)`` from :func:`build_index` avoids rebuilding them
    for every class.
    """
    train_index, val_index = indexes or (build_index(train_features, kind),
                                         build_index(val_features, kind) if len(val_features)
                                         else None)
    query = train_features[reference:reference + 1]
    dist, idx = search(train_index, query, k_train + 1)
    keep = (idx[0] >= 0) & (idx[0] != reference)
    train = np.concatenate([[reference], idx[0][keep]])[:k_train].astype(np.int64)
    train_dist = np.concatenate([[0.0], dist[0][keep]])[:k_train]
    if val_index is None or k_val <= 0:
        return Neighbours(train, train_dist, np.zeros(0, np.int64), np.zeros(0))
    vdist, vidx = search(val_index, query, k_val)
    ok = vidx[0] >= 0
    return Neighbours(train, train_dist, vidx[0][ok].astype(np.int64), vdist[0][ok])
