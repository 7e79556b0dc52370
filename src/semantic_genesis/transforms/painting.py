"""The painting fill: bulk U[0, 1) noise, reproducible from a generator, and noise painted
into or around boxes (in-painting, out-painting; method.md §3.1), on CPU box by box, elsewhere
through a voxel mask."""

from __future__ import annotations

import numpy as np
import torch

from semantic_genesis.transforms import native
from semantic_genesis.transforms.base import Params, box_mask, rand


def fill_noise(
    x: torch.Tensor, where: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """A copy of ``x`` with uniform U[0, 1) noise, one value per voxel, where ``where`` (a mask
    broadcasting to ``x``) is true; only as many random numbers as voxels filled are drawn."""
    where = where.expand_as(x)
    count = int(torch.count_nonzero(where))
    out = x.clone()
    out.masked_scatter_(where, uniform_noise((count,), generator, x.device, x.dtype))
    return out


def box_regions(params: Params) -> list[list[tuple[slice, ...]]]:
    """The enabled boxes of ``params`` (``corner``, ``size``, ``enabled``) as index tuples,
    one list per sample: ``x[i][region]`` is box b of sample i (all channels)."""
    corners = params["corner"].tolist()
    sizes = params["size"].tolist()
    regions = []
    for corner, size, enabled in zip(corners, sizes, params["enabled"].tolist(), strict=True):
        regions.append(
            [
                (slice(None), *(slice(c, c + s) for c, s in zip(cs, ss, strict=True)))
                for cs, ss, on in zip(corner, size, enabled, strict=True)
                if on
            ]
        )
    return regions


def paint_boxes(
    x: torch.Tensor, params: Params, generator: torch.Generator | None, keep: bool
) -> torch.Tensor:
    """Noise painting by boxes, as the reference loops over its boxes.

    ``keep=False`` (in-painting): a copy of ``x`` whose boxes are U[0, 1) noise, each box
    filled in turn with fresh noise (where boxes overlap, the later one's). ``keep=True``
    (out-painting): a U[0, 1) noise cube with the boxes of ``x`` copied back, so the union of
    the boxes shows the original.

    On CPU the boxes are slices (no voxel mask, noise only where it lands; :func:`paint_rows`);
    on other devices a mask of the boxes selects the voxels in one batched pass.
    """
    if x.device.type != "cpu":
        mask = box_mask(params["corner"], params["size"], params["enabled"], x.shape[2:])
        return fill_noise(x, ~mask if keep else mask, generator)
    out = torch.empty_like(x) if keep else x.clone()
    paint_rows(x, out, list(range(x.shape[0])), params, generator, keep)
    return out


def paint_rows(
    src: torch.Tensor,
    out: torch.Tensor,
    rows: list[int],
    params: Params,
    generator: torch.Generator | None,
    keep: bool,
) -> None:
    """:func:`paint_boxes` on CPU, sample by sample: ``out[rows[j]]`` is ``src[rows[j]]``
    painted with row ``j`` of ``params``. ``out`` may be ``src`` (in place); with
    ``keep=False`` the rows of ``out`` must already hold the rows of ``src``."""
    regions = box_regions(params)
    if keep:
        kept = [[src[r][box] for box in boxes] for r, boxes in zip(rows, regions, strict=True)]
        if src is out:
            kept = [[v.clone() for v in vals] for vals in kept]
        noise_fill_([out[r] for r in rows], generator)
        for r, boxes, vals in zip(rows, regions, kept, strict=True):
            for box, v in zip(boxes, vals, strict=True):
                out[r][box] = v
        return
    noise_fill_(
        [out[r][box] for r, boxes in zip(rows, regions, strict=True) for box in boxes], generator
    )


def noise_fill_(targets: list[torch.Tensor], generator: torch.Generator | None) -> None:
    """Fill the tensors ``targets`` (views of one device and dtype) with U[0, 1) noise, in turn
    (where they overlap, the later one's), from one draw of ``generator``.

    On CPU the targets take consecutive stretches of one noise stream (``native.py``): with the
    compiled kernels and contiguous targets, written straight into each; else one bulk stretch
    copied into them. Both give the same values. Elsewhere one bulk ``torch.rand`` draw."""
    if not targets:
        return
    first = targets[0]
    if native.usable(first) and all(t.is_contiguous() for t in targets):
        seed, start = draw_seed(generator), 0
        for t in targets:
            native.uniform(t.numel(), seed, out=t, offset=start)
            start += t.numel()
        return
    noise = uniform_noise((sum(t.numel() for t in targets),), generator, first.device, first.dtype)
    start = 0
    for t in targets:
        t.copy_(noise[start : start + t.numel()].view(t.shape))
        start += t.numel()


def draw_seed(generator: torch.Generator | None) -> int:
    """One 63-bit seed drawn from ``generator`` (for the bulk noise streams)."""
    gen_device = generator.device if generator is not None else torch.device("cpu")
    return int(torch.randint(0, 2**63 - 1, (1,), generator=generator, device=gen_device))


def uniform_noise(
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    device: torch.device | str,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Bulk U[0, 1) noise (the painting fill), reproducible from ``generator``.

    On CPU, the start of the noise stream (``native.noise``) of one 63-bit seed drawn from
    ``generator``: values ``k / 2**23``, ``k`` uniform in ``[0, 2**23)``, computed by the
    compiled kernel or, without it, the same values by numpy: per 64 x 64 x 32 cube about
    0.035 and 0.09 ms on one core of this project's CI machine, where numpy's SFC64 draw that
    the numpy path replaced took 0.10 ms (the ``noise`` row of
    ``benchmarks/bench_transforms.py``). The painting fill is the largest bulk draw of the
    sg/mg presets. Elsewhere ``torch.rand`` on the device (``native.kernel_status`` names the
    stream)."""
    if torch.device(device).type != "cpu":
        return rand(shape, generator, device).to(dtype)
    seed = draw_seed(generator)
    return native.noise(int(np.prod(shape)), seed).view(shape).to(dtype)
