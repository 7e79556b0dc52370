"""Random flips (Models Genesis), applied to the input *and* the restoration target.

method.md §3.1: ``while random() < flip_rate (0.4) and at most 3 times: flip a random axis``.
Flipping an axis twice undoes it, so each sample ends up flipped along the axes drawn an odd
number of times. (The reference draws the axis from (0, 1, 2) of a channel-first cube, so it
never flips depth and sometimes "flips" the single channel; following method.md we draw among
the three spatial axes.)
"""

from __future__ import annotations

import torch

from semantic_genesis.transforms.base import Params, Perturbation, continuation, rand


class Flip(Perturbation):
    """Flip along random spatial axes, up to ``max_flips`` times with continuation ``flip_rate``.

    Params: ``n_flips`` ``(N,)`` and ``axes`` ``(N, 3)`` bool (axes flipped an odd number of
    times). Use :meth:`apply` with the same params to flip the target identically.
    """

    name = "flip"

    def __init__(self, flip_rate: float = 0.4, max_flips: int = 3, prob: float = 1.0) -> None:
        super().__init__(prob)
        self.flip_rate = flip_rate
        self.max_flips = max_flips

    def sample(self, x: torch.Tensor, generator: torch.Generator | None) -> Params:
        n, dev = x.shape[0], x.device
        done = continuation(n, self.max_flips, self.flip_rate, False, generator, dev)
        axis = (rand((n, self.max_flips), generator, dev) * 3).long().clamp_(max=2)
        hits = torch.nn.functional.one_hot(axis, 3) * done[..., None]
        return {"n_flips": done.sum(1), "axes": hits.sum(1) % 2 == 1}

    def apply(
        self, x: torch.Tensor, params: Params, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        axes = params["axes"]
        code = axes[:, 0] * 1 + axes[:, 1] * 2 + axes[:, 2] * 4
        out = x.clone()
        for value in code.unique().tolist():
            if value == 0:
                continue
            idx = (code == value).nonzero().squeeze(1)
            dims = [2 + a for a in range(3) if value >> a & 1]
            out[idx] = x[idx].flip(dims)
        return out
