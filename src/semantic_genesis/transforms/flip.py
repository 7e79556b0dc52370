"""Random flips (Models Genesis), applied to the input *and* the restoration target.

method.md §3.1: ``while random() < flip_rate (0.4) and at most 3 times: flip a random axis``.
Flipping an axis twice undoes it, so each sample ends up flipped along the axes drawn an odd
number of times.

The reference draws the axis from (0, 1, 2) of a channel-first ``(1, X, Y, Z)`` cube, so a third
of its flips "flip" the single channel (a no-op) and it never flips depth. ``choices`` says what
a flip draws among: spatial axes 0, 1, 2 (x, y, z) and None for the channel's no-op; the default
is the three spatial axes, and the ``mg`` preset passes :data:`MG_FLIP_CHOICES`, the
reference's (method.md §3.1).
"""

from __future__ import annotations

import torch

from semantic_genesis.transforms.base import Params, Perturbation, continuation, rand

#: what a Models Genesis flip draws among: the channel (a no-op), x, y; never depth (§3.1)
MG_FLIP_CHOICES: tuple[int | None, ...] = (None, 0, 1)


class Flip(Perturbation):
    """Flip along random spatial axes, up to ``max_flips`` times with continuation ``flip_rate``.

    Params: ``n_flips`` ``(N,)`` and ``axes`` ``(N, 3)`` bool (axes flipped an odd number of
    times). Use :meth:`apply` with the same params to flip the target identically.
    """

    name = "flip"

    def __init__(self, flip_rate: float = 0.4, max_flips: int = 3, prob: float = 1.0,
                 choices: tuple[int | None, ...] = (0, 1, 2)) -> None:
        super().__init__(prob)
        if not choices or any(c not in (None, 0, 1, 2) for c in choices):
            raise ValueError(f"flip choices must be spatial axes 0, 1, 2 or None, got {choices}")
        self.flip_rate = flip_rate
        self.max_flips = max_flips
        self.choices = tuple(choices)

    def sample(self, x: torch.Tensor, generator: torch.Generator | None) -> Params:
        n, dev = x.shape[0], x.device
        k = len(self.choices)
        done = continuation(n, self.max_flips, self.flip_rate, False, generator, dev)
        pick = (rand((n, self.max_flips), generator, dev) * k).long().clamp_(max=k - 1)
        table = torch.zeros(k, 3, dtype=torch.long, device=dev)  # one row per choice
        for row, axis in enumerate(self.choices):
            if axis is not None:
                table[row, axis] = 1
        hits = table[pick] * done[..., None]
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
