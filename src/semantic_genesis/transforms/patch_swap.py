"""Context restoration (Chen et al., Medical Image Analysis 2019): swap pairs of patches.

The "Patch Shuffling" / context restoration baseline of the Semantic Genesis study (method
``context-restoration``, method.md §3.4): pick two disjoint patches of the same size at random
and exchange their contents, ``n_swaps`` times in a row (Chen's T); the network learns to put
them back. The papers do not record the baseline's patch size or count; we use patches of
``dim // 8`` voxels per axis (8 x 8 x 4 for a 64 x 64 x 32 cube) and 10 swaps.
"""

from __future__ import annotations

import torch

from semantic_genesis.transforms.base import Params, Perturbation, randint


class PatchSwap(Perturbation):
    """Swap ``n_swaps`` pairs of disjoint ``dim // patch_divisor`` patches.

    Args:
        n_swaps: swaps per sample, applied in order.
        patch_divisor: patch side per axis is ``dim // patch_divisor``.
        tries: candidate partners drawn per swap; if none is disjoint from the first patch the
            swap is skipped (``swapped`` false).
        prob: probability per sample.

    Params: ``first``, ``second`` ``(N, n_swaps, 3)`` patch corners, ``swapped`` ``(N, n_swaps)``.
    """

    name = "patch-swap"

    def __init__(
        self, n_swaps: int = 10, patch_divisor: int = 8, tries: int = 8, prob: float = 1.0
    ) -> None:
        super().__init__(prob)
        self.n_swaps = n_swaps
        self.patch_divisor = patch_divisor
        self.tries = tries

    def patch(self, spatial: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(max(1, d // self.patch_divisor) for d in spatial)

    def sample(self, x: torch.Tensor, generator: torch.Generator | None) -> Params:
        n, dev = x.shape[0], x.device
        side = torch.tensor(self.patch(x.shape[2:]), device=dev)
        high = torch.tensor(x.shape[2:], device=dev) - side
        first = randint(0, high, (n, self.n_swaps, 3), generator, dev)
        cand = randint(0, high, (n, self.n_swaps, self.tries, 3), generator, dev)
        disjoint = ((cand - first[:, :, None]).abs() >= side).any(-1)  # (N, S, T)
        pick = disjoint.long().argmax(-1)  # first disjoint candidate (0 if none)
        second = cand.gather(2, pick[..., None, None].expand(-1, -1, 1, 3)).squeeze(2)
        swapped = disjoint.any(-1)
        second = torch.where(swapped[..., None], second, first)
        return {"first": first, "second": second, "swapped": swapped}

    def apply(
        self, x: torch.Tensor, params: Params, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        n, c = x.shape[:2]
        spatial = x.shape[2:]
        voxels = spatial[0] * spatial[1] * spatial[2]
        grids = torch.meshgrid(
            *(torch.arange(s, device=x.device) for s in self.patch(spatial)), indexing="ij"
        )
        offset = torch.stack([g.reshape(-1) for g in grids], -1)  # (P, 3)
        strides = torch.tensor([spatial[1] * spatial[2], spatial[2], 1], device=x.device)
        base = torch.arange(n, device=x.device)[:, None] * voxels
        out = x.reshape(n, c, voxels).transpose(1, 2).reshape(n * voxels, c).clone()
        for s in range(params["first"].shape[1]):
            a = base + ((params["first"][:, s, None] + offset) * strides).sum(-1)
            b = base + ((params["second"][:, s, None] + offset) * strides).sum(-1)
            a, b = a.reshape(-1), b.reshape(-1)
            out[a], out[b] = out[b], out[a].clone()
        return out.reshape(n, voxels, c).transpose(1, 2).reshape(x.shape)
