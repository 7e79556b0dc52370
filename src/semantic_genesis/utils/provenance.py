"""What made an output: package version, libraries, hardware and command line.

Every stage stores this next to its config, so any figure can be traced back.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
from typing import Any


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. under ``taskset`` or a
    container's cpuset), not the machine's total."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def hardware() -> dict[str, Any]:
    """CPU count, memory and the accelerator, if any."""
    import psutil
    import torch

    info: dict[str, Any] = {
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": usable_cpus(),
        "torch_threads": torch.get_num_threads(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cuda": torch.cuda.is_available(),
        "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


#: the libraries whose versions change results, by distribution name (faiss has two)
LIBRARIES = ("torch", "numpy", "scipy", "SimpleITK", "monai", "faiss-cpu", "faiss-gpu",
             "nibabel")


def library_versions() -> dict[str, str]:
    """Installed versions of :data:`LIBRARIES` (those not installed are left out), read from the
    package metadata so nothing heavy is imported."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def native_kernels() -> dict[str, Any]:
    """Whether the perturbations' compiled CPU kernels (``transforms.native``) were built, are
    in use, and run their AVX2 paths, with one line saying what CPU cubes get and why."""
    from semantic_genesis.transforms import native

    built, in_use, avx2 = native.built(), native.available(), native.simd()
    if not built:
        why = ("the extension semantic_genesis.transforms._native is missing (installed "
               "without a C compiler?): torch code runs instead")
    elif not in_use:
        why = "switched off by SEMGEN_NATIVE=0"
    elif not avx2:
        why = "no AVX2 on this CPU: one value at a time, and the elastic warp uses grid_sample"
    else:
        why = "AVX2 paths on this CPU"
    return {
        "built": built,
        "in_use": in_use,
        "avx2": avx2,
        "SEMGEN_NATIVE": os.environ.get("SEMGEN_NATIVE"),
        "summary": native.describe(),
        "reason": why,
    }


def run_info() -> dict[str, Any]:
    """Versions, hardware, the compiled kernels' state, time and command line of this process."""
    import numpy
    import torch

    from semantic_genesis import __version__

    return {
        "semantic_genesis": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "libraries": library_versions(),
        "platform": platform.platform(),
        "hardware": hardware(),
        "native_kernels": native_kernels(),
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv,
    }
