"""Keep freed memory in the process: glibc ``malloc`` tuning for the training data path.

Why. Every batch of the perturbation presets allocates blocks of a few hundred KiB to a few
MiB (warped cubes, noise, the output batch) and frees them again. By default glibc serves
blocks above its mmap threshold (128 KiB, raised adaptively) with fresh ``mmap`` pages and
trims free memory off the top of the heap, so the next batch touches fresh pages again: on this
project's CI virtual machine the sg preset took 50-180 minor page faults per 64 x 64 x 32 cube,
and each costs microseconds of system time under virtualisation. With the thresholds below the
same batches take no page faults and the sg sample path ran 20-30 % faster
(``benchmarks/bench_transforms.py`` runs with and without, see its ``--malloc`` option).

The cost: memory a process frees stays mapped to it (its resident size stays at its peak
instead of shrinking), and allocations up to ``mmap_threshold`` come from the heap. That is
the right trade for long-running training and data-loader processes, which reach a steady
state; blocks larger than the threshold (whole volumes) are still returned to the system.

``semgen`` applies it to every command (forked data-loader workers inherit it) unless the user
set glibc's own ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` or ``GLIBC_TUNABLES``.
Elsewhere than Linux with glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys

# mallopt parameter numbers from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def keep_freed_memory(
    mmap_threshold: int = 32 << 20, trim_threshold: int = 256 << 20, force: bool = False
) -> bool:
    """Set glibc's mmap threshold and trim threshold (see the module docstring).

    Args:
        mmap_threshold: blocks up to this size come from the heap and are reused after being
            freed (32 MiB, the largest glibc accepts on 64-bit systems).
        trim_threshold: free memory at the top of the heap is returned to the system only
            above this size (256 MiB).
        force: apply even if the user set glibc's own malloc environment variables.

    Returns:
        True if both settings were applied.
    """
    if not sys.platform.startswith("linux"):
        return False
    if not force and any(os.environ.get(name) for name in USER_SETTINGS):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    mmap_ok = mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1
    return mmap_ok and mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1
