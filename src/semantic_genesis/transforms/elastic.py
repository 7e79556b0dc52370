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

The field is kept compact, as ``field`` ``(N, 2, c, X, Y)``: the noise already contracted over
x and y, so that ``d[k, x, y, z] = sum_j field[k, j, x, y] Az[z, j]`` (component 0 along Y,
1 along X, in voxels; ``c`` is 6 for 32 slices), about a third of the size of the displacement.

On CPU (float32, a CPU with AVX2) every cube is warped by a compiled kernel (``csrc/warp.c``
via ``native.py``): it expands the field in registers, reflects, and reads the cube with
bilinear interpolation, writing nothing but the output (about 0.55 ms per 64 x 64 x 32 cube on
one core of this project's CI machine, against about 1.2 ms with grid_sample). Elsewhere (CUDA,
other dtypes, no AVX2, an install without a C compiler, or ``SEMGEN_NATIVE=0``) the field is
expanded into grid_sample's sampling grid and the cube is resampled slice by slice with 2-D
``grid_sample`` (bilinear, reflection padding, ``align_corners=False`` = scipy's
half-sample-symmetric "reflect"), which equals the reference's ``order=1`` interpolation
because z stays on the grid: on CUDA the whole batch at once, on CPU one cube at a time, in
float64 (the grid, 16 bytes per voxel, stays in cache). The kernel sums the displacement in
float32 and places each point to within about 2e-6 voxels per axis; float64 keeps the CPU
fallback's own error far below that (grid_sample's float32 normalised coordinates would add
about 5e-6), so the two give the same cube to within 5e-6 on [0, 1] data
(tests/transforms/test_native.py, test_streams.py); ``benchmarks/bench_transforms.py`` times
both.

``index`` lets a caller warp some samples of a batch without copying them, or their fields,
out first. :meth:`ElasticDeform.apply` can be told that only a box of each cube will be read
(the sg preset does so for out-painting, which keeps one box of about an eighth of the cube and
replaces the rest with noise) and then, on CPU, warps only that box.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from semantic_genesis.transforms import native
from semantic_genesis.transforms.base import Params, Perturbation, put_rows, rand

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


class _Factors(NamedTuple):
    """The per-axis matrices of one cube shape on one device (see the module docstring)."""

    ax: torch.Tensor  # (X, a): the field's x factor
    ayt: torch.Tensor  # (b, Y): its y factor, transposed
    azt: torch.Tensor  # (c, Z): its z factor, transposed (what the kernel reads)
    azs: torch.Tensor  # (2, Z, c): the z factor scaled to grid units, per component
    pos: torch.Tensor  # (2, X, Y): the identity grid, grid units (columns, rows)


class ElasticDeform(Perturbation):
    """Smooth random in-plane displacement of every voxel (reference alpha 991, sigma 8).

    Args:
        alpha: displacement scale (991).
        sigma: Gaussian smoothing in voxels (8).
        field: ``"lowrank"`` (fast, same distribution) or ``"exact"`` (the reference's noise and
            filter); see the module docstring.
        prob: probability per sample (the reference warps every input).

    Params: :meth:`sample` gives ``grid`` ``(N, Z, X, Y, 2)``, grid_sample's normalised sampling
    grid for the slices; :meth:`forward` gives the compact ``field`` ``(N, 2, c, X, Y)`` (see
    the module docstring). :meth:`apply` takes either; :meth:`grid` turns ``field`` into
    ``grid``, :meth:`displacement` either into voxels.
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
        self._matrices: dict[tuple, _Factors] = {}

    def _factors(self, spatial: tuple[int, ...], device: torch.device) -> _Factors:
        key = (tuple(spatial), str(device))
        if key not in self._matrices:
            sx, sy, _ = spatial
            make = lowrank_factor if self.field == "lowrank" else gaussian_matrix
            ax, ay, az = (make(n, float(self.sigma)) for n in spatial)
            # grid_sample's normalised pixel centres (align_corners=False), and voxels -> units
            cols = (np.arange(sy) * 2 + 1) / sy - 1
            rows = (np.arange(sx) * 2 + 1) / sx - 1
            pos = np.stack(
                [np.broadcast_to(cols, (sx, sy)), np.broadcast_to(rows[:, None], (sx, sy))]
            )
            azs = np.stack([az * 2.0 / sy, az * 2.0 / sx])

            def t(m: np.ndarray) -> torch.Tensor:
                return torch.tensor(np.ascontiguousarray(m), dtype=torch.float32, device=device)

            self._matrices[key] = _Factors(t(ax), t(ay.T), t(az.T), t(azs), t(pos))
        return self._matrices[key]

    def sample(
        self, x: torch.Tensor, generator: torch.Generator | None, compact: bool = False
    ) -> Params:
        """Draw the field: ``{"grid": ...}``, or ``{"field": ...}`` if ``compact``."""
        field = {"field": self._field(x, generator)}
        return field if compact else {"grid": self.grid(field, x.shape[2:])}

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, Params]:
        """Warp the batch, keeping the field compact (see the class docstring)."""
        if self.prob < 1.0 or x.ndim != 5:
            return super().forward(x, generator)
        params = self.sample(x, generator, compact=True)
        out = self.apply(x, params)
        params["active"] = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        return out, params

    def _field(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """The displacement contracted over x and y: ``(N, 2, c, X, Y)``, in voxels."""
        n, dev = x.shape[0], x.device
        f = self._factors(x.shape[2:], dev)
        shape = (n, 2, f.azt.shape[0], f.ax.shape[1], f.ayt.shape[0])
        if self.field == "lowrank":
            gen_dev = generator.device if generator is not None else torch.device("cpu")
            noise = torch.randn(shape, generator=generator, device=gen_dev).to(dev)
            noise *= self.alpha / np.sqrt(3.0)
        else:
            noise = (rand(shape, generator, dev) * 2 - 1) * self.alpha
        return f.ax @ (noise @ f.ayt)  # y first: half the work of (ax @ noise) @ ayt

    def grid(
        self,
        params: Params,
        spatial: tuple[int, ...],
        box: tuple[int, int, int, int, int, int] | None = None,
    ) -> torch.Tensor:
        """The normalised sampling grid ``(N, Z, X, Y, 2)`` of ``params``: ``grid`` as it is, or
        ``field`` expanded for cubes of shape ``spatial`` (X, Y, Z); ``box`` (x0, y0, z0, x1,
        y1, z1) expands only that part."""
        if "grid" in params:
            return params["grid"]
        if len(spatial) != 3:
            raise ValueError("'field' params need the cube's spatial shape (X, Y, Z)")
        field = params["field"]
        f = self._factors(tuple(spatial), field.device)
        x0, y0, z0, x1, y1, z1 = box or (0, 0, 0, *spatial)
        n, _, c = field.shape[:3]
        part = field[..., x0:x1, y0:y1].reshape(n, 2, c, -1)
        azs, pos = f.azs[:, z0:z1].to(field.dtype), f.pos[:, x0:x1, y0:y1].to(field.dtype)
        grid = torch.matmul(azs, part)  # (N, 2, z, x * y), components first
        grid += pos[:, None].reshape(2, 1, -1)
        return grid.view(n, 2, z1 - z0, x1 - x0, y1 - y0).permute(0, 2, 3, 4, 1)

    def displacement(self, params: Params, spatial: tuple[int, ...] = ()) -> torch.Tensor:
        """The sampled displacement in voxels, ``(N, 2, X, Y, Z)``: ``[:, 0]`` along X (rows),
        ``[:, 1]`` along Y (columns); ``spatial`` (X, Y, Z) is needed for ``field`` params."""
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
        """Warp ``x`` with ``params`` (``grid`` or ``field``, one per sample of ``x``).

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
        boxes = _boxes(region) if x.device.type == "cpu" else None
        out = (torch.zeros if boxes else torch.empty)(
            (len(src), *x.shape[1:]), dtype=x.dtype, device=x.device
        )
        if self._kernel_takes(x, out, params):
            self._warp_kernel(x, out, params, src, boxes)
        else:
            self._resample(x, out, params, src, boxes, per_sample=x.device.type == "cpu")
        return out

    def warp_rows(
        self,
        x: torch.Tensor,
        out: torch.Tensor,
        rows: torch.Tensor,
        params: Params,
        region: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        """``out[rows] = apply(x, params, region=region, index=rows)`` (``out`` another batch
        shaped like ``x``): on CPU the kernel writes the rows where they are, and with
        ``region`` leaves the rest of them as it was (instead of 0)."""
        if out is x:
            raise ValueError("warp_rows: out must not be x (a cube is read while it is written)")
        if self._kernel_takes(x, out, params):
            index = rows.tolist()
            self._warp_kernel(x, out, params, index, _boxes(region), dest=index)
        else:
            put_rows(out, rows, self.apply(x, params, region=region, index=rows))

    @staticmethod
    def _kernel_takes(x: torch.Tensor, out: torch.Tensor, params: Params) -> bool:
        """Whether the compiled kernel warps ``x`` into ``out`` (see the module docstring)."""
        return "field" in params and native.warps(x) and out.is_contiguous()

    def _warp_kernel(
        self,
        x: torch.Tensor,
        out: torch.Tensor,
        params: Params,
        src: list[int],
        boxes: list[list[int]] | None,
        dest: list[int] | None = None,
    ) -> None:
        azt = self._factors(tuple(x.shape[2:]), x.device).azt
        native.warp_batch(x, out, params["field"], azt, src, boxes, dest=dest)

    def _resample(
        self,
        x: torch.Tensor,
        out: torch.Tensor,
        params: Params,
        src: list[int],
        boxes: list[list[int]] | None,
        per_sample: bool,
    ) -> None:
        """``apply`` with grid_sample, one cube at a time (CPU) or the whole batch at once
        (``per_sample=False``: other devices, where ``src`` is ``0 .. N - 1`` and ``boxes``
        is None)."""
        _, c, sx, sy, sz = x.shape
        step = 1 if per_sample else len(src)
        # on CPU, float32 cubes are resampled in float64 (one cube at a time, so the copies
        # stay small): grid_sample's float32 arithmetic on normalised coordinates misplaces a
        # point by up to ~5e-6 voxels, twice the kernel's error, and the two paths should give
        # the same batch (native.py)
        work = torch.float64 if per_sample and x.dtype == torch.float32 else x.dtype
        for i in range(0, len(src), step):
            j, s = min(i + step, len(src)), src[i]  # outputs i:j come from x[s : s + j - i]
            x0, y0, z0, x1, y1, z1 = boxes[i] if boxes else (0, 0, 0, sx, sy, sz)
            k, bx, by, bz, t = j - i, x1 - x0, y1 - y0, z1 - z0, s + j - i
            if "grid" in params:
                part = params["grid"][s:t, z0:z1, x0:x1, y0:y1]
            else:
                field = params["field"][s:t].to(work)
                part = self.grid({"field": field}, (sx, sy, sz), (x0, y0, z0, x1, y1, z1))
            slices = x[s:t, ..., z0:z1].permute(0, 4, 1, 2, 3).reshape(k * bz, c, sx, sy)
            warped = F.grid_sample(
                slices.to(work),
                part.to(work).reshape(k * bz, bx, by, 2),
                mode="bilinear",
                padding_mode="reflection",
                align_corners=False,
            )
            if k == 1 and c == 1 and not boxes:  # a blocked 2-D transpose: 2x a generic copy
                out[i].view(sx * sy, sz).copy_(warped.view(sz, sx * sy).t())
            else:
                dst = out[i:j, :, x0:x1, y0:y1, z0:z1]
                dst.copy_(warped.view(k, bz, c, bx, by).permute(0, 2, 3, 4, 1))


def _boxes(region: tuple[torch.Tensor, torch.Tensor] | None) -> list[list[int]] | None:
    """``(corner, size)`` as one ``[x0, y0, z0, x1, y1, z1]`` list per sample, or None."""
    if region is None:
        return None
    return torch.cat([region[0], region[0] + region[1]], dim=1).tolist()
