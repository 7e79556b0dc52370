"""What every restoring method minimises: the MSE between the sigmoid of the decoder's output
and the target (method.md §5.1), and the base class those methods share."""

from __future__ import annotations

from typing import TYPE_CHECKING

from semantic_genesis.pretrain.methods.base import Batch, Method, Term

if TYPE_CHECKING:  # pragma: no cover - types only
    from torch import Tensor


def restoration_mse(outputs: dict[str, Tensor], batch: Batch) -> Tensor:
    """MSE(sigmoid(restoration logits), target), in float32 even under autocast."""
    import torch
    import torch.nn.functional as F

    restored = torch.sigmoid(outputs["restoration"].float())
    return F.mse_loss(restored, batch.target.float())


#: the restoration term, weighted by ``--lambda-rec``.
RESTORATION_MSE = Term("mse", restoration_mse, weight="lambda_rec", title="restoration MSE")


class Restoring(Method):
    """A method whose decoder restores the perturbed cube (MSE to the target).

    Its title names the preset (``restoration (inpaint)``), except the ``mg`` preset, which is
    Models Genesis."""

    decoder = True
    terms = (RESTORATION_MSE,)
    figures = ("curves", "restorations")

    @property
    def label(self) -> str:
        """``Models Genesis`` for the mg preset, else ``restoration (<preset>)``."""
        preset = self.perturbation if isinstance(self.perturbation, str) else "custom"
        return "Models Genesis" if preset == "mg" else f"restoration ({preset})"
