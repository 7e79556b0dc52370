"""Check a device name before any work starts.

Every verb that takes ``--device`` (and every config with a ``device`` field) calls
:func:`check_device` first, so ``--device banana`` or ``--device cuda`` on a machine without a GPU
ends in one clear line instead of a traceback deep inside torch, minutes into a run.
"""

from __future__ import annotations

import re

from semantic_genesis.utils.errors import SemgenError

#: The names :func:`check_device` accepts, for help texts and messages.
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"

_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def check_device(name: str) -> str:
    """Return ``name`` unchanged when it is a usable device, else raise :class:`SemgenError`.

    Accepted: ``auto`` (the first GPU when there is one, else the CPU), ``cpu``, ``cuda``,
    ``cuda:N`` and ``mps``. A CUDA name is refused when no CUDA device is available (or, for
    ``cuda:N``, when there are not N + 1 of them); ``mps`` when the MPS backend is not available.
    The name is only checked here, not resolved: ``auto`` stays ``auto``.
    """
    if not isinstance(name, str) or not _PATTERN.match(name):
        raise SemgenError(f"device {name!r} is not one of {DEVICE_CHOICES}")
    if name in ("auto", "cpu"):
        return name
    import torch  # only a GPU name needs torch's view of the machine

    if name == "mps":
        if not torch.backends.mps.is_available():
            raise SemgenError("device 'mps' asked for, but the MPS backend is not available")
        return name
    if not torch.cuda.is_available():
        raise SemgenError(f"device {name!r} asked for, but no CUDA device is available")
    index = int(name.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise SemgenError(
            f"device {name!r} asked for, but only {torch.cuda.device_count()} CUDA device(s) exist"
        )
    return name
