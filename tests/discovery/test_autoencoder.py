"""The bottleneck auto-encoder: shapes, no skip connections, training and early stopping."""

from __future__ import annotations

import numpy as np
import torch

from semantic_genesis.discovery.autoencoder import BottleneckAutoEncoder, train_autoencoder


def test_shapes_and_reference_feature_size() -> None:
    model = BottleneckAutoEncoder(width=2).eval()
    x = torch.rand(2, 1, 32, 32, 16)
    assert model(x).shape == x.shape
    assert model.encode(x).shape == (2, 32, 4, 4, 2)  # 16 x width channels, 3 poolings
    assert model.features(x).shape == (2, model.bottleneck_channels)
    assert BottleneckAutoEncoder(width=32).bottleneck_channels == 512  # the reference's 512-d


def test_decoder_sees_only_the_bottleneck() -> None:
    """No skip connections: the reconstruction is a function of the code alone."""
    model = BottleneckAutoEncoder(width=2).eval()
    x = torch.rand(1, 1, 16, 16, 8)
    with torch.no_grad():
        code = model.encode(x)
        assert torch.equal(model(x), model.out(model.decoder(code)))
    convs = [m for m in model.decoder.modules() if isinstance(m, torch.nn.Conv3d)]
    assert convs[0].in_channels == model.bottleneck_channels  # no concatenated skips


def _blobs(n=6, seed=0):
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, s) for s in (16, 16, 8)), indexing="ij")
    vols = [((x - rng.uniform(-.4, .4)) ** 2 + (y - rng.uniform(-.4, .4)) ** 2 + z ** 2 < .3)
            * 0.8 + 0.1 for _ in range(n)]
    return np.stack(vols).astype(np.float16)


def test_training_lowers_the_loss_and_keeps_the_best() -> None:
    torch.manual_seed(0)
    model = BottleneckAutoEncoder(width=2)
    inputs = _blobs()
    report = train_autoencoder(model, inputs, np.arange(4), np.arange(4, 6), epochs=6,
                               patience=10, batch=2, lr=3e-3)
    assert len(report.train_loss) == 6 and len(report.val_loss) == 6
    assert report.train_loss[-1] < report.train_loss[0]
    assert report.best_loss == min(report.val_loss)
    assert not model.training


def test_early_stopping() -> None:
    model = BottleneckAutoEncoder(width=2)
    report = train_autoencoder(model, _blobs(), np.arange(4), np.array([], int), epochs=50,
                               patience=2, batch=2, lr=0.0)  # lr 0: nothing ever improves
    assert len(report.train_loss) == 3 and "early stop" in report.stopped
    assert report.val_loss == []  # watched the training loss instead
