"""Local pixel shuffling: permute the voxels inside small random blocks (Models Genesis).

method.md §3.1/§3.2: block side per axis uniform in ``[1, dim // 10]`` (64 -> 1..6, 32 -> 1..3),
corner uniform in ``[0, dim - side]``; the voxels of each block, read from the *unshuffled*
original, are permuted and written into the output, blocks in order (a later block overwrites an
earlier one where they overlap). Models Genesis uses 10,000 blocks, Semantic Genesis' PyTorch
loader 5.

Vectorised: the voxels of all blocks are listed one after the other (one "slot" each); one sort
by (block, random key) permutes every block's voxels among themselves; "last block wins" is
resolved with a scatter-max of the block number per voxel, so the result is deterministic on
every device.
"""

from __future__ import annotations

import functools
import itertools

import torch

from semantic_genesis.transforms.base import (
    Params,
    Perturbation,
    copy_rows,
    rand,
    randint,
)

_MAX_SLOTS = 1 << 23


@functools.lru_cache(maxsize=8)
def _offset_table_cpu(spatial: tuple[int, ...]) -> tuple[torch.Tensor, tuple[int, ...]]:
    max_side = block_sides(spatial)
    strides = (spatial[1] * spatial[2], spatial[2], 1)
    rows = []
    for bx, by, bz in itertools.product(*(range(1, m + 1) for m in max_side)):
        offs = [
            ox * strides[0] + oy * strides[1] + oz
            for ox in range(bx)
            for oy in range(by)
            for oz in range(bz)
        ]
        rows.append(offs + [0] * (max_side[0] * max_side[1] * max_side[2] - len(offs)))
    return torch.tensor(rows), max_side


def _offset_table(
    spatial: tuple[int, ...], device: torch.device
) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Flat voxel offsets of the voxels of every block shape, in C order: row
    ``((sx - 1) * my + sy - 1) * mz + sz - 1`` lists the ``sx * sy * sz`` offsets (padded)."""
    table, max_side = _offset_table_cpu(tuple(spatial))
    return table.to(device), max_side


def block_sides(spatial: tuple[int, ...]) -> tuple[int, ...]:
    """Largest block side per axis, ``dim // 10`` (at least 1)."""
    return tuple(max(1, d // 10) for d in spatial)


class LocalPixelShuffle(Perturbation):
    """Shuffle the voxels inside ``n_blocks`` random small blocks.

    Args:
        n_blocks: blocks per sample (5 for Semantic Genesis, 10,000 for Models Genesis).
        prob: probability per sample (MG: 0.5).

    Params: ``corner`` and ``size`` ``(N, n_blocks, 3)``.
    """

    name = "local-shuffle"

    def __init__(self, n_blocks: int = 5, prob: float = 1.0) -> None:
        super().__init__(prob)
        self.n_blocks = n_blocks

    def sample(self, x: torch.Tensor, generator: torch.Generator | None) -> Params:
        n, dev = x.shape[0], x.device
        spatial = torch.tensor(x.shape[2:], device=dev)
        shape = (n, self.n_blocks, 3)
        size = randint(1, torch.tensor(block_sides(x.shape[2:]), device=dev), shape, generator, dev)
        corner = randint(0, spatial - size, shape, generator, dev)
        return {"corner": corner, "size": size}

    def apply(
        self, x: torch.Tensor, params: Params, generator: torch.Generator | None
    ) -> torch.Tensor:
        out = x.clone()
        self._shuffle_rows(out, torch.arange(x.shape[0], device=x.device), params, generator)
        return out

    def apply_in_rows(
        self,
        src: torch.Tensor,
        out: torch.Tensor,
        rows: list[int],
        params: Params,
        generator: torch.Generator | None,
    ) -> bool:
        """The blocks shuffled where the rows are (``src`` may be ``out``)."""
        copy_rows(src, out, rows)
        self._shuffle_rows(out, torch.tensor(rows), params, generator)
        return True

    def _shuffle_rows(
        self, x: torch.Tensor, rows: torch.Tensor, params: Params, generator: torch.Generator | None
    ) -> None:
        """Shuffle, in place, the blocks of sample ``rows[j]`` of the contiguous ``x`` with row
        ``j`` of ``params``; a few samples at a time, to bound the per-voxel-slot tensors
        (~60 bytes per slot)."""
        slots_per_sample = max(1, int(params["size"].prod(-1).sum(-1).max()))
        step = max(1, _MAX_SLOTS // slots_per_sample)
        for i in range(0, len(rows), step):
            part = {k: v[i : i + step] for k, v in params.items()}
            self._shuffle_chunk(x, rows[i : i + step], part, generator)

    def _shuffle_chunk(
        self, x: torch.Tensor, rows: torch.Tensor, params: Params, generator: torch.Generator | None
    ) -> None:
        _, c, sx, sy, sz = x.shape
        dev, voxels, n = x.device, sx * sy * sz, len(rows)
        corner = params["corner"].reshape(-1, 3)
        size = params["size"].reshape(-1, 3)
        n_blocks = params["corner"].shape[1]
        # one slot per voxel of every block, blocks one after the other (sample-major, in order);
        # a slot's voxel = its block's first voxel + an offset looked up by (block shape, rank)
        table, max_side = _offset_table((sx, sy, sz), dev)
        volume = size.prod(-1)
        shape_id = ((size[:, 0] - 1) * max_side[1] + size[:, 1] - 1) * max_side[2] + size[:, 2] - 1
        n_slots = int(volume.sum())
        sample = torch.arange(len(volume), device=dev).div(n_blocks, rounding_mode="floor")
        first = corner[:, 0] * (sy * sz) + corner[:, 1] * sz + corner[:, 2]
        lookup = shape_id * table.shape[1] - (volume.cumsum(0) - volume)
        block = torch.repeat_interleave(
            torch.arange(len(volume), device=dev), volume, output_size=n_slots
        )
        slot = torch.arange(n_slots, device=dev)
        # the slot's voxel within its sample, and the chunk-local (sample, voxel) number
        voxel = first[block] + table.view(-1)[lookup[block] + slot]
        target = sample[block] * voxels + voxel
        # a random permutation inside each block: sort by (block, random key); the blocks'
        # slot ranges stay where they are, their contents are shuffled
        keys = rand((len(block),), generator, dev).double() + block
        order = keys.argsort()
        # the last block covering a voxel wins, as in the reference's sequential loop
        owner = torch.empty(n * voxels, dtype=torch.long, device=dev)  # only targets are read
        owner.index_fill_(0, target, -1).scatter_reduce_(0, target, block, "amax")
        keep = owner[target] == block
        # gathered before anything is written: the values come from the unshuffled sample
        where = rows[sample[block]] * voxels + voxel  # (sample, voxel) in x
        dst, from_ = where[keep], where[order][keep]
        if c == 1:
            view = x.view(-1)
            view[dst] = view[from_]
        else:  # no flat (C, N * voxels) view exists: index the (N, C, voxels) one
            xv = x.view(x.shape[0], c, voxels)
            xv[dst // voxels, :, dst % voxels] = xv[from_ // voxels, :, from_ % voxels]
