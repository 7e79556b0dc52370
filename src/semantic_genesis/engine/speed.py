"""CPU speed-ups that change how the reference network is computed, never what it computes.

Measured on a 2-core AVX2 EPYC (benchmarks/bench_train.py, performance.md): oneDNN runs the
3x3x3 convolutions near the GEMM peak forward but its 2x2x2 stride-2 transposed convolutions
(the decoder's ``up_conv``) at a small fraction of it, forward and backward. Such a transposed
convolution never overlaps its outputs, so it is exactly one matrix product
``(positions, C_in) @ (C_in, C_out * 8)`` followed by a reshuffle of the 8 sub-voxels; written
that way autograd's backward is two GEMMs too. bf16 autocast is *not* a speed-up on this CPU
(no native bf16 arithmetic: a convolution took minutes instead of seconds), so ``amp="auto"``
stays fp32 on CPU.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def k2s2_transposed_conv(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``conv_transpose3d(x, weight, bias, stride=2)`` for a 2x2x2 kernel, as one GEMM.

    ``out[n, o, 2i+a, 2j+b, 2k+c] = sum_c' x[n, c', i, j, k] * weight[c', o, a, b, c] + bias[o]``;
    the result is laid out channels-last (the fast layout for the convolutions after it).
    """
    n, c_in, sx, sy, sz = x.shape
    c_out = weight.shape[1]
    rows = x.permute(0, 2, 3, 4, 1).reshape(-1, c_in)  # free when x is channels-last
    out = (rows @ weight.reshape(c_in, c_out * 8)).view(n, sx, sy, sz, c_out, 2, 2, 2)
    out = out.permute(0, 1, 5, 2, 6, 3, 7, 4).reshape(n, 2 * sx, 2 * sy, 2 * sz, c_out)
    if bias is not None:
        out = out + bias
    return out.permute(0, 4, 1, 2, 3)


class GemmConvTranspose3d(nn.ConvTranspose3d):
    """An ``nn.ConvTranspose3d`` (kernel 2, stride 2) computed by :func:`k2s2_transposed_conv`;
    same parameters, same state-dict keys."""

    def forward(self, input: Tensor, output_size: list[int] | None = None) -> Tensor:
        return k2s2_transposed_conv(input, self.weight, self.bias)


def _eligible(m: nn.Module) -> bool:
    return (
        type(m) is nn.ConvTranspose3d
        and m.kernel_size == (2, 2, 2)
        and m.stride == (2, 2, 2)
        and m.padding == (0, 0, 0)
        and m.output_padding == (0, 0, 0)
        and m.dilation == (1, 1, 1)
        and m.groups == 1
    )


def use_gemm_upconv(model: nn.Module) -> int:
    """Compute every 2x2x2 stride-2 ``ConvTranspose3d`` of ``model`` as a GEMM (in place: the
    modules keep their parameters, so weights, optimiser and checkpoints are unaffected).

    Returns:
        The number of modules switched.
    """
    switched = 0
    for m in model.modules():
        if _eligible(m):
            m.__class__ = GemmConvTranspose3d
            switched += 1
    return switched


def cpu_settings() -> None:
    """Flush denormal floats to zero: tiny gradients late in training otherwise slow x86 float
    arithmetic by orders of magnitude (a process-wide setting, harmless for training)."""
    torch.set_flush_denormal(True)
