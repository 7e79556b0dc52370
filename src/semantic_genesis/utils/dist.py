"""Ranks under ``torchrun``: every stage that loops over patients or batches takes its share.

Outside ``torchrun`` (no ``RANK``/``WORLD_SIZE`` in the environment) everything runs as rank 0 of
1, so the same code serves a laptop and a cluster.
"""

from __future__ import annotations

import datetime
import os
import sys
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def _dist():
    """torch.distributed when a process group is initialised; None otherwise.

    Without torchrun (no WORLD_SIZE, or 1) torch is not even imported, so CLI verbs that do not
    need it start fast.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 and "torch" not in sys.modules:
        return None
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return None
    return dist if dist.is_available() and dist.is_initialized() else None


def rank() -> int:
    """This process's global rank (0 when not distributed)."""
    d = _dist()
    return d.get_rank() if d else int(os.environ.get("RANK", "0"))


def world_size() -> int:
    """Number of processes (1 when not distributed)."""
    d = _dist()
    return d.get_world_size() if d else int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    """Rank on this node; picks the GPU under torchrun."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """True on the process that writes shared outputs (rank 0)."""
    return rank() == 0


def shard(items: Sequence[T]) -> list[T]:
    """This rank's share of ``items`` (round-robin, so shares differ by at most one)."""
    return list(items[rank() :: world_size()])


def init_distributed(backend: str | None = None, timeout_minutes: float = 120.0) -> bool:
    """Initialise the default process group when launched by torchrun; no-op otherwise.

    Args:
        backend: ``nccl`` or ``gloo``; defaults to nccl when CUDA is available, else gloo.
        timeout_minutes: how long a collective (e.g. a barrier while another rank prepares a
            large share of a cohort) may wait before giving up; torch's default is 30 minutes.

    Returns:
        True when a process group is (now) initialised with more than one process.
    """
    import torch
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend=backend,
                                timeout=datetime.timedelta(minutes=timeout_minutes))
    return True


def barrier() -> None:
    """Wait for every rank (no-op when not distributed)."""
    d = _dist()
    if d:
        d.barrier()
