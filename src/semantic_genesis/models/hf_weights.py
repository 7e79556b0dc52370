"""Reading Hugging Face-format weights: a folder (``config.json`` + ``model.safetensors``), a
``.safetensors`` file, or ``hf-hub:ORG/NAME[@REVISION]`` (design.md, "Hugging Face-format
weights"; the writer is ``semantic_genesis.bridges.hf``).

Safetensors holds tensors and a JSON header only, so reading it never unpickles anything (unlike
a ``.pt``). ``read_weights`` calls :func:`read_hf_files` for these sources; this module imports
nothing of ``weights`` so the two form no import cycle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from semantic_genesis.models.card import ModelCard
from semantic_genesis.utils.errors import SemgenError

CONFIG, WEIGHTS, README = "config.json", "model.safetensors", "README.md"
HUB_PREFIX = "hf-hub:"
#: keys config.json has besides the model card's fields (bridges/hf.py ``hf_config``)
EXTRA_KEYS = ("architectures", "library_name", "model_type")


def is_hf_source(source: str | Path) -> bool:
    """Whether ``source`` is an ``hf-hub:`` id, a folder or a ``.safetensors`` file."""
    if isinstance(source, str) and source.startswith(HUB_PREFIX):
        return True
    path = Path(source)
    return path.is_dir() or path.suffix.lower() == ".safetensors"


def hub_folder(spec: str) -> Path:
    """Download (or find in the cache) ``hf-hub:ORG/NAME[@REVISION]``; return its local folder.

    Only ``config.json``, ``model.safetensors`` and ``README.md`` are fetched. With
    ``HF_HUB_OFFLINE=1`` the Hub cache (``HF_HUB_CACHE``) alone is used.

    Raises:
        SemgenError: a malformed id, or a repository / revision that cannot be had (offline and
            not cached, missing, private without a token).
    """
    from huggingface_hub import snapshot_download

    repo, _, revision = spec.removeprefix(HUB_PREFIX).partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise SemgenError(f"expected {HUB_PREFIX}ORG/NAME or {HUB_PREFIX}ORG/NAME@REVISION, "
                          f"got {spec!r}")
    try:
        folder = snapshot_download(repo, revision=revision or None,
                                   allow_patterns=[CONFIG, WEIGHTS, README])
    except Exception as exc:  # noqa: BLE001 - the hub raises many kinds (HTTP, offline, auth)
        detail = (str(exc).strip().splitlines() or [""])[0].split(". ")[0][:200]
        raise SemgenError(f"cannot get the weights from the Hugging Face Hub "
                          f"({type(exc).__name__}{': ' + detail if detail else ''})",
                          spec) from None
    return Path(folder)


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise SemgenError(f"cannot be read ({exc.strerror})", path) from None
    except ValueError as exc:
        raise SemgenError(f"not valid JSON ({exc})", path) from None
    if not isinstance(data, dict):
        raise SemgenError(f"expected a JSON object, got {type(data).__name__}", path)
    return {k: v for k, v in data.items() if k not in EXTRA_KEYS}


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if not path.is_file():
        raise SemgenError("not found (a Hugging Face-format folder holds model.safetensors and "
                          "config.json)", path)
    try:
        return load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - SafetensorError, OSError, ValueError ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise SemgenError(f"not a readable safetensors file ({first})", path) from None


def read_hf_files(source: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None,
                                               str]:
    """Read Hugging Face-format weights: an ``hf-hub:`` id, a folder, or a ``.safetensors`` file.

    A folder must hold ``model.safetensors``; its ``config.json`` (the model card) is read when
    present, so ``create_model(None, ...)`` and ``load_model`` can rebuild the architecture and
    loading is strict. A lone ``.safetensors`` file is a plain state dict (no card).

    Returns:
        ``(state dict, model card dict or None, format name)``.

    Raises:
        SemgenError: a missing or unreadable file, or a config that is not a valid model card.
    """
    if isinstance(source, str) and source.startswith(HUB_PREFIX):
        folder: Path | None = hub_folder(source)
    else:
        folder = Path(source) if Path(source).is_dir() else None
    weights = folder / WEIGHTS if folder is not None else Path(source)
    if folder is not None and not weights.is_file():
        raise SemgenError("is a folder, not a checkpoint file, and holds no model.safetensors "
                          "(a Hugging Face-format folder holds it and config.json)", folder)
    card = None
    if folder is not None and (folder / CONFIG).is_file():
        card = _read_config(folder / CONFIG)
        ModelCard.from_dict(card, folder / CONFIG)  # one clear line for a bad field
    state = _load_safetensors(weights)
    fmt = "Hugging Face folder (safetensors)" if folder is not None else "safetensors file"
    return state, card, fmt
