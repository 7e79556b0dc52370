"""The self-discovery auto-encoder (method.md §2.1-2.2), in PyTorch.

The reference trains a Keras 3D U-Net (depth 4, 32 base filters, conv-BN-ReLU blocks,
UpSampling3D) on whole volumes resized to 128 x 128 x 64, and describes a patient by the global
average of its deepest block (``depth_7_relu``: 512 channels at 16 x 16 x 8).

**Deviation (method.md §2.1, §9.12, §12): no skip connections.** With the U-Net's skips an
auto-encoder can copy the input through the shallow levels and leave the bottleneck
uninformative (SemanticGenesis issue #3). Here the decoder sees *only* the bottleneck, so the
code that the patient feature is pooled from must carry the whole reconstruction. The encoder
layout is the reference's (two 3x3x3 conv-BN-ReLU per level, channels ``w, 2w | 2w, 4w | 4w, 8w
| 8w, 16w`` for width ``w``, max-pooling between levels), so at ``w = 32`` the feature is the
reference's 512-d one; narrower widths (8, 16) keep CPU runs short.

Training (:func:`train_autoencoder`): MSE between ``sigmoid(logits)`` and the input, Adam (lr
1e-3), ReduceLROnPlateau (factor 0.5) and early stopping on the validation loss, keeping the best
weights, as the reference but with small, configurable patience and epoch limits.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from semantic_genesis.utils.progress import progress
from semantic_genesis.utils.seed import derive_rng


def _block(cin: int, cout: int) -> nn.Sequential:
    """Conv3D 3x3x3 (same padding), BatchNorm, ReLU: the reference's conv block."""
    return nn.Sequential(nn.Conv3d(cin, cout, 3, padding=1), nn.BatchNorm3d(cout),
                         nn.ReLU(inplace=True))


class BottleneckAutoEncoder(nn.Module):
    """A 3D conv auto-encoder with the reference encoder layout and no skip connections.

    Args:
        width: base channels ``w``; the bottleneck has ``16 * w`` channels (512 at 32).
        depth: resolution levels (4 in the reference: three 2x poolings).
        in_channels: input channels (1 for a single CT/MR volume).
    """

    def __init__(self, width: int = 32, depth: int = 4, in_channels: int = 1) -> None:
        super().__init__()
        self.width, self.depth = width, depth
        enc, cin = [], in_channels
        for level in range(depth):
            c = width * 2 ** level
            enc.append(nn.Sequential(_block(cin, c), _block(c, 2 * c)))
            cin = 2 * c
        self.encoder = nn.ModuleList(enc)
        self.pool = nn.MaxPool3d(2)
        dec = []
        for level in reversed(range(depth - 1)):
            c = 2 * width * 2 ** level
            dec.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                     _block(cin, c), _block(c, c)))
            cin = c
        self.decoder = nn.Sequential(*dec)
        self.out = nn.Conv3d(cin, in_channels, 1)
        self.bottleneck_channels = width * 2 ** depth

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The deepest block's output (the reference's ``depth_7_relu`` at depth 4)."""
        for level, block in enumerate(self.encoder):
            if level:
                x = self.pool(x)
            x = block(x)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Global average of the bottleneck: one ``16 * w``-d feature per volume (§2.2)."""
        return self.encode(x).mean(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction logits (apply a sigmoid for intensities in [0, 1])."""
        return self.out(self.decoder(self.encode(x)))


@dataclass
class TrainReport:
    """What happened while training: per-epoch losses, best epoch, why it stopped."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    best_loss: float = math.inf
    stopped: str = ""


def as_batch(array: np.ndarray, device: str | torch.device) -> torch.Tensor:
    """(n, X, Y, Z) volumes as an (n, 1, X, Y, Z) float tensor in channels-last-3d layout,
    which makes CPU 3D convolutions (their backward above all) several times faster."""
    x = torch.from_numpy(np.asarray(array, dtype=np.float32)).unsqueeze(1).to(device)
    return x.contiguous(memory_format=torch.channels_last_3d)


def _batches(inputs: np.ndarray, order: np.ndarray, batch: int, device: torch.device):
    for start in range(0, len(order), batch):
        idx = np.sort(order[start:start + batch])  # sorted reads are kinder to a memory map
        yield as_batch(inputs[idx], device)


def _loss(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return nn.functional.mse_loss(torch.sigmoid(model(x)), x)


def train_autoencoder(model: BottleneckAutoEncoder, inputs: np.ndarray, train_idx: np.ndarray,
                      val_idx: np.ndarray, *, epochs: int, patience: int, batch: int = 2,
                      lr: float = 1e-3, seed: int = 0, device: str | torch.device = "cpu"
                      ) -> TrainReport:
    """Train ``model`` in place to reconstruct ``inputs[i]`` (``(n, X, Y, Z)``, [0, 1]).

    Early stopping watches the validation loss (the training loss when ``val_idx`` is empty)
    and stops after ``patience`` epochs without an improvement of at least 1e-4; the best
    weights are restored at the end.
    """
    device = torch.device(device)
    model.to(device, memory_format=torch.channels_last_3d)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, factor=0.5, patience=max(1, patience // 2), min_lr=1e-6, threshold=1e-4,
        threshold_mode="abs")
    report, best_state, waited = TrainReport(), None, 0
    bar = progress(range(epochs), desc="auto-encoder", total=epochs)
    for epoch in bar:
        model.train()
        order = derive_rng(seed, "autoencoder-epoch", epoch).permutation(train_idx)
        total = 0.0
        for x in _batches(inputs, order, batch, device):
            opt.zero_grad(set_to_none=True)
            loss = _loss(model, x)
            loss.backward()
            opt.step()
            total += loss.item() * len(x)
        report.train_loss.append(total / max(1, len(order)))
        watched = report.train_loss[-1]
        if len(val_idx):
            report.val_loss.append(evaluate(model, inputs, val_idx, batch, device))
            watched = report.val_loss[-1]
        sched.step(watched)
        bar.set_postfix(loss=f"{report.train_loss[-1]:.4f}", watched=f"{watched:.4f}")
        if watched < report.best_loss - 1e-4:
            report.best_loss, report.best_epoch, waited = watched, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            waited += 1
            if waited >= patience:
                report.stopped = f"early stop: no improvement for {patience} epochs"
                break
    report.stopped = report.stopped or f"reached {epochs} epochs"
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return report


@torch.no_grad()
def evaluate(model: nn.Module, inputs: np.ndarray, idx: np.ndarray, batch: int,
             device: torch.device) -> float:
    """Mean reconstruction MSE over ``inputs[idx]`` in eval mode."""
    model.eval()
    total = sum(_loss(model, x).item() * len(x) for x in _batches(inputs, np.asarray(idx), batch,
                                                                  device))
    return total / max(1, len(idx))
