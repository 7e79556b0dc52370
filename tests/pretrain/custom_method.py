"""A pre-training method written outside the package, as a user would: denoising.

``semgen pretrain --method tests/pretrain/custom_method.py:Denoise`` trains it. It reads as every
method does: what it trains on, what it perturbs, what it predicts, what it minimises.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from semantic_genesis.pretrain.methods import Batch, Method, Metric, Term

NOISE = 0.1


def add_noise(cubes: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor, None]:
    """Gaussian noise of standard deviation 0.1, clipped to [0, 1]; the target is the cube."""
    noise = torch.randn(cubes.shape, generator=generator, device=cubes.device) * NOISE
    return (cubes + noise).clamp(0, 1), cubes, None


def denoise_mse(outputs: dict[str, Tensor], batch: Batch) -> Tensor:
    """MSE between the denoised cube and the clean one."""
    return F.mse_loss(torch.sigmoid(outputs["restoration"].float()), batch.target)


def noise_left(outputs: dict[str, Tensor], batch: Batch) -> Tensor:
    """Mean absolute difference left after denoising (a metric, not minimised)."""
    return (torch.sigmoid(outputs["restoration"].float()) - batch.target).abs().mean()


class Denoise(Method):
    """Remove Gaussian noise."""

    name = "denoise"
    paper = (
        "Vincent et al., Extracting and Composing Robust Features with Denoising "
        "Autoencoders, ICML 2008"
    )
    # what it trains on
    data = "patterns"
    # what it perturbs (a plain function: staticmethod, so it is not bound to the method)
    perturbation = staticmethod(add_noise)
    # what it predicts
    decoder = True
    heads = {}
    # what it minimises
    terms = (
        Term("denoise_mse", denoise_mse, weight="lambda_rec", title="denoising MSE",
             metric=Metric("noise_left", noise_left, "noise left", bounded=False)),
    )
    figures = ("curves", "restorations")


class FromCohort(Denoise):
    """The same, on random cubes of a cohort (``data = "cohort"``); with ``+semantics`` it
    trains on the discovered patterns instead (they hold the classes)."""

    name = "denoise-cohort"
    data = "cohort"
