"""The CPU decoder rewrite computes exactly the reference network: outputs and gradients."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from semantic_genesis.models import create_model
from semantic_genesis.pretrain.speed import (
    FastUpTransition,
    fusion_pays,
    k2s2_transposed_conv,
    use_fast_decoder,
)


def test_k2s2_transposed_conv_is_conv_transpose3d() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 6, 3, 4, 5, generator=g, dtype=torch.float64)
    w = torch.randn(6, 5, 2, 2, 2, generator=g, dtype=torch.float64)
    b = torch.randn(5, generator=g, dtype=torch.float64)
    expected = F.conv_transpose3d(x, w, b, stride=2)
    torch.testing.assert_close(k2s2_transposed_conv(x, w, b), expected)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last_3d])
def test_fast_decoder_gives_the_reference_outputs_and_gradients(memory_format) -> None:
    torch.manual_seed(0)
    ref = create_model("ynet3d", n_classes=3, width=4).double().to(memory_format=memory_format)
    fast = copy.deepcopy(ref)
    assert use_fast_decoder(fast) == 3
    assert all(type(m) is FastUpTransition for m in (fast.up_tr256, fast.up_tr128, fast.up_tr64))
    assert fast.state_dict().keys() == ref.state_dict().keys()
    # both paths are exercised: the widest level is fused, the deepest is not
    assert fusion_pays(torch.empty(2, 16, 16, 16, 8), 16, 8)
    assert not fusion_pays(torch.empty(2, 64, 4, 4, 2), 64, 32)

    x = torch.rand(2, 1, 32, 32, 16, dtype=torch.float64).contiguous(memory_format=memory_format)
    outs = []
    for model in (ref, fast):
        seg, cls = model(x)
        (seg.square().mean() + cls.square().mean()).backward()
        outs.append((seg, cls, {k: p.grad for k, p in model.named_parameters()}))
    torch.testing.assert_close(outs[1][0], outs[0][0])
    torch.testing.assert_close(outs[1][1], outs[0][1])
    for name, grad in outs[0][2].items():
        torch.testing.assert_close(outs[1][2][name], grad, msg=name)
