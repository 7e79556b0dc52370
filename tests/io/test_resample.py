"""Optional resampling (the reference keeps native spacing, method.md §1)."""

from __future__ import annotations

import numpy as np

from semantic_genesis.io import Volume, resample_volume


def test_resample_keeps_field_of_view_and_linear_values():
    x = np.arange(40, dtype=np.float32)
    ramp = np.broadcast_to(x[:, None, None], (40, 30, 10)).copy()  # value = x index
    vol = Volume(ramp, spacing=(1.0, 1.0, 4.0), origin=(5.0, -3.0, 2.0))
    out = resample_volume(vol, (2.0, 1.0, 2.0))
    assert out.shape == (20, 30, 20)
    assert out.spacing == (2.0, 1.0, 2.0) and out.origin == vol.origin
    # new voxel i sits at old index 2i: a linear ramp is reproduced exactly
    np.testing.assert_allclose(out.array[:, 7, 3], 2 * np.arange(20), atol=1e-4)
    np.testing.assert_allclose(out.voxel_to_world([[10, 0, 5]]), vol.voxel_to_world([[20, 0, 2.5]]))
    assert "resampled from 1x1x4 mm" in out.notes[-1]
