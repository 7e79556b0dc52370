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
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
    return info


def run_info() -> dict[str, Any]:
    """Versions, hardware, time and command line of this process."""
    import numpy
    import torch

    from semantic_genesis import __version__

    return {
        "semantic_genesis": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "hardware": hardware(),
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv,
    }
