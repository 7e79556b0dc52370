"""The reference architecture, exactly: keys, shapes, parameter counts, outputs, norms, heads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from semantic_genesis.models import (
    ClassificationHead,
    ContBatchNorm,
    EncoderClassifier,
    UNet3D,
    YNet3D,
    create_model,
)
from semantic_genesis.utils.errors import SemgenError

DATA = Path(__file__).parent / "data"
SHARED_REFERENCE = (
    Path(__file__).parents[2].parent / "shared/docs/reference" / "ynet3d_state_dict.txt"
)


def reference_state_dict() -> list[tuple[str, tuple[int, ...]]]:
    """Parse ``name (d0, d1, ...)`` lines of docs/reference/ynet3d_state_dict.txt (our copy)."""
    text = (DATA / "ynet3d_state_dict.txt").read_text()
    if SHARED_REFERENCE.is_file():  # the copy must not drift from the spec
        assert SHARED_REFERENCE.read_text() == text
    rows = []
    for line in text.splitlines():
        name, shape = line.split(" ", 1)
        rows.append((name, tuple(int(d) for d in shape.strip("()").split(",") if d.strip())))
    return rows


@pytest.fixture(scope="module")
def reference_ynet() -> YNet3D:
    torch.manual_seed(0)
    return YNet3D(n_classes=44)


def test_ynet3d_matches_the_reference_state_dict(reference_ynet: YNet3D) -> None:
    reference = reference_state_dict()
    assert len(reference) == 115
    ours = [(k, tuple(v.shape)) for k, v in reference_ynet.state_dict().items()]
    assert ours == reference  # same keys, same order, same shapes


def test_unet3d_is_the_reference_without_the_head() -> None:
    reference = [row for row in reference_state_dict() if not row[0].startswith("clc_out.")]
    assert len(reference) == 106
    ours = [(k, tuple(v.shape)) for k, v in UNet3D().state_dict().items()]
    assert ours == reference


def test_parameter_counts_match_the_reference(reference_ynet: YNet3D) -> None:
    counts = reference_ynet.parameter_counts()
    assert counts["total"] == 33_277_613 == sum(p.numel() for p in reference_ynet.parameters())
    assert counts["encoder"] == 7_027_776  # method.md §4.1: 7.03 M, 12.05 M, 14.20 M
    assert counts["decoder"] == 12_045_889
    assert counts["head"] == 14_203_948
    assert reference_ynet.bottleneck_channels == 512


def test_full_width_forward_and_backward_once(reference_ynet: YNet3D) -> None:
    """The default model trains on CPU: one step at the reference cube size, batch 1."""
    model = reference_ynet.train()
    x = torch.rand(1, 1, 64, 64, 32)
    seg, cls = model(x)
    assert seg.shape == (1, 1, 64, 64, 32) and cls.shape == (1, 44)
    loss = F.mse_loss(torch.sigmoid(seg), x) + 0.01 * F.cross_entropy(cls, torch.tensor([3]))
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.down_tr64.ops[0].conv1.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("shape", [(64, 64, 32), (32, 32, 16), (48, 16, 32), (16, 16, 16)])
def test_output_shapes_for_multiples_of_16(shape: tuple[int, int, int]) -> None:
    model = YNet3D(n_classes=5, width=8, out_channels=3).eval()
    x = torch.rand(1, 1, *shape)
    with torch.no_grad():
        seg, cls = model(x)
        bottleneck, skips = model.encode(x)
    assert seg.shape == (1, 3, *shape) and cls.shape == (1, 5)
    assert bottleneck.shape == (1, model.bottleneck_channels, *(s // 8 for s in shape))
    assert [s.shape[1] for s in skips] == [16, 32, 64] == list(model.skip_channels)
    assert [s.shape[2:] for s in skips] == [
        torch.Size(tuple(d // f for d in shape)) for f in (1, 2, 4)
    ]


def test_bottleneck_channels_scale_with_width() -> None:
    for width in (4, 8, 16):
        assert UNet3D(width=width).bottleneck_channels == 16 * width


def test_encoder_classifier_never_runs_a_decoder() -> None:
    model = EncoderClassifier(n_classes=4, width=8).eval()
    assert not any(name.startswith(("up_tr", "out_tr")) for name, _ in model.named_modules())
    assert model(torch.rand(2, 1, 32, 32, 16)).shape == (2, 4)
    ynet = YNet3D(n_classes=4, width=8)
    calls = []
    ynet.up_tr256.register_forward_hook(lambda *a: calls.append(1))
    ynet.encode(torch.rand(1, 1, 16, 16, 16))
    assert calls == []


def test_encoder_without_head_returns_pooled_features() -> None:
    model = create_model("encoder3d", n_classes=0, width=8).eval()
    x = torch.rand(2, 1, 16, 16, 16)
    with torch.no_grad():
        assert torch.allclose(model(x), model.encode(x)[0].mean(dim=(2, 3, 4)))


def test_models_return_logits_not_probabilities() -> None:
    torch.manual_seed(0)
    model = YNet3D(n_classes=3, width=8).eval()
    model.out_tr.final_conv.bias.data.fill_(-5.0)  # a sigmoid output would be in (0, 1)
    with torch.no_grad():
        seg, cls = model(torch.rand(1, 1, 16, 16, 16))
    assert seg.max() < 0
    assert not torch.allclose(cls.softmax(1).sum(1), cls.sum(1))


def test_cont_batch_norm_is_the_reference_formula() -> None:
    """Reference ContBatchNorm3d: F.batch_norm(..., training=True) whatever the mode."""
    torch.manual_seed(0)
    norm = ContBatchNorm(6)
    norm.weight.data.uniform_(0.5, 1.5)
    norm.bias.data.uniform_(-1, 1)
    norm.running_mean.fill_(3.0)
    norm.eval()
    x = torch.randn(2, 6, 4, 4, 4) * 2 + 1
    expected = F.batch_norm(
        x, torch.zeros(6), torch.ones(6), norm.weight, norm.bias, True, 0.1, 1e-5
    )
    assert torch.allclose(norm(x), expected, atol=1e-6)
    assert torch.equal(norm.running_mean, torch.full((6,), 3.0))  # eval leaves buffers alone


def test_batch_always_uses_batch_statistics_in_eval() -> None:
    torch.manual_seed(0)
    always = create_model("unet3d", width=8, norm="batch_always")
    standard = create_model("unet3d", width=8, norm="batch")
    standard.load_state_dict(always.state_dict())
    x = torch.rand(2, 1, 16, 16, 16)
    with torch.no_grad():
        in_eval = always.eval()(x)
        with_batch_stats = standard.train()(x)
        standard_eval = standard.eval()(x)
    assert torch.allclose(in_eval, with_batch_stats, atol=1e-5)
    assert not torch.allclose(in_eval, standard_eval, atol=1e-3)
    # batch composition changes the reference's output for a sample, not standard BN's
    with torch.no_grad():
        assert not torch.allclose(always(x[:1]), in_eval[:1], atol=1e-4)
        assert torch.allclose(standard(x[:1]), standard_eval[:1], atol=1e-5)


@pytest.mark.parametrize("norm", ["batch", "batch_always", "instance", "group"])
def test_every_norm_keeps_the_reference_parameter_names(norm: str) -> None:
    keys = set(create_model("ynet3d", width=8, n_classes=2, norm=norm).state_dict())
    assert "down_tr64.ops.0.bn1.weight" in keys and "clc_out.bn1.bias" in keys
    has_stats = "down_tr64.ops.0.bn1.running_mean" in keys
    assert has_stats == norm.startswith("batch")


def test_head_kinds_and_their_sizes() -> None:
    """method.md §4.1 / §4.2: torch head 14.20 M, Keras head 7.65 M (512 channels, 44 classes)."""

    def count(m: torch.nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())

    assert count(ClassificationHead(512, 44, "torch")) == 14_203_948
    assert count(ClassificationHead(512, 44, "keras")) == 7_649_836
    mlp = ClassificationHead(512, 44, "mlp")
    assert [tuple(p.shape) for p in mlp.parameters()] == [(1024, 512), (1024,), (44, 1024), (44,)]
    x = torch.rand(3, 32, 2, 2, 2)
    for kind in ("torch", "keras", "mlp"):
        assert ClassificationHead(32, 7, kind).eval()(x).shape == (3, 7)


def test_two_dimensional_variant() -> None:
    model = create_model("ynet2d", width=8, n_classes=3).eval()
    with torch.no_grad():
        seg, cls = model(torch.rand(2, 1, 32, 48))
    assert seg.shape == (2, 1, 32, 48) and cls.shape == (2, 3)
    assert model.down_tr64.ops[0].conv1.weight.shape == (8, 1, 3, 3)


@pytest.mark.parametrize("kwargs", [{"norm": "layer"}, {"head": "dense"}, {"width": 0}])
def test_bad_options_are_one_clear_error(kwargs: dict) -> None:
    with pytest.raises(SemgenError):
        create_model("ynet3d", **{"width": 8, **kwargs})
