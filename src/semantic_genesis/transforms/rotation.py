"""Rotation pretext (Gidaris et al. 2018, the "Rotation" baseline of TransVW's add-on study).

A 64 x 64 x 32 cube is mapped onto itself only by the rotations of a square prism: the dihedral
group D4 of order 8 = four quarter turns about the depth axis z, each optionally followed by a
half turn about the x axis (which reverses y and z). Class k in 0..7: ``k % 4`` quarter turns in
the (x, y) plane, plus the half turn about x when ``k >= 4``. All 8 are proper rotations (no
mirror images), so the task cannot be solved by chirality alone. Needs X == Y.
"""

from __future__ import annotations

import torch

from semantic_genesis.transforms.base import Params, Perturbation, rand

N_ROTATIONS = 8


def rotate(x: torch.Tensor, k: int) -> torch.Tensor:
    """Rotation number ``k`` (0..7) of a batch ``(N, C, X, Y, Z)``."""
    out = torch.rot90(x, k % 4, dims=(2, 3))
    return out.flip((3, 4)) if k >= 4 else out


class Rotation(Perturbation):
    """Rotate each sample by one of the 8 rotations that map a square prism onto itself.

    Params: ``k`` ``(N,)`` the rotation index (the class for the rotation pretext).
    """

    name = "rotation"
    n_classes = N_ROTATIONS

    def sample(self, x: torch.Tensor, generator: torch.Generator | None) -> Params:
        if x.shape[2] != x.shape[3]:
            raise ValueError(f"rotation needs a square in-plane size (X == Y), got {x.shape[2:]}")
        k = (rand((x.shape[0],), generator, x.device) * N_ROTATIONS).long()
        return {"k": k.clamp_(max=N_ROTATIONS - 1)}

    def apply(
        self, x: torch.Tensor, params: Params, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        k = params["k"]
        out = torch.empty_like(x)
        for value in k.unique().tolist():
            idx = (k == value).nonzero().squeeze(1)
            out[idx] = rotate(x[idx], value)
        return out
