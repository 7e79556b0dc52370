"""One small function per structure of the phantom chest, in local millimetres.

Shape functions return *signed distances* (mm, positive inside) and work on any broadcastable
coordinate arrays, so the same formula draws a structure on the grid and answers "is this point
inside the lung?" for the vessel tree, nodules and candidates. ``render_*`` functions paint a
structure into the HU volume (later structures cover earlier ones) and take the voxels they
cover away from the lung mask.

Densities (HU) are textbook values for unenhanced CT: air -1000, lung parenchyma about -870,
fat about -100, muscle and blood 40-55, trabecular bone about 230, cortical bone 600+.
"""

from __future__ import annotations

import numpy as np

from semantic_genesis.data.anatomy import PhantomAnatomy
from semantic_genesis.data.frame import Frame, paint, soft, superellipse_radius
from semantic_genesis.data.tubes import Segments, render_tubes, segment_sd

HU = {
    "air": -1000.0,
    "skin": 30.0,
    "mediastinum": 25.0,
    "abdomen": 55.0,
    "blood": 40.0,
    "pericardial_fat": -90.0,
    "cortical": 650.0,
    "trabecular": 230.0,
    "disc": 85.0,
    "posterior_arch": 450.0,
    "csf": 15.0,
    "rib": 550.0,
    "cartilage": 120.0,
    "sternum": 380.0,
    "airway_wall": 60.0,
}
SIDES = (-1, 1)  # right lung (patient's right = -x in LPS), left lung


# --- body wall -------------------------------------------------------------------------------


def layer_thickness(anat: PhantomAnatomy, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fat (thicker in front) and muscle (thicker at the back) thickness at position ``y``."""
    yn = y / anat.body_half_depth
    fat = anat.fat_mm * (1.0 + 0.6 * np.clip(-yn, 0.0, 1.0))
    muscle = anat.muscle_mm + anat.back_muscle_mm * np.clip(yn, 0.0, 1.0) ** 2
    return fat, muscle


def body_depth(anat: PhantomAnatomy, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Depth below the skin (mm; negative outside the body) of a super-elliptic cross-section."""
    grow = 1.0 + anat.body_taper * z / 300.0
    a, b = anat.body_half_width * grow, anat.body_half_depth * grow
    rho = np.maximum(superellipse_radius(x / a, y / b, anat.body_power), 1e-3)
    radial = np.sqrt(x * x + y * y) * (1.0 / rho - 1.0)  # along the ray from the centre
    return np.maximum(radial, (1.0 - rho) * np.minimum(a, b)).astype(np.float32)


def render_body(hu: np.ndarray, frame: Frame) -> tuple[tuple[slice, ...], np.ndarray]:
    """Skin, subcutaneous fat, muscle, then mediastinal (above the diaphragm) or abdominal soft
    tissue; returns the body's bounding box and the depth below the skin inside it.

    Each layer is a soft step of depth, so a row of constant ``y`` (where the layer thicknesses
    are fixed) is one piecewise-linear function of depth: ``np.interp`` paints it at once.
    """
    anat = frame.anatomy
    grow = 1.0 + abs(anat.body_taper)
    half = np.array([anat.body_half_width, anat.body_half_depth, np.inf]) * grow + 2 * frame.h
    sl, (x, y, z) = frame.box(-half, half)
    depth = body_depth(anat, x, y, z)
    fat, muscle = layer_thickness(anat, y[0, :, 0])
    below = int(np.searchsorted(z[0, 0], -anat.lung_height + 0.5 * anat.dome_mm))
    h = frame.h
    view = hu[sl]
    for j in range(depth.shape[1]):
        edges = np.array([0.0, 2.0, 2.0 + fat[j], 2.0 + fat[j] + muscle[j]])
        xp = np.maximum.accumulate(np.stack([edges - h / 2, edges + h / 2], 1).ravel())
        for zs, inner in (
            (slice(0, below), HU["abdomen"]),
            (slice(below, None), HU["mediastinum"]),
        ):
            values = [HU["air"], HU["skin"], anat.fat_hu, anat.muscle_hu, inner]
            fp = np.repeat(values, 2)[1:-1]
            view[:, j, zs] = np.interp(depth[:, j, zs], xp, fp)
    return sl, depth


# --- lungs -----------------------------------------------------------------------------------


def lung_sd(
    anat: PhantomAnatomy, x: np.ndarray, y: np.ndarray, z: np.ndarray, side: int
) -> np.ndarray:
    """One lung: a super-ellipse cross-section that tapers to the apex (z = 0) and sits on a
    domed diaphragm that rises towards the lung's centre (lower at the costophrenic recesses)."""
    xc, yc = anat.lung_centre_x(side), anat.lung_centre_y
    w, d = anat.lung_half_width, anat.lung_half_depth
    taper = np.sqrt(np.clip(-z / anat.apex_mm, 1e-4, 1.0))
    rho = superellipse_radius((x - xc) / (w * taper), (y - yc) / (d * taper), anat.lung_power)
    sd_xy = (1.0 - rho) * w * taper
    rr = ((x - xc) / w) ** 2 + ((y - yc) / d) ** 2
    diaphragm = anat.lung_bottom(side) + anat.dome_mm * np.clip(1.0 - rr, 0.0, 1.0)
    return np.minimum(np.minimum(sd_xy, z - diaphragm), pleura_sd(anat, x, y, z))


def rib_depth(anat: PhantomAnatomy, y: np.ndarray) -> np.ndarray:
    """Depth below the skin of the ribs' centre line."""
    fat, muscle = layer_thickness(anat, y)
    return 2.0 + fat + muscle + 3.5


def pleura_sd(anat: PhantomAnatomy, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Signed distance to the inside of the rib cage: lungs stay 2 mm inside the ribs."""
    return body_depth(anat, x, y, z) - (rib_depth(anat, y) + 3.5 + 2.0)


def lung_box(anat: PhantomAnatomy, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Local bounding box (lo, hi) of one lung."""
    xc, yc = anat.lung_centre_x(side), anat.lung_centre_y
    w, d = anat.lung_half_width + 3, anat.lung_half_depth + 3
    return (np.array([xc - w, yc - d, anat.lung_bottom(side) - 3]), np.array([xc + w, yc + d, 3]))


def lung_field_sd(anat: PhantomAnatomy, points: np.ndarray) -> np.ndarray:
    """Signed distance (local mm) of points (N, 3) to the lung parenchyma: inside either lung
    and outside the heart and aorta, which indent it. Used to grow vessels and place nodules."""
    x, y, z = (np.asarray(points, np.float32)[:, k] for k in range(3))
    sd = np.maximum(lung_sd(anat, x, y, z, -1), lung_sd(anat, x, y, z, 1))
    sd = np.minimum(sd, -heart_sd(anat, x, y, z, grow=4.0))
    return np.minimum(sd, -segment_sd(points, aorta(anat)) - 2.0)


def render_lungs(hu: np.ndarray, frame: Frame) -> np.ndarray:
    """Paint both lungs (denser towards the back, as in a supine patient); return their mask."""
    anat = frame.anatomy
    mask = np.zeros(frame.shape, dtype=bool)
    for side in SIDES:
        sl, (x, y, z) = frame.box(*lung_box(anat, side))
        occ = soft(lung_sd(anat, x, y, z, side), frame.h)
        gradient = anat.lung_hu + 25.0 * (y - anat.lung_centre_y) / anat.lung_half_depth
        paint(hu[sl], occ, gradient)
        mask[sl] |= occ > 0.5
    return mask


def _cover(mask: np.ndarray, sl: tuple[slice, ...], occ: np.ndarray) -> None:
    """Voxels mostly covered by a later structure are no longer lung."""
    mask[sl] &= np.broadcast_to(occ <= 0.5, mask[sl].shape)


# --- heart, great vessels, airway --------------------------------------------------------------


def heart_sd(
    anat: PhantomAnatomy, x: np.ndarray, y: np.ndarray, z: np.ndarray, grow: float = 0.0
) -> np.ndarray:
    """The heart: an ellipsoid rotated about z, on the left half of the diaphragm."""
    cx, cy, cz = anat.heart_centre
    c, s = np.cos(anat.heart_angle), np.sin(anat.heart_angle)
    u, v, w = c * (x - cx) + s * (y - cy), -s * (x - cx) + c * (y - cy), z - cz
    rx, ry, rz = (r + grow for r in anat.heart_radii)
    rho = np.sqrt((u / rx) ** 2 + (v / ry) ** 2 + (w / rz) ** 2)
    return (1.0 - rho) * min(rx, ry, rz)


def render_heart(hu: np.ndarray, frame: Frame, lung: np.ndarray) -> None:
    """Pericardial fat, then the heart (blood and myocardium look alike without contrast)."""
    anat = frame.anatomy
    r = max(anat.heart_radii) + 8
    sl, (x, y, z) = frame.box(np.asarray(anat.heart_centre) - r, np.asarray(anat.heart_centre) + r)
    fat = soft(heart_sd(anat, x, y, z, grow=4.0), frame.h)
    paint(hu[sl], fat, HU["pericardial_fat"])
    paint(hu[sl], soft(heart_sd(anat, x, y, z), frame.h), HU["blood"])
    _cover(lung, sl, fat)


def aorta(anat: PhantomAnatomy) -> Segments:
    """Ascending aorta from the heart, the arch left of the trachea, descending beside the spine."""
    cx, cy, cz = anat.heart_centre
    rx, ry, rz = anat.heart_radii
    dx = anat.vertebra_radius + 0.7 * anat.aorta_radius
    dy = anat.vertebra_y - 0.2 * anat.vertebra_radius
    points = [
        (cx - 0.35 * rx, cy + 0.2 * ry, cz + 0.4 * rz),
        (6.0, -0.3 * ry - 8, anat.arch_z - 25),
        (14.0, -12.0, anat.arch_z),
        (dx - 2, dy - 22, anat.arch_z - 6),
        (dx, dy, anat.arch_z - 30),
        (dx, dy, -anat.lung_height - 120),
    ]
    r = anat.aorta_radius
    return Segments.polyline(np.array(points), np.array([r, r, r, 0.9 * r, 0.85 * r, 0.8 * r]))


def airway(anat: PhantomAnatomy) -> tuple[Segments, Segments]:
    """Trachea and main bronchi: (outer wall, air lumen)."""
    ty = anat.vertebra_y - anat.vertebra_radius - 13.0
    carina = np.array([0.0, ty - 3.0, anat.carina_z])
    top = np.array([0.0, ty + 2.0, 80.0])
    ends = [
        np.array(
            [
                side * (anat.lung_gap + 12.0),
                anat.lung_centre_y - 8.0,
                anat.carina_z - (18.0 if side < 0 else 28.0),
            ]
        )
        for side in SIDES
    ]
    a = np.array([top, carina, carina])
    b = np.array([carina, ends[0], ends[1]])
    lumen = Segments(a, b, np.array([9.0, 7.0, 6.5]), np.array([8.5, 5.5, 5.0]))
    wall = Segments(a, b, lumen.ra + 2.0, lumen.rb + 2.0)
    return wall, lumen


def render_tube(
    hu: np.ndarray, frame: Frame, seg: Segments, value: float, lung: np.ndarray | None = None
) -> None:
    """Paint tubes with one density; optionally take them out of the lung mask."""
    sl, occ = render_tubes(frame, seg)
    paint(hu[sl], occ, value)
    if lung is not None:
        _cover(lung, sl, occ)


# --- spine, ribs, sternum ----------------------------------------------------------------------


def render_spine(hu: np.ndarray, frame: Frame, lung: np.ndarray) -> None:
    """Vertebral bodies (cortical shell, trabecular core, discs every ``vertebra_pitch`` mm),
    posterior arch, transverse and spinous processes around the CSF-filled canal."""
    anat = frame.anatomy
    vr, vy = anat.vertebra_radius, anat.vertebra_y
    canal_y = vy + vr + 9.0
    lo = np.array([-40.0, vy - vr - 3, -np.inf])
    sl, (x, y, z) = frame.box(lo, np.array([40.0, canal_y + 45, np.inf]))
    body = (1.0 - superellipse_radius(x / (1.1 * vr), (y - vy) / vr, 2.0)) * vr
    occ = soft(body, frame.h)
    paint(hu[sl], occ, HU["cortical"])
    disc = np.mod(z - anat.vertebra_phase, anat.vertebra_pitch) < 5.0
    paint(hu[sl], soft(body - 2.0, frame.h), np.where(disc, HU["disc"], HU["trabecular"]))
    rc = np.sqrt(x * x + (y - canal_y) ** 2)
    ring = np.minimum(np.minimum(14.0 - rc, rc - 6.0), y - canal_y + 6.0)
    spinous = np.minimum(np.minimum(4.0 - np.abs(x), y - canal_y - 8.0), canal_y + 38.0 - y)
    transverse = np.minimum(5.0 - np.abs(y - canal_y + 2.0), 30.0 - np.abs(x))
    arch = soft(np.maximum(np.maximum(ring, spinous), transverse), frame.h)
    paint(hu[sl], arch, HU["posterior_arch"])
    paint(hu[sl], soft(7.0 - rc, frame.h), HU["csf"])
    _cover(lung, sl, np.maximum(occ, arch))


def render_ribs(
    hu: np.ndarray, frame: Frame, body: tuple[tuple[slice, ...], np.ndarray], lung: np.ndarray
) -> None:
    """Ribs in the chest wall, dropping from back to front, every ``rib_pitch`` mm, with costal
    cartilage near the sternum; then the sternum. ``body`` is what :func:`render_body` returns."""
    anat = frame.anatomy
    box, depth = body
    x, y, z = (frame.local_axis(k)[box[k]] for k in range(3))
    x, y, z = x[:, None, None], y[None, :, None], z[None, None, :]
    hu, lung = hu[box], lung[box]
    fat = layer_thickness(anat, y)[0]
    centre = np.broadcast_to(rib_depth(anat, y), (1, depth.shape[1], 1))
    band = np.abs(depth - centre) < 3.5 + frame.h
    i, j, k = np.nonzero(band)
    xs, ys, zs = x[i, 0, 0], y[0, j, 0], z[0, 0, k]
    yn = np.clip(ys / anat.body_half_depth, -1.0, 1.0)
    z_rib = zs + anat.rib_slope * (1.0 - yn) / 2.0 - anat.rib_phase
    dz = np.mod(z_rib, anat.rib_pitch) - anat.rib_pitch / 2.0
    dr = depth[i, j, k] - centre[0, j, 0]
    sd = (1.0 - np.sqrt((dr / 3.5) ** 2 + (dz / 5.5) ** 2)) * 3.5
    present = (z_rib > -anat.lung_height - 30.0) & (z_rib < -8.0)
    occ = np.where(present, soft(sd, frame.h), 0.0).astype(np.float32)
    cartilage = (yn < -0.55) & (np.abs(xs) < 0.3 * anat.body_half_width)
    value = np.where(cartilage, HU["cartilage"], HU["rib"]).astype(np.float32)
    hu[i, j, k] += occ * (value - hu[i, j, k])
    lung[i, j, k] &= occ <= 0.5
    # sternum: a plate under the anterior fat, in the midline
    top = 2.0 + fat
    inside = (np.abs(x) < 16.0) & (y < 0) & (z > -anat.lung_height + 30.0) & (z < -20.0)
    sd = np.minimum(np.minimum(13.0 - np.abs(x), depth - top), top + 11.0 - depth)
    paint(hu, np.where(inside, soft(sd, frame.h), 0.0), HU["sternum"])


def render_stomach_gas(hu: np.ndarray, frame: Frame, lung: np.ndarray) -> None:
    """A gas bubble under the left dome of the diaphragm (in about 60 % of patients)."""
    anat = frame.anatomy
    r = anat.stomach_gas_mm
    if r <= 0:
        return
    centre = np.array(
        [
            anat.lung_centre_x(1),
            anat.lung_centre_y - 10.0,
            anat.lung_bottom(1) + anat.dome_mm - r - 10.0,
        ]
    )
    radii = np.array([1.4 * r, 1.1 * r, r])
    sl, (x, y, z) = frame.box(centre - radii - 3, centre + radii + 3)
    rho = np.sqrt(
        ((x - centre[0]) / radii[0]) ** 2
        + ((y - centre[1]) / radii[1]) ** 2
        + ((z - centre[2]) / radii[2]) ** 2
    )
    below = -lung_sd(anat, x, y, z, 1) - 6.0  # keep a diaphragm between gas and lung
    occ = soft(np.minimum((1.0 - rho) * r, below), frame.h)
    paint(hu[sl], occ, HU["air"])
    _cover(lung, sl, occ)
