"""The pulmonary vessel trees: arteries and veins branching from each hilum into the lungs.

Each tree starts with a trunk from the heart to the hilum, splits into lobar branches aimed at
the upper, middle and lower lung, and then branches asymmetrically (a major child that keeps
most of the calibre and a minor one that turns away, radii roughly following Murray's law)
until the vessels are thinner than ``MIN_RADIUS``. A branch that would leave the lung is cut
short or dropped. Arteries and veins overlap in projection, which makes vessel crossings and
branch points, the classic look-alikes of nodules (LUNA16's false-positive candidates).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semantic_genesis.data.anatomy import PhantomAnatomy
from semantic_genesis.data.organs import SIDES, lung_field_sd
from semantic_genesis.data.tubes import Segments

MIN_RADIUS = 0.6  # mm: thinner vessels vanish in the partial volume of 1.5-2 mm voxels
MAX_DEPTH = 14


@dataclass(frozen=True)
class VesselTree:
    """All vessel segments (local mm), which tree each belongs to (even: arteries, odd: veins),
    and the branch points (where a segment splits)."""

    segments: Segments
    branch_points: np.ndarray  # (B, 3) local mm
    branch_radii: np.ndarray  # (B,) radius of the parent at the branch point
    tree: np.ndarray  # (S,) index of each segment's tree (artery 2 k, vein 2 k + 1)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _turn(direction: np.ndarray, rng: np.random.Generator, angle: np.ndarray) -> np.ndarray:
    """Rotate each direction (N, 3) by ``angle`` (N,) about a random perpendicular axis."""
    v = rng.normal(size=direction.shape)
    axis = _unit(v - direction * np.sum(v * direction, axis=1, keepdims=True))
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    return direction * c + np.cross(axis, direction) * s  # Rodrigues, axis perpendicular


def _roots(anat: PhantomAnatomy) -> list[tuple[np.ndarray, np.ndarray, float, list[np.ndarray]]]:
    """(trunk start, hilum, trunk radius, lobar targets) per tree: arteries, then veins."""
    cx, cy, cz = anat.heart_centre
    rx, ry, rz = anat.heart_radii
    trees = []
    for side in SIDES:
        xc, yc = anat.lung_centre_x(side), anat.lung_centre_y
        w, d = anat.lung_half_width, anat.lung_half_depth
        bottom = anat.lung_bottom(side)
        hilum_x = side * (anat.lung_gap + 0.25 * w)
        targets = [
            np.array([xc, yc - 0.2 * d, -0.25 * anat.apex_mm]),
            np.array([xc + side * 0.3 * w, yc + 0.5 * d, -0.6 * anat.apex_mm]),
            np.array([xc + side * 0.5 * w, yc - 0.6 * d, 0.5 * bottom]),
            np.array([xc + side * 0.2 * w, yc + 0.5 * d, bottom + 0.4 * anat.dome_mm]),
            np.array([xc + side * 0.6 * w, yc, bottom + 0.2 * anat.dome_mm]),
        ]
        artery_start = np.array([cx - 0.3 * rx, cy - 0.3 * ry, cz + 0.8 * rz])
        trunk = 10.0 * anat.vessel_scale  # a wider trunk branches more times before MIN_RADIUS
        trees.append(
            (artery_start, np.array([hilum_x, yc - 0.1 * d, anat.carina_z - 25.0]), trunk, targets)
        )
        vein_start = np.array([cx + 0.1 * rx, cy + 0.6 * ry, cz + 0.3 * rz])
        vein_targets = [t + np.array([0.0, 0.15 * d, -15.0]) for t in targets]
        trees.append(
            (
                vein_start,
                np.array([hilum_x, yc + 0.05 * d, anat.carina_z - 55.0]),
                0.8 * trunk,
                vein_targets,
            )
        )
    return trees


def grow_vessels(anat: PhantomAnatomy) -> VesselTree:
    """Grow both lungs' arterial and venous trees from ``anat.vessel_seed``.

    Growth is breadth-first and vectorised over the whole frontier of branch tips.
    """
    rng = np.random.default_rng(anat.vessel_seed)
    roots = [(s, _into_lung(anat, h, 0.5 * r + 3.0), r, t) for s, h, r, t in _roots(anat)]
    parts = [
        Segments(
            np.array([s for s, *_ in roots]),
            np.array([h for _, h, *_ in roots]),
            np.array([r for *_, r, _ in roots]),
            np.array([0.8 * r for *_, r, _ in roots]),
        )
    ]
    tips = [(h, t - h, 0.5 * r, k) for k, (_, h, r, targets) in enumerate(roots) for t in targets]
    p = np.array([t[0] for t in tips])
    direction = _unit(np.array([t[1] for t in tips]))
    radius = np.array([t[2] for t in tips])
    tree = np.array([t[3] for t in tips])
    trees = [np.arange(len(roots))]
    hilum = p.copy()
    branch_p, branch_r = [], []
    for depth in range(MAX_DEPTH):
        q, ok = _extend(anat, p, direction, radius, rng, turn=depth < 3)
        p, q, direction, radius, hilum = p[ok], q[ok], direction[ok], radius[ok], hilum[ok]
        tree = tree[ok]
        r_end = 0.96 * radius
        parts.append(Segments(p, q, radius, r_end))
        trees.append(tree)
        split = r_end >= MIN_RADIUS
        if not split.any():
            break
        q, direction, r_end, hilum = q[split], direction[split], r_end[split], hilum[split]
        tree = np.concatenate([tree[split], tree[split]])
        branch_p.append(q), branch_r.append(r_end)
        n = len(q)
        major = _turn(direction, rng, rng.uniform(0.15, 0.5, n))
        minor = _turn(direction, rng, -rng.uniform(0.55, 1.0, n))
        outward = 0.25 * _unit(q - hilum)
        p = np.concatenate([q, q])
        direction = _unit(np.concatenate([major + outward, minor + outward]))
        radius = np.concatenate(
            [r_end * rng.uniform(0.85, 0.95, n), r_end * rng.uniform(0.62, 0.8, n)]
        )
        hilum = np.concatenate([hilum, hilum])
    bp = np.concatenate(branch_p) if branch_p else np.zeros((0, 3))
    br = np.concatenate(branch_r) if branch_r else np.zeros(0)
    return VesselTree(Segments.concat(parts), bp, br, np.concatenate(trees))


def _into_lung(anat: PhantomAnatomy, hilum: np.ndarray, depth: float) -> np.ndarray:
    """The hilum, moved in 2 mm steps towards its lung's core until it lies ``depth`` mm inside
    the lung field: a large or displaced heart (or a narrow obese chest) would otherwise cover
    it, and no branch could leave it."""
    point = np.asarray(hilum, dtype=float)
    core = _core(anat, point[None])[0]
    step = _unit(core - point) * 2.0
    for _ in range(40):
        if lung_field_sd(anat, point[None])[0] >= depth:
            break
        point = point + step
    return point


def _extend(
    anat: PhantomAnatomy,
    p: np.ndarray,
    direction: np.ndarray,
    r: np.ndarray,
    rng: np.random.Generator,
    turn: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """End points of branches of radius ``r`` from ``p``. A branch that would leave the lung is
    halved, twice at most, and (``turn``: the first generations) turned towards the lung's
    core; returns the end points and which branches survived (``direction`` is updated in
    place for the turned ones)."""
    length = np.clip(r * rng.uniform(5.0, 8.0, len(r)), 3.0, 35.0)
    ok = np.zeros(len(r), dtype=bool)
    for _ in range(3):
        todo = np.flatnonzero(~ok)
        if not len(todo):
            break
        step = direction[todo] * length[todo, None]
        pts = np.concatenate([p[todo] + 0.5 * step, p[todo] + step])
        sd = lung_field_sd(anat, pts).reshape(2, -1).min(axis=0)
        good = sd > r[todo] + 2.0
        ok[todo[good]] = True
        bad = todo[~good]
        length[bad] /= 2.0
        if turn:
            direction[bad] = _unit(direction[bad] + _unit(_core(anat, p[bad]) - p[bad]))
    return p + direction * length[:, None], ok


def _core(anat: PhantomAnatomy, p: np.ndarray) -> np.ndarray:
    """The point on each lung's vertical axis nearest to ``p`` (N, 3)."""
    side = np.where(p[:, 0] < 0, -1, 1)
    x = np.where(side < 0, anat.lung_centre_x(-1), anat.lung_centre_x(1))
    z = np.clip(p[:, 2], -anat.lung_height + anat.dome_mm, -0.5 * anat.apex_mm)
    return np.stack([x, np.full(len(p), anat.lung_centre_y), z], axis=1)
