"""CPU speed-ups that change how the reference decoder is computed, never what it computes.

Measured on this project's 2-core AVX2 EPYC (method.md §14, benchmarks/bench_train.py), oneDNN
runs the 3x3x3 convolutions near the GEMM peak but the decoder's 2x2x2 stride-2 transposed
convolutions (``up_conv``) far below it, and each decoder level then convolves the up-sampled
map at full resolution. Both are linear with nothing in between (``UpTransition``: up-conv,
concatenation with the skip, then ``conv1``), so per decoder level:

- ``conv1(cat(up(x), skip)) = conv1_skip(skip) + conv1_up(up(x))``, and ``conv1_up(up(x))`` is
  a *sub-pixel* convolution of the low-resolution ``x``: each of the 8 output parities sees a
  2x2x2 low-resolution neighbourhood through an effective kernel that is a product of the two
  weights (computed every step, so gradients reach both). At the reference's widest level this
  is ``C_in·8·C_out`` instead of ``C_up·27·C_out + C_in·C_up`` multiply-adds per output voxel,
  about 3.6x fewer; the up-convolution's bias becomes an input channel of ones (zero outside
  the volume, so the zero padding of ``conv1`` at the borders is kept exactly);
- where composing the kernels would cost more than it saves (the deepest level), the
  up-convolution is one GEMM ``(positions, C_in) @ (C_in, C_out·8)`` plus a reshuffle.

The results equal the reference computation up to float rounding (tests/pretrain/test_speed.py);
parameters and state-dict keys are untouched. bf16 autocast is *not* a speed-up on this CPU
(no native bf16 arithmetic: one convolution took minutes instead of seconds).

On a shared or oversubscribed CPU, OpenMP threads that spin while waiting cost far more than
the model: a width-8 step took 23-38 s with 2 spinning threads and 2.4 s with
``OMP_WAIT_POLICY=PASSIVE`` (which ``semgen pretrain`` sets unless the user chose a policy).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semantic_genesis.models.blocks import UpTransition

#: fuse a level when the sub-pixel path needs less than this share of the reference's work.
FUSE_BELOW = 0.6


def k2s2_transposed_conv(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``conv_transpose3d(x, weight, bias, stride=2)`` for a 2x2x2 kernel, as one GEMM
    (outputs never overlap); the result is laid out channels-last."""
    n, c_in, sx, sy, sz = x.shape
    c_out = weight.shape[1]
    rows = x.permute(0, 2, 3, 4, 1).reshape(-1, c_in)  # free when x is channels-last
    out = (rows @ weight.reshape(c_in, c_out * 8)).view(n, sx, sy, sz, c_out, 2, 2, 2)
    out = out.permute(0, 1, 5, 2, 6, 3, 7, 4).reshape(n, 2 * sx, 2 * sy, 2 * sz, c_out)
    if bias is not None:
        out = out + bias
    return out.permute(0, 4, 1, 2, 3)


def _tap_table() -> Tensor:
    """``T[a, t, d, s] = 1`` when, along one axis, output parity ``a`` and ``conv1`` offset
    ``d - 1`` read low-resolution tap ``t`` (offsets -1, 0 for a = 0; 0, 1 for a = 1) at
    up-convolution sub-voxel ``s``."""
    table = torch.zeros(2, 2, 3, 2)
    for a in range(2):
        for d in (-1, 0, 1):
            low, s = divmod(a + d, 2)
            table[a, low + 1 - a, d + 1, s] = 1
    return table


TAPS = _tap_table()
TAP_OFFSETS = [(tx, ty, tz) for tx in (0, 1) for ty in (0, 1) for tz in (0, 1)]


def subpixel_kernel(conv_weight: Tensor, up_weight: Tensor, up_bias: Tensor) -> Tensor:
    """The effective kernels ``(8 taps, C_in + 1, 8 parities · C_out)`` of ``conv1_up ∘ up``.

    Args:
        conv_weight: ``conv1``'s weight restricted to the up-sampled channels ``(C_out, C_up,
            3, 3, 3)``.
        up_weight, up_bias: the transposed convolution's ``(C_in, C_up, 2, 2, 2)`` and
            ``(C_up,)``; the bias enters as the weight of an extra input channel of ones.
    """
    c_out, c_up = conv_weight.shape[:2]
    c_in = up_weight.shape[0]
    up = torch.cat([up_weight, up_bias.view(1, c_up, 1, 1, 1).expand(1, c_up, 2, 2, 2)])
    k = torch.einsum(
        "oud,ius->oids", conv_weight.reshape(c_out, c_up, 27), up.reshape(c_in + 1, c_up, 8)
    ).reshape(c_out, c_in + 1, 3, 3, 3, 2, 2, 2)
    t = TAPS.to(k)
    k = torch.einsum("axdp,oidefpqr->oiaxefqr", t, k)  # one axis at a time: cheap
    k = torch.einsum("byeq,oiaxefqr->oiaxbyfr", t, k)
    k = torch.einsum("czfr,oiaxbyfr->oiaxbycz", t, k)  # (o, i, a, tx, b, ty, c, tz)
    return k.permute(3, 5, 7, 1, 2, 4, 6, 0).reshape(8, c_in + 1, 8 * c_out)


def _tap_rows(sy: int, sz: int) -> list[int]:
    """Row offsets of the 8 taps in the flattened zero-padded (x, y, z) grid."""
    return [tx * (sy + 2) * (sz + 2) + ty * (sz + 2) + tz for tx, ty, tz in TAP_OFFSETS]


class SubPixelConv(torch.autograd.Function):
    """``x (N, C_in, X, Y, Z)``, kernels from :func:`subpixel_kernel` ->
    ``(N, C_out, 2X, 2Y, 2Z)`` channels-last, with GEMMs on the flattened padded grid (a tap
    is a row offset there), forward and backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, kernel: Tensor) -> Tensor:
        n, c_in, sx, sy, sz = x.shape
        c_out = kernel.shape[2] // 8
        padded = x.new_zeros(n, sx + 2, sy + 2, sz + 2, c_in + 1)
        padded[:, 1:-1, 1:-1, 1:-1, :c_in] = x.permute(0, 2, 3, 4, 1)
        padded[:, 1:-1, 1:-1, 1:-1, c_in] = 1  # the up-convolution's bias channel
        rows = padded.view(-1, c_in + 1)
        offsets = _tap_rows(sy, sz)
        length = rows.shape[0] - offsets[-1]
        y = x.new_empty(rows.shape[0], 8 * c_out)
        torch.mm(rows[:length], kernel[0], out=y[:length])
        for t in range(1, 8):
            y[:length].addmm_(rows[offsets[t] : offsets[t] + length], kernel[t])
        windows = y.view(n, sx + 2, sy + 2, sz + 2, 2, 2, 2, c_out)
        out = x.new_empty(n, 2 * sx, 2 * sy, 2 * sz, c_out)
        parities = out.view(n, sx, 2, sy, 2, sz, 2, c_out)
        for a, b, c in TAP_OFFSETS:  # parity a reads windows starting at low-res i + a
            parities[:, :, a, :, b, :, c] = windows[:, a : a + sx, b : b + sy, c : c + sz, a, b, c]
        ctx.save_for_backward(rows, kernel)
        ctx.dims = (n, c_in, sx, sy, sz, c_out)
        return out.permute(0, 4, 1, 2, 3)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor]:
        rows, kernel = ctx.saved_tensors
        n, c_in, sx, sy, sz, c_out = ctx.dims
        parities = grad.permute(0, 2, 3, 4, 1).reshape(n, sx, 2, sy, 2, sz, 2, c_out)
        gy = grad.new_zeros(rows.shape[0], 8 * c_out)
        windows = gy.view(n, sx + 2, sy + 2, sz + 2, 2, 2, 2, c_out)
        for a, b, c in TAP_OFFSETS:
            windows[:, a : a + sx, b : b + sy, c : c + sz, a, b, c] = parities[:, :, a, :, b, :, c]
        offsets = _tap_rows(sy, sz)
        length = rows.shape[0] - offsets[-1]
        grad_kernel = torch.stack([rows[o : o + length].t() @ gy[:length] for o in offsets])
        grad_rows = torch.zeros_like(rows)
        for t, o in enumerate(offsets):
            grad_rows[o : o + length].addmm_(gy[:length], kernel[t].t())
        grad_x = grad_rows.view(n, sx + 2, sy + 2, sz + 2, c_in + 1)[:, 1:-1, 1:-1, 1:-1, :c_in]
        return grad_x.permute(0, 4, 1, 2, 3), grad_kernel


def fusion_pays(x: Tensor, c_up: int, c_out: int) -> bool:
    """True when the sub-pixel path needs under :data:`FUSE_BELOW` of the reference's
    multiply-adds for input ``x`` (it does at the wide levels, not at the deepest)."""
    n, c_in, sx, sy, sz = x.shape
    reference = n * 8 * sx * sy * sz * (c_up * 27 * c_out + c_in * c_up)
    fused = n * (sx + 2) * (sy + 2) * (sz + 2) * (c_in + 1) * 64 * c_out + 216 * c_out * c_up * (
        c_in + 1
    )
    return fused < FUSE_BELOW * reference


class FastUpTransition(UpTransition):
    """A models ``UpTransition`` whose forward is computed as described in the module
    docstring (installed by :func:`use_fast_decoder`; same attributes and parameters)."""

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        first = self.ops[0]
        conv = first.conv1
        c_up = self.up_conv.out_channels
        dev = x.device.type  # the GEMMs below write fp32: no fusion under autocast
        autocast = torch.amp.is_autocast_available(dev) and torch.is_autocast_enabled(dev)
        if not autocast and fusion_pays(x, c_up, conv.out_channels):
            kernel = subpixel_kernel(conv.weight[:, :c_up], self.up_conv.weight, self.up_conv.bias)
            h = F.conv3d(skip, conv.weight[:, c_up:], conv.bias, padding=1)
            h = h + SubPixelConv.apply(x, kernel)
        else:
            up = k2s2_transposed_conv(x, self.up_conv.weight, self.up_conv.bias)
            h = conv(torch.cat((up, skip), dim=1))
        h = first.activation(first.bn1(h))
        for layer in self.ops[1:]:
            h = layer(h)
        return h


def _eligible(m: nn.Module) -> bool:
    if type(m) is not UpTransition:
        return False
    up, first = m.up_conv, m.ops[0]
    conv = getattr(first, "conv1", None)
    return (
        isinstance(up, nn.ConvTranspose3d)
        and up.kernel_size == (2, 2, 2)
        and up.stride == (2, 2, 2)
        and up.padding == (0, 0, 0)
        and up.bias is not None
        and up.output_padding == (0, 0, 0)
        and up.groups == 1
        and isinstance(conv, nn.Conv3d)
        and conv.kernel_size == (3, 3, 3)
        and conv.padding == (1, 1, 1)
        and conv.stride == (1, 1, 1)
        and conv.groups == 1
        and conv.dilation == (1, 1, 1)
        and conv.in_channels > up.out_channels
        and hasattr(first, "bn1")
        and hasattr(first, "activation")
    )


def use_fast_decoder(model: nn.Module) -> int:
    """Switch every eligible decoder level of ``model`` to :class:`FastUpTransition` (in place:
    parameters, optimiser state and checkpoints are unaffected). Returns how many."""
    switched = 0
    for m in model.modules():
        if _eligible(m):
            m.__class__ = FastUpTransition
            switched += 1
    return switched


def cpu_settings() -> None:
    """Flush denormal floats to zero: tiny gradients late in training otherwise slow x86 float
    arithmetic by orders of magnitude (process-wide, harmless for training)."""
    torch.set_flush_denormal(True)
