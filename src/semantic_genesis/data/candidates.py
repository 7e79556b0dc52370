"""LUNA16-style candidates of a phantom patient (``candidates.csv``), in world millimetres.

Every nodule is a candidate (class 1, a little off-centre, as a detector would report it); the
false positives (class 0) are the kinds a nodule detector finds (Setio et al. 2017), most of
them *hard*: their cube pools to a nodule's mean intensity, so telling them apart takes shape
and context (the NCC target task, method.md §7.1):

- ``consolidation``, ``pleural``, ``fissure``: the nodule mimics of
  :mod:`semantic_genesis.data.mimics` (nodule volume and density, other shapes);
- ``vessel-crossing``: an artery and a vein touching (r >= 1 mm each);
- ``vessel-end-on``: a vessel (r >= 1.2 mm) running cranio-caudally, a round dot on an axial
  slice;
- ``vessel``: a branch point of a vessel of r >= 1 mm;
- ``tissue``: soft tissue or bone outside the lung, and ``lung``: plain parenchyma (easy ones;
  ``lung`` also makes up for any kind with too few sites).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from semantic_genesis.data.frame import Frame
from semantic_genesis.data.mimics import Mimic
from semantic_genesis.data.nodules import Nodule, unit_vectors
from semantic_genesis.data.organs import body_depth, lung_field_sd
from semantic_genesis.data.vessels import VesselTree

#: share of the false positives of each kind; ``lung`` takes the rest
NEGATIVE_SHARES = {
    "mimic": 0.3,
    "vessel": 0.2,
    "vessel-crossing": 0.15,
    "vessel-end-on": 0.15,
    "tissue": 0.1,
}


@dataclass(frozen=True)
class Candidate:
    """A LUNA16 candidate: world position (mm), class (1 nodule, 0 not), and what it is."""

    world: tuple[float, float, float]
    label: int
    kind: str  # nodule, a mimic's kind, vessel, vessel-crossing, vessel-end-on, lung, tissue


def quotas(negatives: int) -> dict[str, int]:
    """How many false positives of each kind: cumulative shares rounded, so they sum to
    ``negatives`` exactly and every kind gets its share even of a handful."""
    out, done, cum = {}, 0, 0.0
    for kind, share in NEGATIVE_SHARES.items():
        cum += share
        out[kind] = int(round(cum * negatives)) - done
        done += out[kind]
    out["lung"] = negatives - done
    return out


def make_candidates(
    rng: np.random.Generator,
    frame: Frame,
    tree: VesselTree,
    nodules: list[Nodule],
    negatives: int,
    mimics: list[Mimic] | None = None,
    avoid: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[Candidate]:
    """Every nodule (jittered by up to a quarter of its radius) and ``negatives`` false
    positives by :func:`quotas` (none inside ``avoid``: consolidation, effusion)."""
    out = []
    for nod in nodules:
        jitter = unit_vectors(rng, 1)[0] * rng.uniform(0.0, 0.25) * nod.diameter / 2
        out.append(Candidate(tuple(float(v) for v in np.asarray(nod.centre) + jitter), 1, "nodule"))
    want = quotas(negatives)
    n_mimic = want.pop("mimic")
    mimics = list(mimics or [])[:n_mimic]
    out.extend(Candidate(m.spot, 0, m.kind) for m in mimics)
    short = n_mimic - len(mimics)
    sites = {
        "vessel": tree.branch_points[tree.branch_radii >= 1.0],
        "vessel-crossing": crossings(tree, rng),
        "vessel-end-on": end_on(tree),
        "tissue": _random_points(rng, frame, "tissue", want["tissue"]),
    }
    for kind, local in sites.items():
        points = _pick(rng, frame, local, nodules, want[kind], avoid,
                       min_lung_sd=None if kind == "tissue" else 2.0)
        short += want[kind] - len(points)
        out.extend(Candidate(tuple(float(v) for v in p), 0, kind) for p in points)
    n_lung = want["lung"] + short
    lung = _pick(rng, frame, _random_points(rng, frame, "lung", n_lung), nodules, n_lung, avoid)
    out.extend(Candidate(tuple(float(v) for v in p), 0, "lung") for p in lung)
    return out


def crossings(tree: VesselTree, rng: np.random.Generator) -> np.ndarray:
    """Local points where a vessel of one tree touches one of another (r >= 1 mm each): the
    midpoints of centre-line samples closer than the sum of their radii, one per 8 mm."""
    seg = tree.segments
    keep = np.minimum(seg.ra, seg.rb) >= 1.0
    if keep.sum() < 2:
        return np.zeros((0, 3))
    a, b, r, ids = seg.a[keep], seg.b[keep], seg.ra[keep], tree.tree[keep]
    n = np.maximum(2, np.ceil(np.linalg.norm(b - a, axis=1) / 1.5).astype(int))
    which = np.repeat(np.arange(len(a)), n)
    t = (np.arange(len(which)) - np.repeat(np.cumsum(n) - n, n)) / np.repeat(n - 1, n)
    pts = a[which] + t[:, None] * (b - a)[which]
    pairs = cKDTree(pts).query_pairs(6.0, output_type="ndarray")  # thicker: near the hilum
    if not len(pairs):
        return np.zeros((0, 3))
    i, j = pairs[:, 0], pairs[:, 1]
    dist = np.linalg.norm(pts[i] - pts[j], axis=1)
    touch = (ids[which[i]] != ids[which[j]]) & (dist < r[which[i]] + r[which[j]])
    mid = 0.5 * (pts[i[touch]] + pts[j[touch]])
    return _thin(mid[rng.permutation(len(mid))], 8.0)


def end_on(tree: VesselTree) -> np.ndarray:
    """Midpoints of vessel segments (r >= 1.2 mm, >= 4 mm long) within about 30 degrees of the
    body axis: seen end-on, a round dot on an axial slice."""
    seg = tree.segments
    ab = seg.b - seg.a
    length = np.linalg.norm(ab, axis=1)
    along = np.abs(ab[:, 2]) / np.maximum(length, 1e-9)
    keep = (np.minimum(seg.ra, seg.rb) >= 1.2) & (length >= 4.0) & (along > 0.85)
    return _thin(0.5 * (seg.a + seg.b)[keep], 8.0)


def _thin(points: np.ndarray, distance: float) -> np.ndarray:
    """The first point of each cube of side ``distance``: sites spread out, not clustered."""
    if not len(points):
        return np.zeros((0, 3))
    cells = np.floor(points / distance).astype(np.int64)
    _, first = np.unique(cells, axis=0, return_index=True)
    return points[np.sort(first)]


def _pick(
    rng: np.random.Generator,
    frame: Frame,
    local: np.ndarray,
    nodules: list[Nodule],
    n: int,
    avoid: Callable[[np.ndarray], np.ndarray] | None = None,
    min_lung_sd: float | None = None,
) -> np.ndarray:
    """Up to ``n`` of the local points, as world points inside the scan, away from nodules
    and out of ``avoid``."""
    if not len(local) or n <= 0:
        return np.zeros((0, 3))
    world = frame.anatomy.to_world(local)
    keep = _usable(frame, world, nodules)
    if min_lung_sd is not None:
        keep &= lung_field_sd(frame.anatomy, local) > min_lung_sd
    if avoid is not None:
        keep &= avoid(local) < -3.0
    world = world[keep]
    return world[rng.permutation(len(world))[:n]]


def _random_points(rng: np.random.Generator, frame: Frame, kind: str, n: int) -> np.ndarray:
    """Local points uniformly in the scan: in the lung (``lung``) or in the body but outside
    the lung (``tissue``); about ``n`` of them (drawn from ``64 n`` trials)."""
    lo = frame.local_origin
    hi = lo + (np.asarray(frame.shape) - 1) * frame.step
    pts = rng.uniform(lo, hi, size=(64 * max(n, 1), 3))
    sd = lung_field_sd(frame.anatomy, pts)
    if kind == "lung":
        return pts[sd > 4.0]
    depth = body_depth(frame.anatomy, pts[:, 0], pts[:, 1], pts[:, 2])
    return pts[(sd < -6.0) & (depth > 8.0)]


def _usable(frame: Frame, world: np.ndarray, nodules: list[Nodule]) -> np.ndarray:
    """Inside the scan and at least 10 mm outside every nodule."""
    idx = frame.world_to_index(world) if len(world) else np.zeros((0, 3))
    ok = np.all((idx >= 0) & (idx <= np.asarray(frame.shape) - 1), axis=1)
    for nod in nodules:
        ok &= np.linalg.norm(world - np.asarray(nod.centre), axis=1) > nod.diameter / 2 + 10.0
    return ok
