"""One phantom patient from start to finish: anatomy and diffuse patterns -> chest -> nodules
and mimics -> scanner -> candidates.

Pure computation (no files): :func:`make_patient` returns the arrays and tables that
:mod:`semantic_genesis.data.phantoms` writes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from semantic_genesis.data import organs
from semantic_genesis.data.anatomy import (
    PhantomAnatomy,
    draw_anatomy,
    perturb_anatomy,
    place_in_scan,
)
from semantic_genesis.data.candidates import Candidate, make_candidates
from semantic_genesis.data.frame import Frame
from semantic_genesis.data.mimics import Mimic, draw_mimics, render_mimics
from semantic_genesis.data.nodules import Nodule, draw_nodules, render_nodules
from semantic_genesis.data.patterns import (
    PATTERN_RATES,
    DiffusePatterns,
    draw_patterns,
    render_consolidation,
    render_effusion,
    render_emphysema,
)
from semantic_genesis.data.vessels import VesselTree, grow_vessels
from semantic_genesis.utils.seed import derive_rng

HU_RANGE = (-1024, 3071)  # what a 12-bit CT scanner stores


@dataclass
class PhantomPatient:
    """A generated patient: int16 HU image, uint8 nodule mask and the lung mask (parenchyma
    with its vessels and nodules; not written to disk), axis order (x, y, z)."""

    id: str
    family: int | None
    image: np.ndarray
    label: np.ndarray
    lung: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    anatomy: PhantomAnatomy
    nodules: list[Nodule]
    mask_voxels: list[int]  # per nodule
    candidates: list[Candidate]
    lung_volume_ml: float
    patterns: DiffusePatterns | None = None
    pattern_ml: dict[str, float] | None = None  # emphysema, consolidation, effusion volumes
    mimics: list[Mimic] | None = None
    vessel_ml: float = 0.0


def patient_id(index: int, seed: int = 0) -> str:
    """Patient ``index`` of the cohort drawn with ``seed``: ``phantom-0003`` for seed 0 (the
    ids of earlier releases, so their folders resume), ``phantom-200-0003`` for seed 200.

    Cohorts of different seeds are different patients, so their ids differ: the leakage check
    (method.md §1.1) compares case ids, and a target drawn with another seed than the
    pre-training cohort must not look like the same patients."""
    return f"phantom-{index:04d}" if seed == 0 else f"phantom-{seed}-{index:04d}"


def make_patient(
    index: int,
    seed: int,
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    families: int = 0,
    nodules: tuple[int, int] = (1, 3),
    nodule_diameter_mm: tuple[float, float] = (3.0, 30.0),
    part_solid_fraction: float = 0.35,
    negatives: int = 20,
    noise_hu: tuple[float, float] = (12.0, 30.0),
    blur_mm: float = 0.7,
    pattern_rates: tuple[float, float, float] = PATTERN_RATES,
) -> PhantomPatient:
    """Generate patient ``index`` of the cohort drawn with ``seed``.

    Patient ``index`` depends only on ``(seed, index)`` (``derive_rng``), never on how many
    patients are drawn. With ``families`` > 0 the patient belongs to family ``index % families``
    and shares its anatomy and diffuse patterns with the family (a few millimetres of shift
    apart); nodules, mimics, noise and candidates are still its own. ``pattern_rates``: the
    chance of emphysema, consolidation and pleural effusion.
    """
    rng = derive_rng(seed, index)
    fov = tuple(n * s for n, s in zip(shape, spacing, strict=True))
    family = index % families if families > 0 else None
    if family is None:
        anatomy, margin = draw_anatomy(rng, fov)
        patterns = draw_patterns(derive_rng(seed, index, "patterns"), anatomy, pattern_rates)
    else:
        anatomy, margin = draw_anatomy(derive_rng(seed, "family", family), fov)
        patterns = draw_patterns(derive_rng(seed, "family", family, "patterns"), anatomy,
                                 pattern_rates)
        anatomy, margin = perturb_anatomy(anatomy, rng, margin)
    sp = np.asarray(spacing, dtype=float)
    origin = -(np.asarray(shape) - 1) * sp / 2.0
    origin[2] = round(float(rng.uniform(-380.0, -260.0)), 1)
    anatomy = place_in_scan(
        anatomy, origin, shape, spacing, margin, noise_hu=float(rng.uniform(*noise_hu))
    )
    frame = Frame(tuple(shape), tuple(spacing), tuple(float(o) for o in origin), anatomy)

    hu, lung, tree, volumes = render_chest(frame, patterns)
    count = int(rng.integers(nodules[0], nodules[1] + 1))

    def avoid(local: np.ndarray) -> np.ndarray:
        return patterns.sd(anatomy, local)

    found = draw_nodules(rng, frame, count, nodule_diameter_mm, part_solid_fraction, avoid)
    mimics = draw_mimics(derive_rng(seed, index, "mimics"), frame, nodule_diameter_mm, found,
                         avoid)
    render_mimics(hu, frame, lung, mimics)
    label, mask_voxels = render_nodules(hu, frame, found)
    candidates = make_candidates(rng, frame, tree, found, negatives, mimics, avoid)
    image = acquire(hu, spacing, anatomy.noise_hu, blur_mm, rng)
    seg = tree.segments
    length = np.linalg.norm(seg.b - seg.a, axis=1)
    vessel_ml = float(np.sum(np.pi * (seg.ra**2 + seg.ra * seg.rb + seg.rb**2) / 3 * length))
    return PhantomPatient(
        id=patient_id(index, seed),
        family=family,
        image=image,
        label=label,
        lung=lung,
        spacing=tuple(float(s) for s in spacing),
        origin=frame.origin,
        anatomy=anatomy,
        nodules=found,
        mask_voxels=mask_voxels,
        candidates=candidates,
        lung_volume_ml=float(lung.sum() * np.prod(sp) / 1000.0),
        patterns=patterns,
        pattern_ml=volumes,
        mimics=mimics,
        vessel_ml=vessel_ml * float(np.prod(anatomy.scale)) / 1000.0,
    )


def render_chest(
    frame: Frame, patterns: DiffusePatterns | None = None
) -> tuple[np.ndarray, np.ndarray, VesselTree, dict[str, float]]:
    """Paint every structure, back to front; returns HU (float32), lung mask, vessel tree and
    the volumes (ml) of the diffuse patterns. Emphysema goes in before the vessels (which cross
    it), consolidation and effusion after them (they hide the vessels)."""
    hu = np.full(frame.shape, organs.HU["air"], dtype=np.float32)
    body = organs.render_body(hu, frame)
    lung = organs.render_lungs(hu, frame)
    volumes = dict.fromkeys(("emphysema", "consolidation", "effusion"), 0.0)
    if patterns is not None:
        volumes["emphysema"] = render_emphysema(hu, frame, lung, patterns)
    organs.render_heart(hu, frame, lung)
    organs.render_tube(hu, frame, organs.aorta(frame.anatomy), organs.HU["blood"], lung)
    tree = grow_vessels(frame.anatomy)
    organs.render_tube(hu, frame, tree.segments, organs.HU["blood"])  # stays lung
    wall, lumen = organs.airway(frame.anatomy)
    organs.render_tube(hu, frame, wall, organs.HU["airway_wall"], lung)
    organs.render_tube(hu, frame, lumen, organs.HU["air"])
    if patterns is not None:
        volumes["consolidation"] = render_consolidation(hu, frame, lung, patterns)
        volumes["effusion"] = render_effusion(hu, frame, lung, patterns)
    organs.render_spine(hu, frame, lung)
    organs.render_ribs(hu, frame, body, lung)
    organs.render_stomach_gas(hu, frame, lung)
    return hu, lung, tree, volumes


def acquire(
    hu: np.ndarray,
    spacing: tuple[float, float, float],
    noise_hu: float,
    blur_mm: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """The scanner: white noise, then a Gaussian point-spread function (``blur_mm`` sigma),
    which blurs edges (partial volume) and correlates the noise as in real CT; the noise is
    scaled so that its standard deviation after the blur is ``noise_hu``. Returns int16 HU."""
    sigma = blur_mm / np.asarray(spacing, dtype=float)
    gain = 1.0
    for s in sigma:  # variance kept by a discrete Gaussian kernel = sum of squared weights
        delta = np.zeros(64)
        delta[32] = 1.0
        gain *= float(np.sqrt(np.sum(ndimage.gaussian_filter1d(delta, s) ** 2)))
    noise = rng.standard_normal(hu.shape, dtype=np.float32)
    noise *= np.float32(noise_hu / gain)
    hu += noise
    del noise
    ndimage.gaussian_filter(hu, sigma, output=hu)
    np.clip(hu, *HU_RANGE, out=hu)
    return np.rint(hu, out=hu).astype(np.int16)
