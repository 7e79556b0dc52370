"""Out-painting: keep random boxes of the original, fill everything else with noise.

method.md §3.1/§3.2: start from a U[0, 1) noise cube and copy back one box of the original,
side ``dim - U{3 * dim // 7 .. 4 * dim // 7}`` (64 -> [28, 37], 32 -> [14, 19]), corner in
``[3, dim - side - 3]``. Semantic Genesis' PyTorch loader keeps exactly one box; Models Genesis
keeps up to 4 more, each added with probability 0.95 (the union of kept boxes shows the
original).
"""

from __future__ import annotations

import torch

from semantic_genesis.transforms.base import (
    BoxPerturbation,
    Params,
)
from semantic_genesis.transforms.painting import paint_boxes, paint_rows


class OutPainting(BoxPerturbation):
    """Replace everything outside random kept boxes with U[0, 1) noise.

    Args:
        n_boxes: at most this many kept boxes (SG: 1, MG: 5); the first is always kept.
        continue_prob: each further box is kept only if a draw ``< continue_prob`` succeeds
            (MG: 0.95).
        margin: smallest distance of a box from the cube's faces (3).
        prob: probability per sample.

    Params: ``corner``, ``size`` ``(N, n_boxes, 3)`` and ``enabled`` ``(N, n_boxes)``.
    """

    name = "out-paint"
    first_always = True

    def __init__(
        self, n_boxes: int = 1, continue_prob: float = 1.0, margin: int = 3, prob: float = 1.0
    ) -> None:
        super().__init__(prob)
        self.n_boxes = n_boxes
        self.continue_prob = continue_prob
        self.margin = margin

    def side_range(self, dims: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return dims - 4 * dims // 7, dims - 3 * dims // 7

    def apply(
        self, x: torch.Tensor, params: Params, generator: torch.Generator | None
    ) -> torch.Tensor:
        return paint_boxes(x, params, generator, keep=True)

    def apply_in_rows(
        self,
        src: torch.Tensor,
        out: torch.Tensor,
        rows: list[int],
        params: Params,
        generator: torch.Generator | None,
    ) -> bool:
        """The rows painted where they are (``src`` may be ``out``)."""
        paint_rows(src, out, rows, params, generator, keep=True)
        return True
