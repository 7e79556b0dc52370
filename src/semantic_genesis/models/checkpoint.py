"""Reading and writing checkpoint files safely.

- Writing is atomic (temporary name, then rename), so a run killed while saving never leaves a
  truncated ``last.pt``.
- Reading always uses ``torch.load(..., weights_only=True)``: only tensors and plain containers
  are unpickled. A file that needs arbitrary Python objects (which could run code) is refused
  with a message that says why, and nothing in it runs.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from semantic_genesis.utils.atomic import atomic_path
from semantic_genesis.utils.errors import SemgenError


def save_checkpoint(obj: dict[str, Any], path: str | Path) -> Path:
    """``torch.save`` ``obj`` to ``path`` atomically."""
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(obj, tmp)
    return Path(path)


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a ``.pt``/``.pth`` file with ``weights_only=True``; return a dict.

    A bare state dict is returned as is; any other non-dict payload is an error.

    Raises:
        SemgenError: the file is missing, corrupt, or needs unsafe unpickling.
    """
    path = Path(path)
    if not path.is_file():
        raise SemgenError("checkpoint not found", path)
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise SemgenError(
            "refused: the file needs arbitrary Python objects to load, which could run code "
            "(torch.load weights_only=True rejected it: "
            f"{str(exc).splitlines()[0][:160]}). Re-save it as a plain state dict.",
            path) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as exc:
        raise SemgenError(f"not a readable PyTorch checkpoint ({str(exc).splitlines()[0][:160]})",
                          path) from None
    if not isinstance(obj, dict):
        raise SemgenError(f"expected a dict (state dict or checkpoint), got {type(obj).__name__}",
                          path)
    return obj
