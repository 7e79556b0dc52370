"""Lung nodules (with masks) and LUNA16-style candidates, in world millimetres.

Nodules are drawn in the world frame (their sizes are physical, whatever the grid): a lobulated
sphere of 3-30 mm diameter (log-uniform, so small nodules are common, as in LIDC), either solid
(soft tissue) or part-solid (a solid core inside a ground-glass rim of about -550 HU). They sit
wholly inside the lung parenchyma. The mask is the nodule's outline (rim included); the annotated
diameter is the outline's mean diameter.

Candidates follow LUNA16's ``candidates.csv``: every nodule (class 1, a little off-centre, as a
detector would report it) and false positives (class 0) of the kinds a detector finds: vessel
branch points, plain lung, and soft tissue or bone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semantic_genesis.data.frame import Frame, paint, soft
from semantic_genesis.data.organs import body_depth, lung_box, lung_field_sd
from semantic_genesis.data.vessels import VesselTree

GGO_HU = (-650.0, -450.0)  # ground-glass rim of part-solid nodules
SOLID_HU = (10.0, 60.0)


@dataclass(frozen=True)
class Nodule:
    """One nodule: world centre (mm), mean diameter (mm), kind, and its shape and density."""

    centre: tuple[float, float, float]
    diameter: float
    kind: str  # "solid" or "part-solid"
    core: float  # solid core radius / radius (1 for solid nodules)
    hu: float  # density of the solid part
    rim_hu: float  # density of the ground-glass rim (part-solid only)
    lobes: np.ndarray  # (4, 3) unit vectors of the lobulation
    lobe_weights: np.ndarray  # (4,)

    def radius_along(self, directions: np.ndarray) -> np.ndarray:
        """Radius (mm) along unit directions (..., 3): a sphere bumped by zero-mean lobes."""
        cos2 = (directions @ self.lobes.T) ** 2 - 1.0 / 3.0
        return 0.5 * self.diameter * (1.0 + cos2 @ self.lobe_weights)


def _unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def draw_nodules(
    rng: np.random.Generator,
    frame: Frame,
    count: int,
    diameter_mm: tuple[float, float],
    part_solid_fraction: float,
) -> list[Nodule]:
    """Place ``count`` nodules inside the lungs, apart from one another.

    A nodule that finds no room after a few tries is made smaller; one that still finds none
    is left out (small lungs and big nodules), so fewer than ``count`` may come back.
    """
    nodules: list[Nodule] = []
    lo, hi = np.log(diameter_mm[0]), np.log(diameter_mm[1])
    for _ in range(count):
        diameter = float(np.exp(rng.uniform(lo, hi)))
        centre = None
        for _attempt in range(4):
            centre = _find_room(rng, frame, diameter / 2.0, nodules)
            if centre is not None:
                break
            diameter = max(diameter_mm[0], 0.7 * diameter)
        if centre is None:
            continue
        part_solid = diameter >= 6.0 and rng.random() < part_solid_fraction
        nodules.append(
            Nodule(
                centre=tuple(float(c) for c in centre),
                diameter=diameter,
                kind="part-solid" if part_solid else "solid",
                core=float(rng.uniform(0.3, 0.6)) if part_solid else 1.0,
                hu=float(rng.uniform(*SOLID_HU)),
                rim_hu=float(rng.uniform(*GGO_HU)),
                lobes=_unit_vectors(rng, 4),
                lobe_weights=rng.uniform(0.0, 0.25, 4),
            )
        )
    return nodules


def _find_room(
    rng: np.random.Generator, frame: Frame, radius: float, others: list[Nodule]
) -> np.ndarray | None:
    """A world point whose ball of ``radius`` (+2 mm) lies in the lung and in the scan, away
    from ``others``."""
    anat = frame.anatomy
    lo, hi = lung_box(anat, int(rng.choice([-1, 1])))
    local = rng.uniform(lo, hi, size=(256, 3))
    margin = (radius + 2.0) / float(np.mean(anat.scale))
    local = local[lung_field_sd(anat, local) > margin]
    world = anat.to_world(local)
    first = frame.index_to_world(np.zeros(3))[0] + radius
    last = frame.index_to_world(np.asarray(frame.shape) - 1)[0] - radius
    world = world[np.all((world >= first) & (world <= last), axis=1)]
    for point in world:
        if all(
            np.linalg.norm(point - np.asarray(o.centre)) > radius + o.diameter / 2 + 4.0
            for o in others
        ):
            return point
    return None


def render_nodules(
    hu: np.ndarray,
    frame: Frame,
    nodules: list[Nodule],
) -> tuple[np.ndarray, list[int]]:
    """Paint the nodules into ``hu`` (in place); return their uint8 mask (1 = nodule) and the
    number of mask voxels of each."""
    label = np.zeros(frame.shape, dtype=np.uint8)
    voxels = []
    spacing = np.asarray(frame.spacing)
    h = float(np.mean(spacing))
    for nod in nodules:
        centre = np.asarray(nod.centre)
        reach = 0.5 * nod.diameter * (1.0 + nod.lobe_weights.sum()) + h
        lo = np.maximum(np.floor(frame.world_to_index(centre - reach)[0]), 0).astype(int)
        hi = np.minimum(np.ceil(frame.world_to_index(centre + reach)[0]) + 1, frame.shape).astype(
            int
        )
        sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        axes = [
            frame.origin[k] + np.arange(lo[k], hi[k]) * spacing[k] - centre[k] for k in range(3)
        ]
        offset = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
        dist = np.linalg.norm(offset, axis=-1)
        radius = nod.radius_along(offset / np.maximum(dist, 1e-6)[..., None])
        outline = soft(radius - dist, h)
        if nod.kind == "part-solid":
            paint(hu[sl], outline, nod.rim_hu)
            paint(hu[sl], soft(nod.core * radius - dist, h), nod.hu)
        else:
            paint(hu[sl], outline, nod.hu)
        inside = dist <= radius
        nearest = tuple(
            np.clip(
                np.rint(frame.world_to_index(centre)[0]).astype(int) - lo,
                0,
                np.asarray(inside.shape) - 1,
            )
        )
        inside[nearest] = True  # a nodule smaller than a voxel still owns its centre voxel
        label[sl] |= inside.astype(np.uint8)
        voxels.append(int(inside.sum()))
    return label, voxels


@dataclass(frozen=True)
class Candidate:
    """A LUNA16 candidate: world position (mm), class (1 nodule, 0 not), and what it is."""

    world: tuple[float, float, float]
    label: int
    kind: str  # nodule, vessel, lung, tissue


def make_candidates(
    rng: np.random.Generator, frame: Frame, tree: VesselTree, nodules: list[Nodule], negatives: int
) -> list[Candidate]:
    """Every nodule (jittered by up to a quarter of its radius) and ``negatives`` look-alikes:
    about half vessel branch points, a quarter random lung points, a quarter soft tissue/bone."""
    out = []
    for nod in nodules:
        jitter = _unit_vectors(rng, 1)[0] * rng.uniform(0.0, 0.25) * nod.diameter / 2
        out.append(Candidate(tuple(float(v) for v in np.asarray(nod.centre) + jitter), 1, "nodule"))
    n_lung = n_tissue = negatives // 4
    vessel = _pick(
        rng,
        frame,
        tree.branch_points[tree.branch_radii >= 1.0],
        nodules,
        negatives - n_lung - n_tissue,
        min_lung_sd=2.0,
    )
    n_lung += negatives - n_lung - n_tissue - len(vessel)  # too few branch points: lung points
    for kind, points in (
        ("vessel", vessel),
        ("lung", _pick(rng, frame, _random_points(rng, frame, "lung", n_lung), nodules, n_lung)),
        (
            "tissue",
            _pick(rng, frame, _random_points(rng, frame, "tissue", n_tissue), nodules, n_tissue),
        ),
    ):
        out.extend(Candidate(tuple(float(v) for v in p), 0, kind) for p in points)
    return out


def _pick(
    rng: np.random.Generator,
    frame: Frame,
    local: np.ndarray,
    nodules: list[Nodule],
    n: int,
    min_lung_sd: float | None = None,
) -> np.ndarray:
    """Up to ``n`` of the local points, as world points inside the scan, away from nodules."""
    if not len(local) or n <= 0:
        return np.zeros((0, 3))
    world = frame.anatomy.to_world(local)
    keep = _usable(frame, world, nodules)
    if min_lung_sd is not None:
        keep &= lung_field_sd(frame.anatomy, local) > min_lung_sd
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
