"""The compiled CPU kernels of the perturbations (``csrc/``), reached through ctypes.

``pip install`` compiles ``csrc/*.c`` into the extension ``semantic_genesis.transforms._native``
when a C compiler is there (``setup.py``; the build is optional, so an install never fails for
want of one). Three kernels, each one pass over a float32 cube where torch needs several:

- :func:`warp_batch`, the elastic warp (:class:`~semantic_genesis.transforms.ElasticDeform`),
  in place of ATen's ``grid_sample`` (what it computes and why: the top of ``csrc/warp.c``);
- :func:`lut`, the Bézier mapping's table look-up
  (:class:`~semantic_genesis.transforms.BezierIntensity`);
- :func:`uniform`, the painting noise (``painting.uniform_noise``).

The perturbations use them on CPU float32 tensors, and fall back to their torch/numpy code where
the kernels are missing, for other dtypes and devices, or when ``SEMGEN_NATIVE=0`` is set (the
benchmarks time both). Warp and look-up agree with the fallbacks to float32 rounding
(tests/transforms/test_native.py); the noise is another stream of the same distribution, so a
seed gives the same painting with the kernels and another one without them.
Each kernel has an AVX2 path and a one-value-at-a-time path with the same results.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os

import torch

_ENV = "SEMGEN_NATIVE"
_MISSING = "the native kernels were not built (see semantic_genesis.transforms.native)"


@functools.lru_cache(maxsize=1)
def _library() -> ctypes.CDLL | None:
    """The compiled kernel, or None if it was not built."""
    spec = importlib.util.find_spec("semantic_genesis.transforms._native")
    if spec is None or not spec.origin:
        return None
    try:
        lib = ctypes.CDLL(spec.origin)
    except OSError:
        return None
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    lib.sg_warp.argtypes = [ptr] * 5 + [i64] * 11 + [ctypes.c_int]
    lib.sg_warp.restype = ctypes.c_int
    lib.sg_warp_scratch.argtypes = [i64] * 4
    lib.sg_warp_scratch.restype = i64
    lib.sg_simd.argtypes = []
    lib.sg_simd.restype = ctypes.c_int
    lib.sg_lut.argtypes = [ptr, ptr, i64, ptr, i64, ctypes.c_int]
    lib.sg_lut.restype = None
    lib.sg_uniform.argtypes = [ptr, i64, ctypes.c_uint64, ctypes.c_int]
    lib.sg_uniform.restype = None
    return lib


def _built_library() -> ctypes.CDLL:
    """The compiled kernels, or a clear error if they were not built."""
    lib = _library()
    if lib is None:
        raise RuntimeError(_MISSING)
    return lib


def built() -> bool:
    """Whether the kernel was compiled at install time."""
    return _library() is not None


def available() -> bool:
    """Whether the perturbations use the kernels: they were built, and ``SEMGEN_NATIVE`` is
    not ``0``."""
    return os.environ.get(_ENV, "1") != "0" and built()


def usable(x: torch.Tensor) -> bool:
    """Whether the kernels take ``x``: a float32 CPU tensor, and :func:`available`."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and available()


@functools.lru_cache(maxsize=1)
def simd() -> bool:
    """Whether the kernels run their AVX2 paths on this CPU (else one value at a time)."""
    lib = _library()
    return bool(lib is not None and lib.sg_simd())


def warps(x: torch.Tensor) -> bool:
    """Whether :class:`ElasticDeform` warps ``x`` with the kernel: :func:`usable`, and with
    AVX2 (the one-voxel-at-a-time warp, about 40 ns per voxel, is slower than grid_sample)."""
    return usable(x) and simd()


def describe() -> str:
    """One line for benchmark reports: what CPU float32 cubes get."""
    if not built():
        return "torch (kernels not built)"
    if not available():
        return f"torch ({_ENV}=0)"
    return "native kernels (AVX2)" if simd() else "native kernels (no AVX2: grid_sample warps)"


def warp_batch(
    x: torch.Tensor,
    out: torch.Tensor,
    field: torch.Tensor,
    azt: torch.Tensor,
    index: list[int],
    boxes: list[list[int]] | None = None,
    vectorised: bool = True,
    dest: list[int] | None = None,
) -> None:
    """Warp cubes ``x[index[i]]`` into ``out[dest[i]]`` (``out[i]`` without ``dest``), each
    with its own ``field[index[i]]``.

    ``x`` ``(N, C, X, Y, Z)``, ``field`` ``(N, 2, c, X, Y)`` and ``azt`` ``(c, Z)`` give the
    displacement in voxels, ``d[k, x, y, z] = sum_j field[k, j, x, y] azt[j, z]`` (``k = 0``
    along Y, ``1`` along X); ``out`` is ``(M, C, X, Y, Z)``, another tensor than ``x``.
    ``boxes[i]`` = (x0, y0, z0, x1, y1, z1) limits that output to the box (the rest of it is
    left as it is). ``vectorised=False`` runs the one-voxel-at-a-time path (for tests). The
    tensors are checked here, once: the kernel trusts its pointers."""
    lib = _built_library()
    n, c, sx, sy, sz = x.shape
    nc = azt.shape[0]
    x, field, azt = x.contiguous(), field.contiguous(), azt.contiguous()
    dest = list(range(len(index))) if dest is None else dest
    m = out.shape[0] if out.ndim == 5 else -1
    for name, t, shape in (
        ("x", x, (n, c, sx, sy, sz)),
        ("out", out, (m, c, sx, sy, sz)),
        ("field", field, (n, 2, nc, sx, sy)),
        ("azt", azt, (nc, sz)),
    ):
        if tuple(t.shape) != shape or t.dtype != torch.float32 or t.device.type != "cpu":
            raise ValueError(f"warp_batch: {name} must be a float32 CPU tensor of shape {shape}")
    if not out.is_contiguous():
        raise ValueError("warp_batch: out must be contiguous")
    if any(not 0 <= i < n for i in index):
        raise ValueError(f"warp_batch: index {index} out of range for {n} cubes")
    if len(dest) != len(index) or any(not 0 <= i < m for i in dest):
        raise ValueError(f"warp_batch: dest {dest} does not match index {index} and out")
    if out.data_ptr() == x.data_ptr():
        raise ValueError("warp_batch: out must be another tensor than x")
    if boxes is not None and len(boxes) != len(index):
        raise ValueError(f"warp_batch: {len(boxes)} boxes for {len(index)} cubes")
    for b in boxes or ():
        x0, y0, z0, x1, y1, z1 = b
        if not (0 <= x0 <= x1 <= sx and 0 <= y0 <= y1 <= sy and 0 <= z0 <= z1 <= sz):
            raise ValueError(f"warp_batch: box {b} is outside the cube {(sx, sy, sz)}")
    buffer = torch.empty(lib.sg_warp_scratch(c, sx, sy, sz), dtype=torch.float32)
    cube, one_field = 4 * x[0].numel(), 4 * field[0].numel()
    xp, op, fp = x.data_ptr(), out.data_ptr(), field.data_ptr()
    ap, bp = azt.data_ptr(), buffer.data_ptr()
    whole = (0, 0, 0, sx, sy, sz)
    for i, (s, d) in enumerate(zip(index, dest, strict=True)):
        x0, y0, z0, x1, y1, z1 = boxes[i] if boxes else whole
        lib.sg_warp(
            xp + s * cube, op + d * cube, fp + s * one_field, ap, bp,
            c, sx, sy, sz, nc, x0, x1, y0, y1, z0, z1, int(vectorised),
        )  # fmt: skip


def _checked(name: str, t: torch.Tensor) -> torch.Tensor:
    if t.dtype != torch.float32 or t.device.type != "cpu" or not t.is_contiguous():
        raise ValueError(f"{name} must be a contiguous float32 CPU tensor")
    return t


def lut(
    x: torch.Tensor,
    table: torch.Tensor,
    slope: torch.Tensor,
    out: torch.Tensor | None = None,
    vectorised: bool = True,
) -> torch.Tensor:
    """The piecewise-linear map of each value of ``x`` (any shape) through ``table`` and
    ``slope`` (``(K,)``): ``p = clip(v, 0, 1) (K - 1)``, ``table[floor p] + slope[floor p]
    (p - floor p)``, as :meth:`BezierIntensity.apply` defines it; into ``out`` if given (a
    contiguous tensor of the same size)."""
    lib = _built_library()
    if table.shape != slope.shape or table.ndim != 1 or table.numel() < 1:
        raise ValueError("lut: table and slope must be two 1-D tensors of the same length")
    src = _checked("lut: x", x.contiguous())
    pairs = torch.stack([table, slope], dim=1).float().contiguous()
    if out is None:
        out = torch.empty_like(src)
    elif out.numel() != src.numel():
        raise ValueError("lut: out must have as many values as x")
    _checked("lut: out", out)
    lib.sg_lut(
        src.data_ptr(), out.data_ptr(), src.numel(), pairs.data_ptr(), len(table), int(vectorised)
    )
    return out


def uniform(
    count: int, seed: int, vectorised: bool = True, out: torch.Tensor | None = None
) -> torch.Tensor:
    """``count`` float32 values ``k / 2**23``, ``k`` uniform in ``[0, 2**23)``, from ``seed``
    (a 64-bit integer; see the top of ``csrc/pointwise.c``); into ``out`` if given (a
    contiguous float32 CPU tensor of ``count`` values, any shape)."""
    lib = _built_library()
    if out is None:
        out = torch.empty(int(count), dtype=torch.float32)
    elif out.numel() != count:
        raise ValueError("uniform: out must have count values")
    _checked("uniform: out", out)
    lib.sg_uniform(out.data_ptr(), out.numel(), int(seed) & (2**64 - 1), int(vectorised))
    return out
