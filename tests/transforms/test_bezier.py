"""Bézier intensity mapping: monotone, fixed end points, the reference's curve."""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import comb

from semantic_genesis.transforms import BezierIntensity


def reference_mapping(values: np.ndarray, p1, p2, inverted: bool) -> np.ndarray:
    """method.md §3.1, written like the reference (100,000 samples, reversed Bernstein)."""
    points = [[0, 0], p1, p2, [1, 1]]
    t = np.linspace(0.0, 1.0, 100_000)
    poly = np.array([comb(3, i) * t ** (3 - i) * (1 - t) ** i for i in range(4)])
    xvals = np.dot([p[0] for p in points], poly)
    yvals = np.dot([p[1] for p in points], poly)
    if inverted:
        xvals = np.sort(xvals)
    else:
        xvals, yvals = np.sort(xvals), np.sort(yvals)
    return np.interp(values, xvals, yvals)


def test_monotone_with_fixed_end_points():
    ramp = torch.linspace(0, 1, 4096).reshape(1, 1, 16, 16, 16).expand(64, -1, -1, -1, -1)
    out, params = BezierIntensity()(ramp, torch.Generator().manual_seed(0), return_params=True)
    curves = out.reshape(64, -1)
    steps = curves.diff(dim=1)
    inverted = params["inverted"]
    assert 16 < int(inverted.sum()) < 48  # about half are inverted
    assert bool((steps[~inverted] >= -1e-6).all())
    assert bool((steps[inverted] <= 1e-6).all())
    assert torch.allclose(curves[~inverted, 0], torch.tensor(0.0), atol=1e-6)
    assert torch.allclose(curves[~inverted, -1], torch.tensor(1.0), atol=1e-6)
    assert torch.allclose(curves[inverted, 0], torch.tensor(1.0), atol=1e-6)
    assert torch.allclose(curves[inverted, -1], torch.tensor(0.0), atol=1e-6)


def test_matches_reference_curve():
    x = torch.rand(16, 1, 16, 16, 8, generator=torch.Generator().manual_seed(1))
    t = BezierIntensity()
    out, params = t(x, torch.Generator().manual_seed(2), return_params=True)
    errors = []
    for i in range(16):
        p1, p2 = params["points"][i].double().tolist()
        ref = reference_mapping(x[i].double().numpy(), p1, p2, bool(params["inverted"][i]))
        errors.append(np.abs(ref - out[i].numpy()).max())
    assert np.median(errors) < 1e-4
    assert max(errors) < 1e-2  # worst case: a near-vertical tangent inside one LUT cell
