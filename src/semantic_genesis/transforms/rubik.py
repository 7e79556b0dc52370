"""Rubik's cube (Zhuang et al., MICCAI 2019), in place inside one cube (method.md §3.4).

The cube is cut into its 2 x 2 x 2 sub-cubes (octants; each axis must be even). Sub-cube ``i``
is the octant at ``(i // 4, i // 2 % 2, i % 2)`` along (x, y, z). The perturbation

1. **rearranges** them: the octant at position ``j`` receives sub-cube ``perm[j]``, where
   ``perm`` is one of ``K`` permutations of the 8 chosen for a large Hamming distance between
   any two (:func:`hamming_permutations`; Zhuang, after Noroozi & Favaro 2016, classify
   among K permutations chosen by maximal Hamming distance);
2. **rotates** each by 180 degrees "horizontally" (about the depth axis z: x and y reversed)
   and / or "vertically" (about x: y and z reversed), each with probability 0.5 (Zhuang's two
   binary flags per sub-cube); a 180-degree turn maps any box onto itself, and both together
   are the half turn about y, so the four states are distinct proper rotations;
3. blanks a **gap** around the internal faces with the cube's mean (``dim // gap_divisor``
   voxels each side; Zhuang leave about 10 voxels between sub-cubes so that the network cannot
   match them by the texture at their borders); ``gap_divisor = 0`` keeps the faces.

Params: ``perm`` ``(N,)`` the permutation's class in ``0..K-1``, ``flips`` ``(N, 2, 8)``
bools (``[:, 0]`` horizontal, ``[:, 1]`` vertical, indexed by *position* after the
rearrangement, as Zhuang's flags follow the order of the shuffled sub-cubes).
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import torch

from semantic_genesis.transforms.base import Params, Perturbation, rand

N_SUBCUBES = 8
#: K: permutation classes (Zhuang's K; 100 here, method.md §3.4).
N_PERMUTATIONS = 100
#: (dims reversed by the horizontal turn, by the vertical turn), in a (N, 8, C, x, y, z) view.
TURN_DIMS = ((3, 4), (4, 5))


@functools.lru_cache(maxsize=8)
def hamming_permutations(k: int = N_PERMUTATIONS) -> torch.Tensor:
    """``(k, 8)`` permutations of the sub-cubes, chosen greedily for the largest *minimum*
    Hamming distance to those already chosen (first the identity; ties go to the first in
    lexicographic order), so any two classes differ in as many positions as the greedy
    choice allows. Deterministic: the same table in every run and version."""
    if not 1 <= k <= 40320:
        raise ValueError(f"the number of permutations must be in [1, 8!], got {k}")
    every = np.array(list(itertools.permutations(range(N_SUBCUBES))), dtype=np.int8)
    chosen = [0]
    nearest = (every != every[0]).sum(1)
    for _ in range(k - 1):
        pick = int(nearest.argmax())
        chosen.append(pick)
        nearest = np.minimum(nearest, (every != every[pick]).sum(1))
    return torch.from_numpy(every[chosen].astype(np.int64))


def split(x: torch.Tensor) -> torch.Tensor:
    """``(N, C, X, Y, Z)`` -> the sub-cubes ``(N, 8, C, X/2, Y/2, Z/2)`` in octant order."""
    n, c, sx, sy, sz = x.shape
    view = x.reshape(n, c, 2, sx // 2, 2, sy // 2, 2, sz // 2)
    return view.permute(0, 2, 4, 6, 1, 3, 5, 7).reshape(n, N_SUBCUBES, c, sx // 2, sy // 2,
                                                         sz // 2)


def join(parts: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`split`."""
    n, _, c, hx, hy, hz = parts.shape
    view = parts.reshape(n, 2, 2, 2, c, hx, hy, hz).permute(0, 4, 1, 5, 2, 6, 3, 7)
    return view.reshape(n, c, 2 * hx, 2 * hy, 2 * hz)


def turn(parts: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Each sub-cube of ``parts`` ``(N, 8, C, x, y, z)`` turned by 180 degrees as ``flips``
    ``(N, 2, 8)`` says (its own inverse)."""
    for axis, dims in enumerate(TURN_DIMS):
        where = flips[:, axis].reshape(flips.shape[0], N_SUBCUBES, 1, 1, 1, 1)
        parts = torch.where(where, parts.flip(dims), parts)
    return parts


class RubiksCube(Perturbation):
    """Rearrange and turn the 8 sub-cubes (see the module doc).

    Args:
        n_permutations: K, the permutation classes.
        gap_divisor: blank ``dim // gap_divisor`` voxels each side of the internal faces
            (0: no gap).
        turn_prob: probability of each turn flag.
        prob: probability per sample.
    """

    name = "rubiks-cube"

    def __init__(
        self,
        n_permutations: int = N_PERMUTATIONS,
        gap_divisor: int = 16,
        turn_prob: float = 0.5,
        prob: float = 1.0,
    ) -> None:
        super().__init__(prob)
        if gap_divisor < 0:
            raise ValueError(f"gap_divisor must be >= 0, got {gap_divisor}")
        self.permutations = hamming_permutations(n_permutations)
        self.n_permutations = n_permutations
        self.gap_divisor = gap_divisor
        self.turn_prob = turn_prob

    def sample(self, x: torch.Tensor, generator: torch.Generator | None) -> Params:
        if any(d % 2 for d in x.shape[2:]):
            raise ValueError(f"Rubik's cube needs an even size on every axis, got "
                             f"{tuple(x.shape[2:])}")
        n = x.shape[0]
        perm = (rand((n,), generator, x.device) * self.n_permutations).long()
        flips = rand((n, 2, N_SUBCUBES), generator, x.device) < self.turn_prob
        return {"perm": perm.clamp_(max=self.n_permutations - 1), "flips": flips}

    def scramble(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        """Rearranged and turned, without the gap."""
        order = self.permutations.to(x.device)[params["perm"]]  # (N, 8): position -> sub-cube
        parts = split(x)
        moved = parts.gather(1, order.reshape(*order.shape, 1, 1, 1, 1).expand_as(parts))
        return join(turn(moved, params["flips"]))

    def unscramble(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        """The inverse of :meth:`scramble`: every sub-cube turned back and returned to its
        place."""
        order = self.permutations.to(x.device)[params["perm"]]
        parts = turn(split(x), params["flips"])
        back = torch.empty_like(parts)
        back.scatter_(1, order.reshape(*order.shape, 1, 1, 1, 1).expand_as(parts), parts)
        return join(back)

    def gap_mask(self, spatial: tuple[int, ...], device: torch.device) -> torch.Tensor | None:
        """``(X, Y, Z)`` bools: the voxels within the gap of an internal face (None: no gap)."""
        if not self.gap_divisor:
            return None
        mask = torch.zeros(spatial, dtype=torch.bool, device=device)
        for axis, length in enumerate(spatial):
            half, g = length // 2, length // self.gap_divisor
            if g:
                mask.narrow(axis, half - g, 2 * g).fill_(True)
        return mask

    def apply(
        self, x: torch.Tensor, params: Params, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        out = self.scramble(x, params)
        mask = self.gap_mask(tuple(x.shape[2:]), x.device)
        if mask is None:
            return out
        return torch.where(mask, x.mean(dim=(2, 3, 4), keepdim=True), out)


def rubik_labels(params: Params) -> torch.Tensor:
    """The labels of a scrambled batch, ``(N, 17)`` integers: the permutation class, then the
    8 horizontal and the 8 vertical turn flags (by position)."""
    flips = params["flips"].long().reshape(params["flips"].shape[0], -1)
    return torch.cat([params["perm"][:, None], flips], 1)
