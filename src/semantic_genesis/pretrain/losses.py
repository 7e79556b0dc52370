"""The pre-training loss: λ_rec · MSE(sigmoid(restoration), target) + λ_cls · CE(logits, class).

Two fixes against the reference (method.md §5.1, §9.17): the cross-entropy takes the *logits*
(the reference took the log of a softmax and fed it to CrossEntropyLoss — the same value, but
log(0) = -inf when a probability underflows), and the weights are floats. The rotation pretext
adds λ_rec · CE(rotation logits, rotation index) in place of the restoration term. Terms are
computed in float32 even under autocast.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

#: the per-batch statistics every step reports, in this order (means over the batch).
STATS = ("loss", "mse", "ce", "acc", "rot_ce", "rot_acc")


@dataclass
class Outputs:
    """What the network produced for one batch; ``None`` for heads the method does not use."""

    restoration: Tensor | None = None  # logits (N, 1, X, Y, Z)
    logits: Tensor | None = None  # pseudo-class logits (N, C)
    rotation: Tensor | None = None  # rotation logits (N, R)


class PretrainLoss(torch.nn.Module):
    """Weighted sum of the method's terms; returns the loss and a detached stats vector.

    Args:
        lambda_rec: weight of the restoration MSE (or of the rotation CE).
        lambda_cls: weight of the pseudo-class cross-entropy (reference 0.01, method.md §5).
    """

    def __init__(self, lambda_rec: float = 1.0, lambda_cls: float = 0.01) -> None:
        super().__init__()
        self.lambda_rec = float(lambda_rec)
        self.lambda_cls = float(lambda_cls)

    def forward(
        self,
        out: Outputs,
        target: Tensor | None,
        labels: Tensor | None,
        rotation: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Loss (with grad) and ``stats`` = tensor of :data:`STATS` (no grad, float32)."""
        zero = next(
            t for t in (out.restoration, out.logits, out.rotation) if t is not None
        ).new_zeros((), dtype=torch.float32)
        mse = ce = acc = rot_ce = rot_acc = zero
        total = zero
        if out.restoration is not None:
            restored = torch.sigmoid(out.restoration.float())
            mse = F.mse_loss(restored, target.float())
            total = total + self.lambda_rec * mse
        if out.logits is not None:
            ce = F.cross_entropy(out.logits.float(), labels)
            acc = (out.logits.argmax(1) == labels).float().mean()
            total = total + self.lambda_cls * ce
        if out.rotation is not None:
            rot_ce = F.cross_entropy(out.rotation.float(), rotation)
            rot_acc = (out.rotation.argmax(1) == rotation).float().mean()
            total = total + self.lambda_rec * rot_ce
        stats = torch.stack([total, mse, ce, acc, rot_ce, rot_acc]).detach()
        return total, stats
