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

Speed on CPU (``benchmarks/bench_transforms.py``). The field is kept as ``rows``, the noise
contracted over z and x (one row of ``b + 2`` numbers per sample, component, z and x, about a
fifth of the grid); :meth:`ElasticDeform.forward` expands it into the sampling grid one sample at
a time, right before that sample is resampled, so the grid (8 bytes per voxel) never exists for
the whole batch: it stays in cache, and no batch-sized temporary is allocated (on a virtual
machine every fresh page of a large allocation costs a page fault). A sample's z-slices are a
strided view of the cube (``grid_sample`` reads it without a copy) and its output goes back to
the cube's layout with one blocked 2-D transpose. On CUDA the whole batch is done at once.
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

    Params: :meth:`sample` gives ``grid`` ``(N, Z, X, Y, 2)``, grid_sample's normalised sampling
    grid for the slices; :meth:`forward` gives the compact ``rows`` ``(N, 2, Z, X, b + 2)`` it
    expands into the grid sample by sample (see the module docstring). :meth:`apply` takes
    either; :meth:`grid` turns ``rows`` into ``grid``, :meth:`displacement` either into voxels.
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
        """The per-axis matrices ``Ax`` ``(X, a)``, ``Az`` ``(Z, c)``, ``Ky`` ``(b + 2, Y)`` and
        the two extra columns ``E`` ``(2, X, 2)`` with which the last contraction (over y)
        also adds the identity grid, and the voxel-to-grid-unit scale of both components."""
        key = (tuple(spatial), str(device))
        if key not in self._matrices:
            sx, sy, _ = spatial
            make = lowrank_factor if self.field == "lowrank" else gaussian_matrix
            ax, ay, az = (make(n, float(self.sigma)) for n in spatial)
            # grid_sample's normalised pixel centres (align_corners=False)
            cols = (np.arange(sy) * 2 + 1) / sy - 1
            rows = (np.arange(sx) * 2 + 1) / sx - 1
            # component 0 (columns) gets 1 x cols[y], component 1 (rows) rows[x] x 1
            ky = np.concatenate([ay.T, cols[None], np.ones((1, sy))])
            extra = np.zeros((2, sx, 2))
            extra[0, :, 0] = 1.0
            extra[1, :, 1] = rows
            scale = np.array([2.0 / sy, 2.0 / sx])  # voxels -> grid units (cols, rows)
            self._matrices[key] = tuple(
                torch.tensor(m, dtype=torch.float32, device=device)
                for m in (ax, az, ky, extra, scale)
            )
        return self._matrices[key]

    def sample(self, x: torch.Tensor, generator: torch.Generator | None) -> Params:
        return {"grid": self.grid({"rows": self._rows(x, generator)}, x.shape[2:])}

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, Params]:
        """Warp the batch, keeping the field as ``rows`` (see the class docstring)."""
        if self.prob < 1.0 or x.ndim != 5:
            return super().forward(x, generator)
        params = {"rows": self._rows(x, generator)}
        out = self.apply(x, params)
        params["active"] = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        return out, params

    def _rows(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """The field contracted over z and x: ``(N, 2, Z, X, b + 2)``, in grid units."""
        n, (sx, _, sz), dev = x.shape[0], x.shape[2:], x.device
        ax, az, ky, extra, scale = self._factors(x.shape[2:], dev)
        a, b, c = ax.shape[1], ky.shape[0] - 2, az.shape[1]
        if self.field == "lowrank":
            gen_dev = generator.device if generator is not None else torch.device("cpu")
            noise = torch.randn((n, 2, a, b, c), generator=generator, device=gen_dev).to(dev)
            noise *= self.alpha / np.sqrt(3.0)
        else:
            noise = (rand((n, 2, a, b, c), generator, dev) * 2 - 1) * self.alpha
        noise *= scale.view(1, 2, 1, 1, 1)
        # the small contractions (z, then x) as two plain matrix products
        field = (noise @ az.T).permute(0, 1, 4, 3, 2).reshape(-1, a) @ ax.T  # (N 2 Z b, X)
        rows = torch.empty(n, 2, sz, sx, b + 2, dtype=field.dtype, device=dev)
        rows[..., :b] = field.view(n, 2, sz, b, sx).transpose(-1, -2)
        rows[..., b:] = extra[None, :, None]
        return rows

    def grid(self, params: Params, spatial: tuple[int, ...]) -> torch.Tensor:
        """The normalised sampling grid ``(N, Z, X, Y, 2)`` of ``params``: ``grid`` as it is, or
        ``rows`` expanded for cubes of shape ``spatial`` (X, Y, Z)."""
        if "grid" in params:
            return params["grid"]
        return _expand(params["rows"], self._factors(tuple(spatial), params["rows"].device)[2])

    def displacement(self, params: Params, spatial: tuple[int, ...] = ()) -> torch.Tensor:
        """The sampled displacement in voxels, ``(N, 2, X, Y, Z)``: ``[:, 0]`` along X (rows),
        ``[:, 1]`` along Y (columns); ``spatial`` (X, Y, Z) is needed for ``rows`` params."""
        grid = self.grid(params, spatial)  # (N, Z, X, Y, 2), normalised (cols, rows)
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
        grid, rows = params.get("grid"), params.get("rows")
        ky = None if rows is None else self._factors(x.shape[2:], x.device)[2]
        out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
        # on CPU one sample at a time (see the module docstring); on CUDA the whole batch
        step = 1 if x.device.type == "cpu" else n
        for i in range(0, n, step):
            j = min(i + step, n)
            part = grid[i:j] if rows is None else _expand(rows[i:j], ky)
            part = part.to(x.dtype).reshape((j - i) * sz, sx, sy, 2)
            slices = x[i:j].permute(0, 4, 1, 2, 3).reshape((j - i) * sz, c, sx, sy)
            warped = F.grid_sample(
                slices, part, mode="bilinear", padding_mode="reflection", align_corners=False
            )
            if j - i == 1 and c == 1:  # a blocked 2-D transpose, twice as fast as a generic copy
                out[i].view(sx * sy, sz).copy_(warped.view(sz, sx * sy).t())
            else:
                out[i:j].copy_(warped.view(j - i, sz, c, sx, sy).permute(0, 2, 3, 4, 1))
        return out


def _expand(rows: torch.Tensor, ky: torch.Tensor) -> torch.Tensor:
    """The sampling grid ``(N, Z, X, Y, 2)`` from ``rows`` ``(N, 2, Z, X, b + 2)``: one matrix
    product, components first (each z-slice of a component is one contiguous (X, Y) plane,
    which grid_sample reads through the permuted view as fast as an interleaved grid)."""
    n, _, sz, sx, k = rows.shape
    return (rows.reshape(-1, k) @ ky).view(n, 2, sz, sx, -1).permute(0, 2, 3, 4, 1)
