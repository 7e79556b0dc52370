"""Reading and writing checkpoint files safely.

- Writing is atomic (temporary name, then rename), so a run killed while saving never leaves a
  truncated ``last.pt``.
- :func:`save_model` writes our format: ``state_dict`` (reference key names) + ``model_card``
  (design.md, file contracts) + whatever plain extras a caller adds (optimiser state, epoch).
- Reading always uses ``torch.load(..., weights_only=True)``: only tensors and plain containers
  are unpickled. A file that needs arbitrary Python objects (which could run code) is refused
  with a message that says why, and nothing in it runs.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from semantic_genesis.models.card import ModelCard
from semantic_genesis.utils.atomic import atomic_path
from semantic_genesis.utils.errors import SemgenError


def save_checkpoint(obj: dict[str, Any], path: str | Path) -> Path:
    """``torch.save`` ``obj`` to ``path`` atomically.

    The archive is built in memory and written with Python's own ``write``: torch's zip writer
    reports a full disk as an opaque ``RuntimeError`` ("unexpected pos"), Python as the
    ``OSError`` (ENOSPC) the CLI explains in one line. A failed write leaves no file behind.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path, suffix=".pt") as tmp, open(tmp, "wb") as fh:
        fh.write(buffer.getbuffer())
    return Path(path)


def card_from_model(model: nn.Module, **fields: Any) -> ModelCard:
    """A :class:`ModelCard` describing ``model`` (architecture fields read from the model).

    ``fields`` fill the rest (patch_size, spacing, pretext, data_fingerprint ...).
    """
    head = getattr(model, "clc_out", None)
    kinds = {"UNet3D": "unet", "YNet3D": "ynet", "EncoderClassifier": "encoder"}
    default_name = (
        f"{kinds.get(type(model).__name__, type(model).__name__.lower())}"
        f"{getattr(model, 'spatial_dims', 3)}d"
    )
    arch = {
        "architecture": getattr(model, "model_name", default_name),
        "backbone": getattr(model, "backbone_name", "reference"),
    }
    for key in ("width", "in_channels", "n_classes", "norm", "out_channels"):
        if hasattr(model, key):
            arch[key] = getattr(model, key)
    if head is not None:
        arch["head"] = head.kind
    return ModelCard(**{**arch, **fields})


def save_model(
    path: str | Path, model: nn.Module, card: ModelCard | None = None, **extra: Any
) -> Path:
    """Save ``model`` in our checkpoint format, atomically.

    Args:
        path: destination ``.pt``.
        model: the model (DDP / ``torch.compile`` wrappers are looked through); its state dict
            is stored on the CPU, with the reference key names.
        card: the model card (default: :func:`card_from_model`).
        **extra: more entries (optimizer state, epoch ...); plain types and tensors only, so
            the file loads with ``weights_only=True``.
    """
    model = unwrap_model(model)
    card = card if card is not None else card_from_model(model)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return save_checkpoint({"state_dict": state, "model_card": card.to_dict(), **extra}, path)


#: how each kind of file ``torch.save`` writes begins: a zip archive (since PyTorch 1.6) or a
#: pickle (the legacy format, protocol 2 or later).
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_MAGIC = b"\x80"


def _header_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a ``torch.save`` file, judged from its first bytes (None: it may)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if not head:
        return "not a PyTorch/Keras checkpoint: empty file"
    if head.startswith((_ZIP_MAGIC, _PICKLE_MAGIC)):
        return None
    kind = "text" if all(32 <= b < 127 or b in b"\t\r\n" for b in head) else "unknown data"
    return f"not a PyTorch/Keras checkpoint: the file holds {kind}, not a zip or pickle archive"


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    line = lines[0] if lines else type(exc).__name__
    return line.split(". ")[0][:160]  # torch's zip reader adds paragraphs of advice


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a ``.pt``/``.pth`` file with ``weights_only=True``; return a dict.

    A bare state dict is returned as is; any other non-dict payload is an error. The file's first
    bytes are checked before unpickling, so an empty or text file gets a plain answer.

    Raises:
        SemgenError: the file is missing, empty, corrupt, truncated, or needs unsafe unpickling.
    """
    path = Path(path)
    if path.is_dir():
        raise SemgenError("is a folder, not a checkpoint file", path)
    if not path.is_file():
        raise SemgenError("checkpoint not found", path)
    problem = _header_problem(path)
    if problem:
        raise SemgenError(problem, path)
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        unsafe = [ln for ln in lines if "GLOBAL" in ln]
        if not unsafe:  # not a pickle at all, or a truncated one
            detail = next((ln for ln in lines if "Unsupported" in ln), _first_line(exc))
            raise SemgenError(f"not a readable PyTorch checkpoint ({detail[:160]})", path) from None
        raise SemgenError(
            "refused: the file needs arbitrary Python objects to load, which could run code "
            f"(torch.load weights_only=True rejected it: {unsafe[0][:160]}). Nothing in it was "
            "run; if you trust its source, re-save it as a plain state dict.",
            path,
        ) from None
    except MemoryError:
        raise SemgenError("not enough memory to load this checkpoint", path) from None
    except Exception as exc:  # noqa: BLE001 - a corrupt archive fails in many ways inside torch
        raise SemgenError(
            f"not a readable PyTorch checkpoint (truncated or corrupt: {_first_line(exc)})", path
        ) from None
    if not isinstance(obj, dict):
        raise SemgenError(
            f"expected a dict (state dict or checkpoint), got {type(obj).__name__}", path
        )
    return obj


def nonfinite_tensors(state: dict[str, Any]) -> list[str]:
    """Names of the floating-point tensors in ``state`` that hold a NaN or an infinity."""
    return [
        k
        for k, v in state.items()
        if isinstance(v, torch.Tensor) and v.is_floating_point() and not torch.isfinite(v).all()
    ]


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside DistributedDataParallel / DataParallel / ``torch.compile`` wrappers."""
    while True:
        inner = getattr(model, "_orig_mod", None) or getattr(model, "module", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner
