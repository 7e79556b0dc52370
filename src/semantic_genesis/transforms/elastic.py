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
fifth of the grid); :meth:`ElasticDeform.apply` expands it into the sampling grid one sample at
a time, right before that sample is resampled, so the grid (8 bytes per voxel) never exists for
the whole batch: it stays in cache, and no batch-sized temporary is allocated (on a virtual
machine every fresh page of a large allocation costs a page fault). ``index`` lets a caller warp
some samples of a batch without copying them, or their rows, out first. A sample's z-slices are a
strided view of the cube (``grid_sample`` reads it without a copy) and its output goes back to
the cube's layout with one blocked 2-D transpose. :meth:`ElasticDeform.apply` can be told that
only a box of each cube will be read (the sg preset does so for out-painting, which keeps one
box of about an eighth of the cube and replaces the rest with noise) and then warps only that
box. On CUDA the whole batch is done at once.
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
            col_pos = (np.arange(sy) * 2 + 1) / sy - 1
            row_pos = (np.arange(sx) * 2 + 1) / sx - 1
            # component 0 (columns) gets 1 x col_pos[y], component 1 (rows) row_pos[x] x 1
            ky = np.concatenate([ay.T, col_pos[None], np.ones((1, sy))])
            extra = np.zeros((2, sx, 2))
            extra[0, :, 0] = 1.0
            extra[1, :, 1] = row_pos
            scale = np.array([2.0 / sy, 2.0 / sx])  # voxels -> grid units (cols, rows)
            self._matrices[key] = tuple(
                torch.tensor(m, dtype=torch.float32, device=device)
                for m in (ax, az, ky, extra, scale)
            )
        return self._matrices[key]

    def sample(
        self, x: torch.Tensor, generator: torch.Generator | None, compact: bool = False
    ) -> Params:
        """Draw the field: ``{"grid": ...}``, or ``{"rows": ...}`` if ``compact``."""
        rows = {"rows": self._rows(x, generator)}
        return rows if compact else {"grid": self.grid(rows, x.shape[2:])}

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, Params]:
        """Warp the batch, keeping the field as ``rows`` (see the class docstring)."""
        if self.prob < 1.0 or x.ndim != 5:
            return super().forward(x, generator)
        params = self.sample(x, generator, compact=True)
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
        if len(spatial) != 3:
            raise ValueError("'rows' params need the cube's spatial shape (X, Y, Z)")
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
        self,
        x: torch.Tensor,
        params: Params,
        generator: torch.Generator | None = None,
        region: tuple[torch.Tensor, torch.Tensor] | None = None,
        index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Warp ``x`` with ``params`` (``grid`` or ``rows``, one per sample of ``x``).

        ``index`` ``(K,)`` warps only those samples of ``x`` (each with its own params) into a
        batch of K, without copying them or their params out first. ``region`` = ``(corner,
        size)``, two ``(K, 3)`` integer tensors, says that only the voxels of that box of each
        output will be read (by out-painting, which replaces the rest with noise): on CPU only
        they are computed, the others are zero; on other devices the whole cube is warped."""
        if index is not None and x.device.type != "cpu":
            x = x.index_select(0, index)
            params = {k: v.index_select(0, index) for k, v in params.items()}
            index = None
        src = list(range(x.shape[0])) if index is None else index.tolist()
        _, c, sx, sy, sz = x.shape
        grid, rows = params.get("grid"), params.get("rows")
        ky = None if rows is None else self._factors(x.shape[2:], x.device)[2]
        per_sample = x.device.type == "cpu"  # see the module docstring
        boxes = None
        if region is not None and per_sample:
            boxes = torch.cat([region[0], region[0] + region[1]], dim=1).tolist()
        out = (torch.zeros if boxes else torch.empty)(
            (len(src), c, sx, sy, sz), dtype=x.dtype, device=x.device
        )
        step = 1 if per_sample else len(src)
        for i in range(0, len(src), step):
            j, s = min(i + step, len(src)), src[i]  # outputs i:j come from x[s : s + j - i]
            x0, y0, z0, x1, y1, z1 = boxes[i] if boxes else (0, 0, 0, sx, sy, sz)
            k, bx, by, bz, t = j - i, x1 - x0, y1 - y0, z1 - z0, s + j - i
            if rows is None:
                part = grid[s:t, z0:z1, x0:x1, y0:y1]
            else:
                part = _expand(rows[s:t, :, z0:z1, x0:x1], ky[:, y0:y1])
            slices = x[s:t, ..., z0:z1].permute(0, 4, 1, 2, 3).reshape(k * bz, c, sx, sy)
            warped = F.grid_sample(
                slices,
                part.to(x.dtype).reshape(k * bz, bx, by, 2),
                mode="bilinear",
                padding_mode="reflection",
                align_corners=False,
            )
            if k == 1 and c == 1 and not boxes:  # a blocked 2-D transpose: 2x a generic copy
                out[i].view(sx * sy, sz).copy_(warped.view(sz, sx * sy).t())
            else:
                dst = out[i:j, :, x0:x1, y0:y1, z0:z1]
                dst.copy_(warped.view(k, bz, c, bx, by).permute(0, 2, 3, 4, 1))
        return out


def _expand(rows: torch.Tensor, ky: torch.Tensor) -> torch.Tensor:
    """The sampling grid ``(N, Z, X, Y, 2)`` from ``rows`` ``(N, 2, Z, X, b + 2)``: one matrix
    product, components first (each z-slice of a component is one contiguous (X, Y) plane,
    which grid_sample reads through the permuted view as fast as an interleaved grid)."""
    n, _, sz, sx, k = rows.shape
    return (rows.reshape(-1, k) @ ky).view(n, 2, sz, sx, -1).permute(0, 2, 3, 4, 1)
