"""In-painting: replace random boxes with noise (Models / Semantic Genesis) or a constant
(context-encoder style, Pathak et al. 2016).

method.md §3.1/§3.2: box sides uniform in ``[dim // 6, dim // 3]`` (64 -> [10, 21],
32 -> [5, 10]), corner uniform in ``[3, dim - side - 3]``, content replaced by U[0, 1) noise, one
value per voxel. Semantic Genesis' PyTorch loader paints exactly one box; Models Genesis up to 5,
each (the first included) with probability 0.95.
"""

from __future__ import annotations

import torch

from semantic_genesis.transforms.base import (
    BoxPerturbation,
    Params,
    box_mask,
    copy_rows,
)
from semantic_genesis.transforms.painting import paint_boxes, paint_rows


class InPainting(BoxPerturbation):
    """Fill random boxes with noise or a constant.

    Args:
        n_boxes: at most this many boxes (SG: 1, MG: 5).
        continue_prob: each box, the first included, exists only if a draw ``< continue_prob``
            succeeds, and the loop stops at the first failure (SG: 1.0, MG: 0.95).
        side_divisors: box side per axis uniform in ``[dim // d0, dim // d1]`` (reference (6, 3)).
        margin: smallest distance of a box from the cube's faces (3).
        fill: ``"noise"`` (U[0, 1) per voxel), ``"mean"`` (the sample's mean intensity, as the
            context encoder) or a constant in [0, 1].
        prob: probability per sample.

    Params: ``corner``, ``size`` ``(N, n_boxes, 3)`` and ``enabled`` ``(N, n_boxes)``.
    """

    name = "in-paint"

    def __init__(
        self,
        n_boxes: int = 1,
        continue_prob: float = 1.0,
        side_divisors: tuple[int, int] = (6, 3),
        margin: int = 3,
        fill: str | float = "noise",
        prob: float = 1.0,
    ) -> None:
        super().__init__(prob)
        if not (fill in ("noise", "mean") or isinstance(fill, (int, float))):
            raise ValueError(f"fill must be 'noise', 'mean' or a number, got {fill!r}")
        self.n_boxes = n_boxes
        self.continue_prob = continue_prob
        self.side_divisors = side_divisors
        self.margin = margin
        self.fill = fill

    def side_range(self, dims: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return dims // self.side_divisors[0], dims // self.side_divisors[1]

    def apply(
        self, x: torch.Tensor, params: Params, generator: torch.Generator | None
    ) -> torch.Tensor:
        if self.fill == "noise":
            return paint_boxes(x, params, generator, keep=False)
        mask = box_mask(params["corner"], params["size"], params["enabled"], x.shape[2:])
        if self.fill == "mean":
            value = x.mean(dim=(2, 3, 4), keepdim=True)
        else:
            value = torch.as_tensor(float(self.fill), dtype=x.dtype, device=x.device)
        return torch.where(mask, value, x)

    def apply_in_rows(
        self,
        src: torch.Tensor,
        out: torch.Tensor,
        rows: list[int],
        params: Params,
        generator: torch.Generator | None,
    ) -> bool:
        """With noise, the boxes painted where the rows are (``src`` may be ``out``)."""
        if self.fill != "noise":
            return False
        copy_rows(src, out, rows)
        paint_rows(src, out, rows, params, generator, keep=False)
        return True
