"""Nodule mimics: lesions that are not nodules but pool to the same intensity as nodules.

A detector's hardest false positives (LUNA16's candidates, Setio et al. 2017) are structures
of nodule-like size and density: small consolidations, pleural thickenings and plaques,
thickened fissures. Here each mimic gets the *volume* of a nodule drawn from the same diameter
distribution (``nodule_diameter_mm``), and soft-tissue densities, so the mean HU of a cube around
it matches a nodule's; what tells them apart is shape and context:

- ``consolidation``: an irregular, ill-defined blob (-250 to +30 HU, edges blurred over 2-3
  voxels), elongated (axes 1 : 0.6-0.9 : 0.4-0.8) and strongly lobulated;
- ``pleural``: a flat lens (4-8 times wider than thick, 20-70 HU) on the pleura, half of it in
  the chest wall, so its lung part has a nodule's volume;
- ``fissure``: a thin lens (5-9 times wider than thick, -50 to +50 HU) in the lung, lying in the
  plane of an oblique fissure (down and forwards, as the major fissures run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from semantic_genesis.data.frame import Frame, paint, soft
from semantic_genesis.data.nodules import find_room, unit_vectors
from semantic_genesis.data.organs import lung_field_sd

Avoid = Callable[[np.ndarray], np.ndarray] | None  # signed distance to where mimics may not go
MIMIC_KINDS = ("consolidation", "pleural", "fissure")
MIMIC_SHARES = (0.4, 0.3, 0.3)
MIMICS_PER_PATIENT = (3, 7)  # drawn per patient, whatever the number of candidates


@dataclass(frozen=True)
class Mimic:
    """One mimic: world centre (mm), principal axes (rows, unit), radii along them (mm),
    density, edge width (voxels), lobulation, and where its candidate sits."""

    centre: tuple[float, float, float]
    kind: str  # one of MIMIC_KINDS
    axes: np.ndarray  # (3, 3) rows: unit principal axes
    radii: np.ndarray  # (3,) mm
    hu: float
    edge: float
    lobes: np.ndarray  # (4, 3) unit vectors (in the axes' frame)
    lobe_weights: np.ndarray  # (4,)
    spot: tuple[float, float, float]  # the candidate's world position

    @property
    def diameter(self) -> float:
        """Its largest extent (mm): what other lesions keep clear of."""
        return 2.0 * float(self.radii.max())


def draw_mimics(
    rng: np.random.Generator,
    frame: Frame,
    diameter_mm: tuple[float, float],
    others: list,
    avoid: Avoid = None,
) -> list[Mimic]:
    """3-7 mimics, each with the volume of a sphere of a diameter drawn as nodules' are,
    apart from ``others`` (nodules, earlier mimics) and out of ``avoid`` (diseased lung)."""
    count = int(rng.integers(MIMICS_PER_PATIENT[0], MIMICS_PER_PATIENT[1] + 1))
    out: list[Mimic] = []
    lo, hi = np.log(diameter_mm[0]), np.log(diameter_mm[1])
    for _ in range(count):
        kind = MIMIC_KINDS[int(rng.choice(len(MIMIC_KINDS), p=MIMIC_SHARES))]
        d = float(np.exp(rng.uniform(lo, hi)))
        make = {"consolidation": _consolidation, "pleural": _pleural, "fissure": _fissure}[kind]
        mimic = make(rng, frame, d, [*others, *out], avoid)
        if mimic is not None:
            out.append(mimic)
    return out


def _frame_from_normal(normal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Orthonormal rows (u, v, normal): a random in-plane pair and the normal last."""
    n = normal / np.linalg.norm(normal)
    u = np.cross(n, unit_vectors(rng, 1)[0])
    u /= max(float(np.linalg.norm(u)), 1e-9)
    return np.stack([u, np.cross(n, u), n])


def _consolidation(rng: np.random.Generator, frame: Frame, d: float, others: list,
                   avoid: Avoid) -> Mimic | None:
    """An elongated, lobulated, ill-defined blob with the volume of a sphere of diameter d."""
    shape = np.array([1.0, rng.uniform(0.6, 0.9), rng.uniform(0.4, 0.8)])
    radii = 0.5 * d * shape / np.prod(shape) ** (1 / 3)  # the volume of a sphere of diameter d
    centre = find_room(rng, frame, float(radii.max()), others, avoid)
    if centre is None:
        return None
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return Mimic(tuple(map(float, centre)), "consolidation", q.T, radii,
                 float(rng.uniform(-250.0, 30.0)), float(rng.uniform(2.0, 3.0)),
                 unit_vectors(rng, 4), rng.uniform(0.2, 0.45, 4), tuple(map(float, centre)))


def _fissure(rng: np.random.Generator, frame: Frame, d: float, others: list,
             avoid: Avoid) -> Mimic | None:
    """A thin lens in an oblique fissure's plane with the volume of a sphere of diameter d."""
    k = rng.uniform(5.0, 9.0)
    w = 0.5 * d * k ** (1 / 3)
    centre = find_room(rng, frame, w, others, avoid)
    if centre is None:
        return None
    normal = np.array([rng.uniform(-0.3, 0.3), -0.7, 0.7]) + rng.normal(size=3) * 0.1
    return Mimic(tuple(map(float, centre)), "fissure", _frame_from_normal(normal, rng),
                 np.array([w, w, w / k]), float(rng.uniform(-50.0, 50.0)), 1.0,
                 unit_vectors(rng, 4), rng.uniform(0.0, 0.15, 4), tuple(map(float, centre)))


def _pleural(rng: np.random.Generator, frame: Frame, d: float, others: list,
             avoid: Avoid) -> Mimic | None:
    """A lens centred on the pleura (the lung surface, found by the lung distance and its
    gradient), its lung half holding the volume of a sphere of diameter ``d``."""
    anat = frame.anatomy
    k = rng.uniform(4.0, 8.0)
    w = d * (k / 4.0) ** (1 / 3)
    t = w / k
    scale = float(np.mean(anat.scale))
    lo = frame.local_origin + 2 * w / scale
    hi = frame.local_origin + (np.asarray(frame.shape) - 1) * frame.step - 2 * w / scale
    if np.any(lo >= hi):
        return None
    pts = rng.uniform(lo, hi, size=(2048, 3))
    sd = lung_field_sd(anat, pts)
    pts = pts[(sd > 0.0) & (sd < 4.0)]
    if avoid is not None and len(pts):
        pts = pts[avoid(pts) < -(w + 2.0) / scale]
    for p in pts:
        eps = 0.5
        grad = np.array([(lung_field_sd(anat, (p + e * eps)[None])[0]
                          - lung_field_sd(anat, (p - e * eps)[None])[0]) for e in np.eye(3)])
        if np.linalg.norm(grad) < 1e-6:
            continue
        inward = grad / np.linalg.norm(grad)  # towards the lung's inside
        surface = p - inward * float(lung_field_sd(anat, p[None])[0])
        world = anat.to_world(surface[None])[0]
        if any(np.linalg.norm(world - np.asarray(o.centre)) < w + o.diameter / 2 + 4.0
               for o in others):
            continue
        spot = anat.to_world((surface + inward * 0.4 * t / scale)[None])[0]
        if not _in_scan(frame, world, w):
            continue
        return Mimic(tuple(map(float, world)), "pleural", _frame_from_normal(inward, rng),
                     np.array([w, w, t]), float(rng.uniform(20.0, 70.0)), 1.0,
                     unit_vectors(rng, 4), rng.uniform(0.0, 0.15, 4), tuple(map(float, spot)))
    return None


def _in_scan(frame: Frame, world: np.ndarray, margin: float) -> bool:
    first = frame.index_to_world(np.zeros(3))[0] + margin
    last = frame.index_to_world(np.asarray(frame.shape) - 1)[0] - margin
    return bool(np.all((world >= first) & (world <= last)))


def render_mimics(hu: np.ndarray, frame: Frame, lung: np.ndarray, mimics: list[Mimic]) -> None:
    """Paint the mimics into the lung (only: a pleural lens's outer half stays chest wall)."""
    spacing = np.asarray(frame.spacing)
    h = float(np.mean(spacing))
    for m in mimics:
        centre = np.asarray(m.centre)
        reach = float(m.radii.max()) * (1.0 + m.lobe_weights.sum()) + m.edge * h
        lo = np.maximum(np.floor(frame.world_to_index(centre - reach)[0]), 0).astype(int)
        hi = np.minimum(np.ceil(frame.world_to_index(centre + reach)[0]) + 1,
                        frame.shape).astype(int)
        if np.any(hi <= lo):
            continue
        sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        axes = [frame.origin[k] + np.arange(lo[k], hi[k]) * spacing[k] - centre[k]
                for k in range(3)]
        offset = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1) @ m.axes.T
        q = offset / m.radii
        rho = np.linalg.norm(q, axis=-1)
        direction = q / np.maximum(rho, 1e-6)[..., None]
        bump = 1.0 + ((direction @ m.lobes.T) ** 2 - 1.0 / 3.0) @ m.lobe_weights
        sd = (1.0 - rho / bump) * float(m.radii.min())
        paint(hu[sl], soft(sd, m.edge * h) * lung[sl], m.hu)
