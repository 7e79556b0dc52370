"""Intensity presets: every prepared volume is stored in [0, 1].

CT: clip Hounsfield units to [-1000, 1000] and scale linearly to [0, 1], as the reference does
(method.md §1; tissue threshold -150 HU = 0.425 on that scale). MR has no absolute scale, so its
values are mapped by percentiles: (0.5, 99.5) -> (0, 1), clipping the tails (a few bright voxels
otherwise squeeze the whole image into a narrow band). ``none`` keeps values that are already in
[0, 1] (e.g. the reference's pre-normalised .npy volumes, method.md §1 "Pitfall").
"""

from __future__ import annotations

import numpy as np

MODALITIES = ("ct", "mr", "none")

#: a voxel below this is not MR-like: magnitude MR is >= 0, CT air is about -1000 HU
_AIR_HU = -500.0
#: fraction of voxels below ``_AIR_HU`` that makes a volume CT (air outside the body, lungs)
_CT_AIR_FRACTION = 0.01


def normalize_intensity(array: np.ndarray, modality: str,
                        window: tuple[float, float] = (-1000.0, 1000.0),
                        percentiles: tuple[float, float] = (0.5, 99.5)) -> np.ndarray:
    """Map ``array`` to float32 in [0, 1] with the preset of ``modality``.

    Args:
        array: raw voxel values (HU for CT).
        modality: ``ct`` (HU window), ``mr`` (percentiles) or ``none`` (clip to [0, 1] only).
        window: CT window in HU (method.md §1: [-1000, 1000]).
        percentiles: MR percentiles mapped to 0 and 1.

    A constant MR image maps to zeros (there is no contrast to scale).
    """
    a = np.asarray(array, dtype=np.float32)
    if modality == "ct":
        lo, hi = float(window[0]), float(window[1])
    elif modality == "mr":
        lo, hi = (float(v) for v in np.percentile(a, percentiles))
    elif modality == "none":
        lo, hi = 0.0, 1.0
    else:
        raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")
    lo32, hi32 = np.float32(lo), np.float32(hi)
    if hi32 <= lo32:
        return np.zeros_like(a)
    out = np.clip(a, lo32, hi32)
    out -= lo32
    out /= hi32 - lo32  # float32 throughout, so the window's top maps to exactly 1
    return out


def detect_modality(array: np.ndarray) -> tuple[str, str]:
    """Guess ``ct`` or ``mr`` from the values and say why.

    CT stores Hounsfield units: air (outside the body, in the lungs, or the scanner's padding)
    sits at about -1000, so a CT scan has a clear share of voxels below -500. Magnitude MR is
    never negative. A volume with at least 1% of its voxels below -500 is called CT.

    Returns:
        (modality, reason) — the reason is one human-readable sentence.
    """
    a = np.asarray(array)
    n = max(a.size, 1)
    below = int(np.count_nonzero(a < _AIR_HU))
    vmin, vmax = float(np.min(a)), float(np.max(a))
    share = below / n
    if share >= _CT_AIR_FRACTION:
        return "ct", (f"{100 * share:.1f}% of voxels below {_AIR_HU:g} (air in Hounsfield "
                      f"units), range [{vmin:g}, {vmax:g}]")
    reason = (f"only {100 * share:.2g}% of voxels below {_AIR_HU:g}, range [{vmin:g}, "
              f"{vmax:g}]: not Hounsfield units, scaled by percentiles")
    if vmin >= 0.0 and vmax <= 1.0:
        reason += "; values already lie in [0, 1] (use modality 'none' to keep them)"
    return "mr", reason
