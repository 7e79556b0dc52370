"""Lung nodules (with masks), in world millimetres.

Nodules are drawn in the world frame (their sizes are physical, whatever the grid): a lobulated
sphere of 3-30 mm diameter (log-uniform, so small nodules are common, as in LIDC) of one of the
four kinds radiologists tell apart (Fleischner glossary; LIDC's "internal structure" and
"calcification" ratings): solid (soft tissue), part-solid (a solid core inside a ground-glass
rim), ground-glass (-750 to -450 HU, no solid part) and calcified (a solid nodule with a
250-900 HU calcified core, benign granulomas). They sit inside the lung parenchyma (a quarter
of them against the pleura: juxtapleural), out of consolidation and effusion. The mask is the
nodule's outline (rim included); the annotated diameter is the outline's mean diameter. The
candidates are made in :mod:`semantic_genesis.data.candidates`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from semantic_genesis.data.frame import Frame, paint, soft
from semantic_genesis.data.organs import lung_box, lung_field_sd

GGO_HU = (-650.0, -450.0)  # ground-glass rim of part-solid nodules
SOLID_HU = (10.0, 60.0)
PURE_GGO_HU = (-750.0, -450.0)  # ground-glass nodules
CALCIUM_HU = (250.0, 900.0)  # the calcified core of calcified nodules
#: share of the nodules that are not part-solid that are ground-glass, and calcified
GROUND_GLASS_SHARE, CALCIFIED_SHARE = 0.2, 0.15
#: share of the nodules placed against the pleura (about a quarter of LIDC's nodules are
#: juxtapleural), so that "next to the chest wall" does not tell mimics from nodules
JUXTAPLEURAL_SHARE = 0.25
NODULE_KINDS = ("solid", "part-solid", "ground-glass", "calcified")


@dataclass(frozen=True)
class Nodule:
    """One nodule: world centre (mm), mean diameter (mm), kind, and its shape and density:
    an outer part of ``rim_hu`` with a core of ``core`` times its radius of ``hu``."""

    centre: tuple[float, float, float]
    diameter: float
    kind: str  # one of NODULE_KINDS
    core: float  # core radius / radius (1 for solid nodules, 0 for ground-glass ones)
    hu: float  # density of the core (the solid part; calcium in calcified nodules)
    rim_hu: float  # density of the outer part (ground glass; soft tissue if calcified)
    lobes: np.ndarray  # (4, 3) unit vectors of the lobulation
    lobe_weights: np.ndarray  # (4,)
    juxtapleural: bool = False  # touching the pleura (costal or mediastinal)

    def radius_along(self, directions: np.ndarray) -> np.ndarray:
        """Radius (mm) along unit directions (..., 3): a sphere bumped by zero-mean lobes."""
        cos2 = (directions @ self.lobes.T) ** 2 - 1.0 / 3.0
        return 0.5 * self.diameter * (1.0 + cos2 @ self.lobe_weights)


def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random directions, uniform on the sphere (n, 3)."""
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def draw_nodules(
    rng: np.random.Generator,
    frame: Frame,
    count: int,
    diameter_mm: tuple[float, float],
    part_solid_fraction: float,
    avoid: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[Nodule]:
    """Place ``count`` nodules inside the lungs, apart from one another and (``avoid``: signed
    distance of local points to what they must stay out of) out of diseased lung.

    A nodule that finds no room after a few tries is made smaller; one that still finds none
    is left out (small lungs and big nodules), so fewer than ``count`` may come back.
    """
    nodules: list[Nodule] = []
    lo, hi = np.log(diameter_mm[0]), np.log(diameter_mm[1])
    for _ in range(count):
        diameter = float(np.exp(rng.uniform(lo, hi)))
        attached = bool(rng.random() < JUXTAPLEURAL_SHARE)
        centre = None
        for _attempt in range(4):
            centre = find_room(rng, frame, diameter / 2.0, nodules, avoid, attached)
            if centre is not None:
                break
            diameter = max(diameter_mm[0], 0.7 * diameter)
        if centre is None:
            continue
        kind, core, hu, rim_hu = _draw_kind(rng, diameter, part_solid_fraction)
        nodules.append(
            Nodule(
                centre=tuple(float(c) for c in centre),
                diameter=diameter,
                kind=kind,
                core=core,
                hu=hu,
                rim_hu=rim_hu,
                lobes=unit_vectors(rng, 4),
                lobe_weights=rng.uniform(0.0, 0.25, 4),
                juxtapleural=attached,
            )
        )
    return nodules


def _draw_kind(
    rng: np.random.Generator, diameter: float, part_solid_fraction: float
) -> tuple[str, float, float, float]:
    """(kind, core, core HU, outer HU): part-solid for ``part_solid_fraction`` of the nodules
    of 6 mm or more (smaller ones are too small to show a core), then ground-glass and calcified
    by their shares, the rest solid."""
    solid, ggo = float(rng.uniform(*SOLID_HU)), float(rng.uniform(*GGO_HU))
    pick = rng.random()
    if diameter >= 6.0 and rng.random() < part_solid_fraction:
        return "part-solid", float(rng.uniform(0.3, 0.6)), solid, ggo
    if pick < GROUND_GLASS_SHARE:
        pure = float(rng.uniform(*PURE_GGO_HU))
        return "ground-glass", 0.0, pure, pure
    if pick < GROUND_GLASS_SHARE + CALCIFIED_SHARE:
        return "calcified", float(rng.uniform(0.35, 1.0)), float(rng.uniform(*CALCIUM_HU)), solid
    return "solid", 1.0, solid, solid


def find_room(
    rng: np.random.Generator,
    frame: Frame,
    radius: float,
    others: list[Nodule],
    avoid: Callable[[np.ndarray], np.ndarray] | None = None,
    attached: bool = False,
) -> np.ndarray | None:
    """A world point whose ball of ``radius`` (+2 mm) lies in the lung and in the scan, away
    from ``others`` and out of ``avoid``; ``attached``: a ball that touches the lung's outline
    instead (its centre 0.8-1 radius + 1 mm inside)."""
    anat = frame.anatomy
    lo, hi = lung_box(anat, int(rng.choice([-1, 1])))
    local = rng.uniform(lo, hi, size=(1024 if attached else 256, 3))
    scale = float(np.mean(anat.scale))
    margin = (radius + 2.0) / scale
    sd = lung_field_sd(anat, local)
    if attached:
        local = local[(sd > 0.8 * radius / scale) & (sd < (radius + 1.0) / scale)]
    else:
        local = local[sd > margin]
    if avoid is not None and len(local):
        local = local[avoid(local) < -margin]
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
        paint(hu[sl], soft(radius - dist, h), nod.rim_hu)
        if nod.core > 0.0 and nod.hu != nod.rim_hu:
            paint(hu[sl], soft(nod.core * radius - dist, h), nod.hu)
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
