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
benchmarks time both). Warp and look-up agree with the fallbacks to float32 rounding; the noise
is the same stream either way: :func:`uniform_numpy` computes the kernel's counter-based
generator (:data:`NOISE_STREAM`, defined at the top of ``csrc/pointwise.c``) bit for bit, so on
CPU a seed gives the same perturbed batch with and without the kernels
(tests/transforms/test_native.py, test_streams.py). On other devices the noise is the device's
``torch.rand``; :func:`kernel_status` says which ran, for a run's provenance.
Each kernel has an AVX2 path and a one-value-at-a-time path with the same results.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import sys

import numpy as np
import torch

_ENV = "SEMGEN_NATIVE"
#: the name of the CPU noise stream (kernel and numpy alike; the top of ``csrc/pointwise.c``)
NOISE_STREAM = "splitmix64-counter-v1"
_U64 = 2**64 - 1
_GAMMA = 0x9E3779B97F4A7C15  # splitmix64's increment and the two factors of its output function
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_MISSING = "the native kernels were not built (see semantic_genesis.transforms.native)"
_ABI = 2  # csrc/module.c's sg_abi(): bumped whenever a kernel's arguments or results change


@functools.lru_cache(maxsize=1)
def _load() -> tuple[ctypes.CDLL | None, str]:
    """The compiled kernels and "", or None and why not: not built, not loadable, or built
    from other sources than this module's (an old build left in place: its functions would
    take other arguments, so it is not used)."""
    spec = importlib.util.find_spec("semantic_genesis.transforms._native")
    if spec is None or not spec.origin:
        return None, _MISSING
    try:
        lib = ctypes.CDLL(spec.origin)
    except OSError as exc:
        return None, f"the native kernels did not load: {exc}"
    abi = getattr(lib, "sg_abi", None)
    if abi is None or abi() != _ABI:
        return None, "the native kernels are from another version: reinstall (pip install -e .)"
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    lib.sg_warp.argtypes = [ptr] * 5 + [i64] * 11 + [ctypes.c_int]
    lib.sg_warp.restype = ctypes.c_int
    lib.sg_warp_scratch.argtypes = [i64] * 4
    lib.sg_warp_scratch.restype = i64
    lib.sg_simd.argtypes = []
    lib.sg_simd.restype = ctypes.c_int
    lib.sg_lut.argtypes = [ptr, ptr, i64, ptr, i64, ctypes.c_int]
    lib.sg_lut.restype = None
    lib.sg_uniform.argtypes = [ptr, i64, ctypes.c_uint64, i64, ctypes.c_int]
    lib.sg_uniform.restype = None
    return lib, ""


def _library() -> ctypes.CDLL | None:
    """The compiled kernels, or None if they were not built (or cannot be used)."""
    return _load()[0]


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
    count: int,
    seed: int,
    vectorised: bool = True,
    out: torch.Tensor | None = None,
    offset: int = 0,
) -> torch.Tensor:
    """Values ``offset .. offset + count`` of the noise stream of ``seed`` (a 64-bit integer):
    float32 ``k / 2**23``, ``k`` uniform in ``[0, 2**23)`` (the top of ``csrc/pointwise.c``);
    into ``out`` if given (a contiguous float32 CPU tensor of ``count`` values, any shape).
    Any stretch of the stream can be computed on its own: one call for ``2n`` values equals
    two calls for ``n`` values at offsets ``0`` and ``n``."""
    lib = _built_library()
    if out is None:
        out = torch.empty(int(count), dtype=torch.float32)
    elif out.numel() != count:
        raise ValueError("uniform: out must have count values")
    if offset < 0:
        raise ValueError("uniform: offset must be >= 0")
    _checked("uniform: out", out)
    lib.sg_uniform(out.data_ptr(), out.numel(), int(seed) & _U64, int(offset), int(vectorised))
    return out


_CHUNK = 32768  # words per numpy pass: 256 KiB stay in cache (2x faster than whole arrays)


@functools.lru_cache(maxsize=1)
def _steps() -> np.ndarray:
    """``w * GAMMA`` for the words ``w`` of one chunk (read-only)."""
    steps = np.arange(_CHUNK, dtype=np.uint64) * np.uint64(_GAMMA)
    steps.flags.writeable = False
    return steps


def uniform_numpy(count: int, seed: int, offset: int = 0) -> np.ndarray:
    """:func:`uniform` in numpy, bit for bit (for installs without the kernels): the stream's
    64-bit words (splitmix64 of a counter, ``csrc/pointwise.c``) in chunks that stay in cache,
    each word split into two float32 values."""
    if count < 0 or offset < 0:
        raise ValueError("uniform_numpy: count and offset must be >= 0")
    first = offset // 2
    words = np.empty((offset + count + 1) // 2 - first, dtype=np.uint64)
    scratch = np.empty(min(_CHUNK, len(words)), dtype=np.uint64)
    for start in range(0, len(words), _CHUNK):
        z = words[start : start + _CHUNK]
        t = scratch[: len(z)]
        np.add(_steps()[: len(z)], np.uint64((seed + (first + start + 1) * _GAMMA) & _U64), out=z)
        for shift, factor in ((30, _MIX1), (27, _MIX2), (31, None)):
            np.right_shift(z, np.uint64(shift), out=t)
            z ^= t
            if factor is not None:
                z *= factor
        if sys.byteorder == "big":  # the low half first, as the kernel stores it
            z[:] = (z << np.uint64(32)) | (z >> np.uint64(32))
        bits = z.view(np.uint32)
        bits >>= np.uint32(9)
        bits |= np.uint32(0x3F800000)  # 1.mantissa: a float in [1, 2)
    values = words.view(np.float32)[offset % 2 : offset % 2 + count]
    values -= np.float32(1.0)
    return values


def noise(count: int, seed: int, offset: int = 0) -> torch.Tensor:
    """Values ``offset .. offset + count`` of the noise stream of ``seed`` as a float32 CPU
    tensor: :func:`uniform` where the kernels are :func:`available`, else
    :func:`uniform_numpy` (the same values)."""
    if available():
        return uniform(count, seed, offset=offset)
    return torch.from_numpy(uniform_numpy(count, seed, offset))


def kernel_status(device: torch.device | str = "cpu") -> dict[str, object]:
    """What a run on ``device`` gets, for its provenance (``run_info``, ``semgen info``).

    ``built``: the kernels were compiled and load; ``used``: the perturbations of float32
    batches on ``device`` run them; ``reason``: why not (None when used); ``isa``: ``avx2`` or
    ``scalar`` (None when not built); ``noise_stream``: the painting noise's stream, the same
    on CPU with and without the kernels (:data:`NOISE_STREAM`), else the device's
    ``torch.rand``; ``noise_impl``: what computes it."""
    kind = torch.device(device).type
    lib = _library()
    if kind != "cpu":
        reason = f"the batch is on {kind}: the perturbations run in torch there"
    elif lib is None:
        reason = _load()[1] or _MISSING
    elif not available():
        reason = f"{_ENV}=0"
    else:
        reason = None
    isa = None if lib is None else ("avx2" if simd() else "scalar")
    if kind != "cpu":
        stream, impl = f"torch.rand ({kind})", "torch"
    else:
        stream, impl = NOISE_STREAM, "numpy" if reason else f"C kernel ({isa})"
    return {
        "built": lib is not None,
        "used": reason is None,
        "reason": reason,
        "isa": isa,
        "noise_stream": stream,
        "noise_impl": impl,
    }
