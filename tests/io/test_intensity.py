"""Intensity presets (method.md §1) and modality detection."""

from __future__ import annotations

import numpy as np
import pytest

from semantic_genesis.io import detect_modality, normalize_intensity
from tests.io.scans import ANATOMICAL, ct_volume


def test_ct_window_is_the_reference_one():
    hu = np.array([-3000, -1000, -150, 0, 1000, 2500], np.int16)
    out = normalize_intensity(hu, "ct")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0, 0, 0.425, 0.5, 1, 1])  # -150 HU = HU_thred 0.425


def test_mr_percentiles_map_to_unit_range():
    rng = np.random.default_rng(0)
    mr = rng.gamma(2.0, 300.0, (40, 30, 20)).astype(np.float32)
    mr[0, 0, 0] = 1e6  # one hot voxel must not squeeze the rest
    out = normalize_intensity(mr, "mr")
    lo, hi = np.percentile(mr, (0.5, 99.5))
    assert out.min() == 0 and out.max() == 1
    np.testing.assert_allclose(out[mr < lo], 0)
    np.testing.assert_allclose(out[mr > hi], 1)
    assert 0.15 < float(np.median(out)) < 0.5


def test_none_keeps_unit_values_and_constant_mr_is_zero():
    x = np.linspace(0, 1, 24, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_array_equal(normalize_intensity(x, "none"), x)
    assert not normalize_intensity(np.full((4, 4, 4), 7.0), "mr").any()
    with pytest.raises(ValueError, match="unknown modality"):
        normalize_intensity(x, "pet")


def test_detect_modality():
    modality, why = detect_modality(ct_volume((40, 40, 20)))
    assert modality == "ct" and "below -500" in why
    import nibabel as nib

    modality, why = detect_modality(np.asanyarray(nib.load(ANATOMICAL).dataobj))
    assert modality == "mr" and "not Hounsfield" in why
    modality, why = detect_modality(np.random.default_rng(0).random((8, 8, 8)))
    assert modality == "mr" and "already lie in [0, 1]" in why
