"""In-plane elastic deformation (Semantic Genesis' PyTorch data loader).

method.md §3.2: two displacement fields, one per in-plane axis, each
``gaussian_filter(U[-1, 1] noise, sigma=8, mode="constant", cval=0) * alpha`` with alpha = 991
over the whole (X, Y, Z) cube; no displacement along z; the cube is resampled with linear
interpolation (``map_coordinates(order=1, mode="reflect")``). Measured in the reference: mean
|d| about 2.7 voxels, max about 10.

How it is computed here. A Gaussian filter with zero padding is a linear map, one matrix ``G``
per axis (``gaussian_matrix``), and the filtered field is ``(Gx ⊗ Gy ⊗ Gz) u``:

- ``field="exact"`` draws the reference's full-size U[-1, 1] noise and applies the three
  matrices (bit-for-bit the reference filter, see the tests);
- ``field="lowrank"`` (default) draws the same *distribution* far more cheaply: the field is
  Gaussian with covariance ``(1/3) (Gx Gxᵀ) ⊗ (Gy Gyᵀ) ⊗ (Gz Gzᵀ)``; with ``G = U S Vᵀ`` it is
  ``(Ax ⊗ Ay ⊗ Az) z / sqrt(3)`` with ``A = U S`` and ``z`` standard normal. A sigma-8
  Gaussian is so smooth that ``A`` keeps 99.9999 % of its energy with about 11 columns for 64
  voxels, so ``z`` has 11 x 11 x 6 entries instead of 131,072 per field (the sum of 65³
  uniforms that the reference filters is Gaussian to any practical precision).

The cube is resampled slice by slice with 2-D ``grid_sample`` (bilinear, reflection padding,
``align_corners=False`` = scipy's half-sample-symmetric "reflect"), which equals the reference's
``order=1`` interpolation because z stays on the grid.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from semantic_genesis.transforms.base import Params, Perturbation, rand

ENERGY_KEPT = 1.0 - 1e-6


@functools.lru_cache(maxsize=32)
def gaussian_matrix(length: int, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """``(length, length)`` matrix of ``scipy.ndimage.gaussian_filter1d(mode="constant")``."""
    radius = int(truncate * sigma + 0.5)
    k = np.arange(-radius, radius + 1)
    w = np.exp(-0.5 * (k / sigma) ** 2)
    w /= w.sum()
    d = np.arange(length)[None, :] - np.arange(length)[:, None]
    return np.where(np.abs(d) <= radius, w[np.clip(d + radius, 0, 2 * radius)], 0.0)


@functools.lru_cache(maxsize=32)
def lowrank_factor(length: int, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """``A`` ``(length, r)`` with ``A Aᵀ ≈ G Gᵀ``, keeping ``ENERGY_KEPT`` of the energy."""
    u, s, _ = np.linalg.svd(gaussian_matrix(length, sigma, truncate))
    energy = np.cumsum(s**2) / np.sum(s**2)
    rank = int(np.searchsorted(energy, ENERGY_KEPT)) + 1
    return u[:, :rank] * s[:rank]


class ElasticDeform(Perturbation):
    """Smooth random in-plane displacement of every voxel (reference alpha 991, sigma 8).

    Args:
        alpha: displacement scale (991).
        sigma: Gaussian smoothing in voxels (8).
        field: ``"lowrank"`` (fast, same distribution) or ``"exact"`` (the reference's noise and
            filter); see the module docstring.
        prob: probability per sample (the reference warps every input).

    Params: ``grid`` ``(N, Z, X, Y, 2)``, grid_sample's normalised sampling grid for the slices;
    :meth:`displacement` turns it into voxels.
    """

    name = "elastic"

    def __init__(
        self, alpha: float = 991.0, sigma: float = 8.0, field: str = "lowrank", prob: float = 1.0
    ) -> None:
        super().__init__(prob)
        if field not in ("lowrank", "exact"):
            raise ValueError(f"field must be 'lowrank' or 'exact', got {field!r}")
        self.alpha = alpha
        self.sigma = sigma
        self.field = field
        self._matrices: dict[tuple, tuple[torch.Tensor, ...]] = {}

    def _factors(self, spatial: tuple[int, ...], device: torch.device) -> tuple[torch.Tensor, ...]:
        """The three per-axis matrices, shaped so that the field comes out as grid_sample's
        normalised sampling grid ``(N, Z, X, Y, 2)`` with no extra pass over it."""
        key = (tuple(spatial), str(device))
        if key not in self._matrices:
            sx, sy, _ = spatial
            make = lowrank_factor if self.field == "lowrank" else gaussian_matrix
            ax, ay, az = (make(n, float(self.sigma)) for n in spatial)
            # the last step contracts y for both fields at once with kron(Ayᵀ, diag(scale)),
            # scale turning voxels into grid units (2 / length); two extra rows add the
            # identity grid: a column of ones (times the column coordinates) and a column of
            # row coordinates (times one)
            scale = np.diag([2.0 / sy, 2.0 / sx])
            base_cols = np.zeros((1, sy, 2))
            base_cols[0, :, 0] = (np.arange(sy) * 2 + 1) / sy - 1
            base_rows = np.zeros((1, sy, 2))
            base_rows[0, :, 1] = 1.0
            ky = np.concatenate(
                [np.kron(ay.T, scale), base_cols.reshape(1, -1), base_rows.reshape(1, -1)]
            )
            rows = ((np.arange(sx) * 2 + 1) / sx - 1)[:, None]
            self._matrices[key] = tuple(
                torch.tensor(m, dtype=torch.float32, device=device) for m in (ax, ky, az, rows)
            )
        return self._matrices[key]

    def sample(self, x: torch.Tensor, generator: torch.Generator | None) -> Params:
        n, (sx, sy, sz), dev = x.shape[0], x.shape[2:], x.device
        ax, ky, az, rows = self._factors(x.shape[2:], dev)
        shape = (n, 2, ax.shape[1], (ky.shape[0] - 2) // 2, az.shape[1])
        if self.field == "lowrank":
            gen_dev = generator.device if generator is not None else torch.device("cpu")
            noise = torch.randn(shape, generator=generator, device=gen_dev).to(dev)
            noise *= self.alpha / np.sqrt(3.0)
        else:
            noise = (rand(shape, generator, dev) * 2 - 1) * self.alpha
        field = noise @ az.T  # (N, 2, a, b, Z)
        field = field.permute(0, 1, 3, 4, 2) @ ax.T  # (N, 2, b, Z, X)
        field = field.permute(0, 3, 4, 2, 1).reshape(n, sz, sx, -1)  # (N, Z, X, 2b)
        ones = field.new_ones(n, sz, sx, 1)
        field = torch.cat([field, ones, rows.expand(n, sz, sx, 1)], dim=-1)
        grid = (field.reshape(n * sz * sx, -1) @ ky).view(n, sz, sx, sy, 2)
        return {"grid": grid}

    @staticmethod
    def displacement(params: Params) -> torch.Tensor:
        """The sampled displacement in voxels, ``(N, 2, X, Y, Z)``: ``[:, 0]`` along X (rows),
        ``[:, 1]`` along Y (columns)."""
        grid = params["grid"]  # (N, Z, X, Y, 2), normalised (cols, rows)
        _, _, sx, sy, _ = grid.shape
        rows = (torch.arange(sx, device=grid.device) * 2 + 1) / sx - 1
        cols = (torch.arange(sy, device=grid.device) * 2 + 1) / sy - 1
        d_rows = (grid[..., 1] - rows[:, None]) * sx / 2
        d_cols = (grid[..., 0] - cols) * sy / 2
        return torch.stack([d_rows, d_cols], dim=1).permute(0, 1, 3, 4, 2)

    def apply(
        self, x: torch.Tensor, params: Params, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        n, c, sx, sy, sz = x.shape
        grid = params["grid"].reshape(n * sz, sx, sy, 2).to(x.dtype)
        slices = x.permute(0, 4, 1, 2, 3).reshape(n * sz, c, sx, sy)
        out = F.grid_sample(
            slices, grid, mode="bilinear", padding_mode="reflection", align_corners=False
        )
        return out.view(n, sz, c, sx, sy).permute(0, 2, 3, 4, 1).contiguous()
