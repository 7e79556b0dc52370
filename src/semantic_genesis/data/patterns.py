"""Diffuse lung patterns of a phantom patient: emphysema, consolidation, pleural effusion.

Each appears in a patient with its own probability (``PhantomConfig.pattern_rates``), so that
"similar patients" (method.md §2.3) are patients with the same kind of lungs, not only the same
size. The shapes are simple and drawn in the anatomy's local millimetres (family members share
them, like the rest of their anatomy):

- **emphysema**: low-attenuation clusters (-1000 to -960 HU holes in the parenchyma), either
  centrilobular (many small holes, upper zones), panlobular (larger holes, lower zones) or
  paraseptal (subpleural holes);
- **consolidation**: a dense patch (-60 to +40 HU, hiding the vessels) of 4-8 overlapping
  capsules (50-300 ml), more often in the dependent lower lobe, with air bronchograms in 60 % of cases;
- **pleural effusion**: fluid (0-20 HU) layered at the back of the lung base (the dependent
  part of a supine patient), on one side or both; the lung it replaces leaves the lung mask.

Nodules and candidates are kept out of consolidation and effusion (:meth:`DiffusePatterns.sd`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semantic_genesis.data.anatomy import PhantomAnatomy
from semantic_genesis.data.frame import Frame, paint, soft
from semantic_genesis.data.organs import SIDES, lung_box, lung_field_sd, lung_sd
from semantic_genesis.data.tubes import Segments, render_tubes, segment_sd

#: default share of patients with emphysema, consolidation, pleural effusion
PATTERN_RATES = (0.3, 0.2, 0.15)
EMPHYSEMA_KINDS = ("centrilobular", "panlobular", "paraseptal")
_EMPTY = Segments(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), np.zeros(0))


@dataclass(frozen=True)
class DiffusePatterns:
    """One patient's diffuse patterns, in local mm ("" / empty / 0 where absent)."""

    emphysema: str  # "" or one of EMPHYSEMA_KINDS
    holes: Segments  # low-attenuation clusters: spheres (a == b)
    emphysema_hu: float
    consolidation: Segments  # capsules
    bronchi: Segments  # air bronchograms inside the consolidation
    consolidation_hu: float
    effusion: tuple[float, float]  # (right, left): fluid depth as a share of the lung depth
    effusion_height: tuple[float, float]  # (right, left): how far up the fluid reaches (mm)
    effusion_hu: float

    def effusion_level(self, anat: PhantomAnatomy, y_side: int, z: np.ndarray) -> np.ndarray:
        """The fluid surface (local y) of side ``y_side`` at heights ``z``: fluid lies behind
        it (larger y, the back of a supine patient), deepest at the base."""
        k = 0 if y_side < 0 else 1
        share, height = self.effusion[k], max(self.effusion_height[k], 1.0)
        base = anat.lung_bottom(y_side)
        rise = np.sqrt(np.clip(1.0 - (z - base) / height, 0.0, 1.0))
        back = anat.lung_centre_y + anat.lung_half_depth
        return back - 2.0 * anat.lung_half_depth * share * rise

    def sd(self, anat: PhantomAnatomy, points: np.ndarray) -> np.ndarray:
        """Signed distance (mm, positive inside) of local points (N, 3) to consolidation or
        effusion; nodules and candidates stay where it is negative."""
        points = np.asarray(points, dtype=np.float32)
        best = segment_sd(points, self.consolidation)
        for k, side in enumerate(SIDES):
            if self.effusion[k] <= 0:
                continue
            x, y, z = points[:, 0], points[:, 1], points[:, 2]
            top = anat.lung_bottom(side) + anat.dome_mm + self.effusion_height[k]
            inside = np.minimum(y - self.effusion_level(anat, side, z), top - z)
            best = np.maximum(best, np.where(side * x > 0, inside, -np.inf))
        return best


def draw_patterns(
    rng: np.random.Generator, anat: PhantomAnatomy, rates: tuple[float, float, float]
) -> DiffusePatterns:
    """Which patterns this patient has (each with its rate) and their shapes."""
    has = rng.random(3) < np.asarray(rates)
    kind = str(rng.choice(EMPHYSEMA_KINDS)) if has[0] else ""
    holes = _draw_holes(rng, anat, kind) if kind else _EMPTY
    cons, bronchi = _draw_consolidation(rng, anat) if has[1] else (_EMPTY, _EMPTY)
    effusion, height = (0.0, 0.0), (0.0, 0.0)
    if has[2]:
        sides = [int(rng.integers(2))] if rng.random() < 0.6 else [0, 1]
        effusion = tuple(float(rng.uniform(0.2, 0.5)) if k in sides else 0.0 for k in (0, 1))
        height = tuple(float(rng.uniform(0.25, 0.5)) * anat.lung_height if k in sides else 0.0
                       for k in (0, 1))
    return DiffusePatterns(
        emphysema=kind,
        holes=holes,
        emphysema_hu=float(rng.uniform(-1000.0, -960.0)),
        consolidation=cons,
        bronchi=bronchi,
        consolidation_hu=float(rng.uniform(-60.0, 40.0)),
        effusion=effusion,  # type: ignore[arg-type]
        effusion_height=height,  # type: ignore[arg-type]
        effusion_hu=float(rng.uniform(0.0, 20.0)),
    )


def _lung_points(rng: np.random.Generator, anat: PhantomAnatomy, n: int) -> np.ndarray:
    """``n`` trial points uniformly in the two lungs' bounding boxes (local mm)."""
    boxes = [lung_box(anat, side) for side in SIDES]
    return np.concatenate([rng.uniform(lo, hi, size=(n // 2, 3)) for lo, hi in boxes])


def _draw_holes(rng: np.random.Generator, anat: PhantomAnatomy, kind: str) -> Segments:
    """Emphysema holes: centrilobular 150-400 holes of 1.5-5 mm radius in the upper half,
    panlobular 60-160 of 4-9 mm in the lower half, paraseptal 60-160 of 3-7 mm under the
    pleura (radii of secondary pulmonary lobules and bullae)."""
    pts = _lung_points(rng, anat, 6000)
    sd = lung_field_sd(anat, pts)
    rel = -pts[:, 2] / anat.lung_height  # 0 at the apex, 1 at the base
    if kind == "centrilobular":
        n, radius, keep = rng.integers(150, 400), (1.5, 5.0), (sd > 3.0) & (rel < 0.55)
    elif kind == "panlobular":
        n, radius, keep = rng.integers(60, 160), (4.0, 9.0), (sd > 5.0) & (rel > 0.45)
    else:
        n, radius, keep = rng.integers(60, 160), (3.0, 7.0), (sd > 0.5) & (sd < 6.0)
    centres = pts[keep][: int(n)]
    r = rng.uniform(*radius, size=len(centres))
    return Segments(centres, centres.copy(), r, r.copy())


def _draw_consolidation(
    rng: np.random.Generator, anat: PhantomAnatomy
) -> tuple[Segments, Segments]:
    """A patch of 4-8 capsules (radius 10-22 mm, up to 35 mm apart) around a lung point (70 %:
    the dependent back of a lower lobe), and 0-3 air-filled bronchi (radius 1-2 mm) running out from the hilum
    through it."""
    pts = _lung_points(rng, anat, 2000)
    sd = lung_field_sd(anat, pts)
    ok = sd > 15.0
    if rng.random() < 0.7:
        lower = -pts[:, 2] > 0.5 * anat.lung_height
        back = pts[:, 1] > anat.lung_centre_y
        ok &= lower & back if np.any(ok & lower & back) else ok
    if not ok.any():
        return _EMPTY, _EMPTY
    centre = pts[ok][0]
    n = int(rng.integers(4, 9))
    a = centre + rng.uniform(-25.0, 25.0, size=(n, 3))
    b = a + rng.normal(size=(n, 3)) * rng.uniform(5.0, 20.0, size=(n, 1))
    r = rng.uniform(10.0, 22.0, size=n)
    patch = Segments(a, b, r, r * rng.uniform(0.7, 1.0, size=n))
    if rng.random() >= 0.6:
        return patch, _EMPTY
    side = 1 if centre[0] > 0 else -1
    hilum = np.array([side * (anat.lung_gap + 0.25 * anat.lung_half_width),
                      anat.lung_centre_y, anat.carina_z - 40.0])
    out = (centre - hilum) / max(float(np.linalg.norm(centre - hilum)), 1e-6)
    starts, ends, radii = [], [], []
    for _ in range(int(rng.integers(1, 4))):
        start = centre - out * 25.0 + rng.normal(size=3) * 5.0
        direction = out + rng.normal(size=3) * 0.3
        end = start + direction / np.linalg.norm(direction) * rng.uniform(35.0, 55.0)
        starts.append(start), ends.append(end), radii.append(rng.uniform(1.0, 2.0))
    r = np.asarray(radii)
    return patch, Segments(np.asarray(starts), np.asarray(ends), r, 0.6 * r)


def render_emphysema(hu: np.ndarray, frame: Frame, lung: np.ndarray,
                     patterns: DiffusePatterns) -> float:
    """Paint the holes into the parenchyma (before vessels, which cross them); returns their
    volume in ml."""
    if not len(patterns.holes):
        return 0.0
    sl, occ = render_tubes(frame, patterns.holes)
    occ *= lung[sl]
    paint(hu[sl], occ, patterns.emphysema_hu)
    return _ml(frame, occ)


def render_consolidation(hu: np.ndarray, frame: Frame, lung: np.ndarray,
                         patterns: DiffusePatterns) -> float:
    """Paint the dense patch over the lung (vessels vanish in it), then the air bronchograms
    where it is dense; returns its volume in ml. Runs after the vessels and airways."""
    if not len(patterns.consolidation):
        return 0.0
    sl, occ = render_tubes(frame, patterns.consolidation)
    occ *= lung[sl]
    paint(hu[sl], occ, patterns.consolidation_hu)
    if len(patterns.bronchi):
        bsl, bocc = render_tubes(frame, patterns.bronchi)
        bocc *= lung[bsl] & (hu[bsl] > -300.0)
        paint(hu[bsl], bocc, -1000.0)
    return _ml(frame, occ)


def render_effusion(hu: np.ndarray, frame: Frame, lung: np.ndarray,
                    patterns: DiffusePatterns) -> float:
    """Paint the fluid into the back of the lung base (and the 2 mm pleural space around it)
    and take it out of the lung mask; returns its volume in ml."""
    anat, total = frame.anatomy, 0.0
    for k, side in enumerate(SIDES):
        if patterns.effusion[k] <= 0:
            continue
        lo, hi = lung_box(anat, side)
        lo = lo.copy()
        hi = hi.copy()
        lo[1] = anat.lung_centre_y + anat.lung_half_depth * (1.0 - 2.0 * patterns.effusion[k]) - 3
        hi[2] = anat.lung_bottom(side) + anat.dome_mm + patterns.effusion_height[k] + 3
        sl, (x, y, z) = frame.box(lo, hi)
        level = patterns.effusion_level(anat, side, z)
        top = anat.lung_bottom(side) + anat.dome_mm + patterns.effusion_height[k]
        sd = np.minimum(np.minimum(lung_sd(anat, x, y, z, side) + 2.0, y - level), top - z)
        occ = soft(sd, frame.h)
        paint(hu[sl], occ, patterns.effusion_hu)
        lung[sl] &= occ <= 0.5
        total += _ml(frame, occ)
    return total


def _ml(frame: Frame, occ: np.ndarray) -> float:
    """Volume (ml, world) of the voxels more than half covered."""
    return float(np.count_nonzero(occ > 0.5) * np.prod(frame.spacing) / 1000.0)
