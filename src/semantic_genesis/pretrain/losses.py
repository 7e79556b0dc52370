"""The pre-training loss: the weighted sum of the method's terms, e.g. for Semantic Genesis
λ_rec · MSE(sigmoid(restoration), target) + λ_cls · CE(logits, class).

Each term is a function of the network's outputs and the batch (see
:class:`~semantic_genesis.pretrain.methods.Term`); its weight is a number or a config field
(``lambda_rec``, ``lambda_cls``), read as a float (the reference declared them int, method.md
§9.17). Terms are computed in float32 even under autocast, in the order the method lists them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from semantic_genesis.pretrain.methods import Batch, Method
from semantic_genesis.utils.errors import SemgenError


class MethodLoss(torch.nn.Module):
    """Weighted sum of ``method``'s terms; returns the loss and a detached stats vector in the
    order of :meth:`Method.metric_names` (``loss``, each term, its metric)."""

    def __init__(self, method: Method, config: Any) -> None:
        super().__init__()
        self.terms = method.terms
        self.weights = [
            float(getattr(config, t.weight) if isinstance(t.weight, str) else t.weight)
            for t in self.terms
        ]
        self.names = method.metric_names()
        self.method = method.name

    def forward(self, outputs: dict[str, Tensor], batch: Batch) -> tuple[Tensor, Tensor]:
        """Loss (with grad) and ``stats`` (no grad, float32)."""
        total = next(iter(outputs.values())).new_zeros((), dtype=torch.float32)
        values = []
        for term, weight in zip(self.terms, self.weights, strict=True):
            value = self._scalar(term.name, term.fn(outputs, batch))
            total = total + weight * value
            values.append(value)
            if term.metric is not None:
                values.append(self._scalar(term.metric.name, term.metric.fn(outputs, batch)))
        stats = torch.stack([total, *(v.float() for v in values)]).detach()
        return total, stats

    def _scalar(self, name: str, value: Any) -> Tensor:
        """``value`` if it is a one-element tensor (a method's own term may not be)."""
        if not isinstance(value, Tensor) or value.numel() != 1:
            shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise SemgenError(f"method {self.method}: {name} must return a scalar tensor, "
                              f"got {shape}")
        return value.reshape(())
