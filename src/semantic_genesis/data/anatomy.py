"""The anatomy of one phantom patient: a handful of numbers drawn per patient, and its frame.

Every structure is defined in a *local* frame of nominal millimetres: x towards the patient's
left, y posterior, z superior (ITK's LPS world axes), with the origin at the body's centre at the
height of the lung apices. A nominal patient fills a 350 x 350 x 300 mm field of view; smaller or
larger grids stretch the local frame (``scale``) so the anatomy stays proportional. The numbers
are adult chest sizes (body about 270-340 mm wide, lungs 19-29 cm tall, in four body-build
families: :data:`HABITUS`); the point is not anatomical accuracy but what the method relies on
(method.md §2.4): air outside the body, large air-filled lungs with a vessel tree, soft tissue
and bone around them, and patients that resemble one another without being identical.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

#: field of view (mm) that the nominal anatomy is drawn for; the default grid covers it.
NOMINAL_FOV_MM: tuple[float, float, float] = (350.0, 350.0, 300.0)


@dataclass(frozen=True)
class PhantomAnatomy:
    """Everything that differs between phantom patients, in local (nominal) millimetres.

    The frame: ``world = anchor_mm + scale * local``. Structures are drawn from these numbers by
    :mod:`semantic_genesis.data.organs`; the vessel tree grows from ``vessel_seed``.
    """

    anchor_mm: tuple[float, float, float]  # world position of the local origin
    scale: tuple[float, float, float]  # world mm per local mm, per axis
    # body: a super-ellipse cross-section with skin, fat and muscle layers
    body_half_width: float
    body_half_depth: float
    body_power: float
    body_taper: float  # relative change of the width per 300 mm up
    fat_mm: float
    muscle_mm: float
    back_muscle_mm: float
    # lungs: super-ellipse cross-sections, tapered apex, domed diaphragm
    lung_height: float
    lung_gap: float  # half-width of the mediastinum between the lungs
    lung_power: float
    apex_mm: float  # height over which the apex tapers
    dome_mm: float  # diaphragm dome height
    right_rise_mm: float  # the right dome sits higher (liver)
    # heart: a tilted ellipsoid on the left diaphragm
    heart_centre: tuple[float, float, float]
    heart_radii: tuple[float, float, float]
    heart_angle: float  # rotation about z, radians
    # great vessels and airway
    aorta_radius: float
    arch_z: float
    carina_z: float
    # spine and ribs
    vertebra_radius: float
    vertebra_y: float
    vertebra_pitch: float
    vertebra_phase: float
    rib_pitch: float
    rib_phase: float
    rib_slope: float  # how far the ribs drop from back to front (mm)
    # other
    stomach_gas_mm: float  # radius of the gas bubble under the left dome; 0 = none
    vessel_seed: int
    # tissue densities (HU) and acquisition
    lung_hu: float
    fat_hu: float
    muscle_hu: float
    noise_hu: float
    # variety (method.md §2.1's "similar patients" need patients that differ in kind)
    habitus: str = "average"  # one of HABITUS: the body-build family
    vessel_scale: float = 1.0  # calibre of the pulmonary trunks: more, thicker branches

    # Derived sizes, shared by every function that draws or tests a structure.
    @property
    def wall_mm(self) -> float:
        """Skin, fat, muscle and ribs between the skin and the lateral pleura."""
        return 2.0 + self.fat_mm + self.muscle_mm + 6.0

    @property
    def lung_half_width(self) -> float:
        return (self.body_half_width - self.wall_mm - self.lung_gap) / 2.0

    def _lung_front_back(self) -> tuple[float, float]:
        front = -(self.body_half_depth - self.wall_mm - 0.5 * self.fat_mm)
        back = self.body_half_depth - self.wall_mm - 0.7 * self.back_muscle_mm
        return front, back

    @property
    def lung_half_depth(self) -> float:
        front, back = self._lung_front_back()
        return 0.97 * (back - front) / 2.0

    @property
    def lung_centre_y(self) -> float:
        return sum(self._lung_front_back()) / 2.0

    def lung_centre_x(self, side: int) -> float:
        """Centre of the right (side -1) or left (side +1) lung."""
        return side * (self.lung_gap + self.lung_half_width)

    def lung_bottom(self, side: int) -> float:
        """Lowest z of a lung (the costophrenic recess)."""
        return -self.lung_height + (self.right_rise_mm if side < 0 else 0.0)

    def to_world(self, local: np.ndarray) -> np.ndarray:
        """Local (N, 3) -> world mm (N, 3)."""
        return np.asarray(self.anchor_mm) + np.asarray(local) * np.asarray(self.scale)

    def to_local(self, world: np.ndarray) -> np.ndarray:
        """World mm (N, 3) -> local (N, 3)."""
        return (np.asarray(world) - np.asarray(self.anchor_mm)) / np.asarray(self.scale)


#: body-build families: (share of patients, body size, depth / width, fat mm, muscle mm,
#: lung height mm). Adult chest CT ranges (body about 270-340 mm wide, anterior fat 2-40 mm,
#: lungs 19-29 cm tall); "barrel" is the deep, tall chest of hyperinflated lungs.
HABITUS: dict[str, tuple[float, tuple[float, float], tuple[float, float], tuple[float, float],
                         tuple[float, float], tuple[float, float]]] = {
    "slim": (0.25, (0.86, 0.95), (0.62, 0.70), (2.0, 6.0), (5.0, 8.0), (225.0, 265.0)),
    "average": (0.35, (0.93, 1.03), (0.68, 0.76), (5.0, 14.0), (6.0, 10.0), (210.0, 250.0)),
    "obese": (0.2, (1.03, 1.09), (0.76, 0.84), (15.0, 30.0), (7.0, 11.0), (200.0, 235.0)),
    "barrel": (0.2, (0.95, 1.04), (0.84, 0.93), (4.0, 12.0), (6.0, 10.0), (245.0, 285.0)),
}
CARDIOMEGALY_RATE = 0.15  # share of patients with an enlarged heart (x 1.15-1.3)


def draw_habitus(rng: np.random.Generator) -> str:
    """One body-build family, by its share of the cohort."""
    names = list(HABITUS)
    shares = np.array([HABITUS[n][0] for n in names])
    return names[int(rng.choice(len(names), p=shares / shares.sum()))]


def draw_anatomy(
    rng: np.random.Generator,
    fov_mm: tuple[float, float, float],
) -> tuple[PhantomAnatomy, float]:
    """Draw one patient's anatomy: a body-build family (:data:`HABITUS`), then every size
    within that family's ranges; heart size and position, and vessel calibre, vary on their own.

    Returns:
        The anatomy with ``anchor_mm`` relative to the field-of-view centre (in-plane) and the
        scan top (z), and the margin (local mm) between the scan top and the lung apex, which
        sets the scan coverage.
    """
    u = rng.uniform
    habitus = draw_habitus(rng)
    _, size, depth, fat, muscle, height = HABITUS[habitus]
    a = 155.0 * u(*size)
    b = a * u(*depth)
    lung_height = u(*height)
    heart_r = np.array([u(50, 62), u(40, 50), u(48, 58)])
    if rng.random() < CARDIOMEGALY_RATE:
        heart_r *= u(1.15, 1.3)
    scale = tuple(f / n for f, n in zip(fov_mm, NOMINAL_FOV_MM, strict=True))
    anatomy = PhantomAnatomy(
        anchor_mm=(u(-8.0, 8.0), u(-10.0, 10.0), 0.0),
        scale=scale,  # type: ignore[arg-type]
        body_half_width=a,
        body_half_depth=b,
        body_power=u(2.0, 2.4) if habitus == "obese" else u(2.2, 2.7),
        body_taper=u(-0.06, 0.06),
        fat_mm=u(*fat),
        muscle_mm=u(*muscle),
        back_muscle_mm=u(25.0, 40.0),
        lung_height=lung_height,
        lung_gap=u(17.0, 27.0),
        lung_power=u(2.4, 3.4),
        apex_mm=u(50.0, 85.0),
        dome_mm=u(22.0, 40.0) if habitus == "barrel" else u(35.0, 58.0),
        right_rise_mm=u(8.0, 24.0),
        heart_centre=(u(0.06, 0.24) * a, -u(0.14, 0.32) * b,
                      -lung_height + heart_r[2] * u(0.75, 0.95)),
        heart_radii=tuple(heart_r),  # type: ignore[arg-type]
        heart_angle=np.deg2rad(u(12.0, 48.0)),
        aorta_radius=u(11.0, 15.0),
        arch_z=-u(45.0, 65.0),
        carina_z=-u(65.0, 85.0),
        vertebra_radius=u(14.0, 17.0),
        vertebra_y=u(0.36, 0.42) * b,
        vertebra_pitch=u(24.0, 28.0),
        vertebra_phase=u(0.0, 28.0),
        rib_pitch=u(24.0, 28.0),
        rib_phase=u(0.0, 28.0),
        rib_slope=u(35.0, 55.0),
        stomach_gas_mm=u(12.0, 22.0) if rng.random() < 0.6 else 0.0,
        vessel_seed=int(rng.integers(0, 2**31 - 1)),
        lung_hu=u(-910.0, -860.0),
        fat_hu=u(-110.0, -85.0),
        muscle_hu=u(35.0, 55.0),
        noise_hu=0.0,
        habitus=habitus,
        vessel_scale=u(0.8, 1.25),
    )
    return anatomy, u(5.0, 35.0)


def perturb_anatomy(
    anatomy: PhantomAnatomy, rng: np.random.Generator, apex_margin: float
) -> tuple[PhantomAnatomy, float]:
    """A near-identical sibling: shifted by a few millimetres and about 1 % larger or smaller.

    Family members share everything else (organs, vessel tree); their nodules, noise and
    candidates come from their own random stream. Used for the discovery stage's neighbour tests.
    """
    s = rng.uniform(0.99, 1.01)
    shift = rng.uniform(-3.0, 3.0, size=3)
    sibling = replace(
        anatomy,
        anchor_mm=tuple(np.asarray(anatomy.anchor_mm) + shift * np.array([1, 1, 0])),
        body_half_width=anatomy.body_half_width * s,
        body_half_depth=anatomy.body_half_depth * s,
    )
    return sibling, apex_margin + float(shift[2])


def place_in_scan(
    anatomy: PhantomAnatomy,
    origin: np.ndarray,
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    apex_margin: float,
    noise_hu: float,
) -> PhantomAnatomy:
    """Fix the anatomy in the world: body centre relative to the field-of-view centre, lung apex
    ``apex_margin`` local mm below the top slice; set the patient's noise level."""
    sp = np.asarray(spacing)
    centre = origin + sp * (np.asarray(shape) - 1) / 2.0
    top_z = origin[2] + sp[2] * (shape[2] - 1)
    anchor = (
        centre[0] + anatomy.anchor_mm[0] * anatomy.scale[0],
        centre[1] + anatomy.anchor_mm[1] * anatomy.scale[1],
        top_z - apex_margin * anatomy.scale[2],
    )
    return replace(anatomy, anchor_mm=tuple(float(v) for v in anchor), noise_hu=float(noise_hu))
