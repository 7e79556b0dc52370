"""Hugging Face-format weights: a folder with ``config.json``, ``model.safetensors``, ``README.md``.

The layout the Hugging Face Hub and timm use (design.md, "Hugging Face-format weights"):

- ``config.json``: the model card (:meth:`ModelCard.to_dict`) plus ``architectures`` (the
  registry name, as transformers writes it) and ``library_name: semantic-genesis`` (the Hub shows
  which library loads the weights);
- ``model.safetensors``: the state dict in reference key names, written with
  ``safetensors.torch.save_file``. Safetensors holds tensors and a JSON header only, so loading
  it can never run code (no pickle at all, unlike a ``.pt``);
- ``README.md``: the human-readable model card (:mod:`~semantic_genesis.bridges.card_text`) with
  the Hub's YAML header.

``create_model(None, pretrained=FOLDER)`` rebuilds the architecture from ``config.json``;
``pretrained="hf-hub:ORG/NAME[@REVISION]"`` fetches the folder through
``huggingface_hub.snapshot_download`` (its cache, so ``HF_HUB_OFFLINE=1`` works from a cache);
the reading is :mod:`semantic_genesis.models.hf_weights` (called by ``read_weights``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from semantic_genesis.bridges.card_text import card_markdown
from semantic_genesis.models.card import ModelCard
from semantic_genesis.models.checkpoint import unwrap_model
from semantic_genesis.models.hf_weights import CONFIG, HUB_PREFIX, README, WEIGHTS
from semantic_genesis.utils.atomic import atomic_path, atomic_write_text, write_json

LIBRARY = "semantic-genesis"

__all__ = ["CONFIG", "HUB_PREFIX", "LIBRARY", "README", "WEIGHTS", "export_hf", "hf_config",
           "hf_readme"]


def hf_config(card: ModelCard) -> dict[str, Any]:
    """``config.json``: the model card plus the keys the Hub and transformers-style tools read."""
    return {"architectures": [card.architecture], "library_name": LIBRARY,
            "model_type": LIBRARY, **card.to_dict()}


def _load_text(card: ModelCard) -> str:
    return (
        "```python\n"
        "from semantic_genesis.models import create_model\n\n"
        "# this folder, or \"hf-hub:ORG/NAME\" once uploaded to the Hub\n"
        "model = create_model(None, pretrained=\"PATH/TO/THIS/FOLDER\")  # prints a load report\n"
        "```\n\n"
        "No pickle is involved: the weights are read with `safetensors.torch.load_file`. "
        f"The architecture (`{card.architecture}`) and its arguments come from `config.json`."
    )


def hf_readme(card: ModelCard, metrics: dict[str, Any] | None = None) -> str:
    """``README.md``: the Hub's YAML header, then :func:`card_markdown`."""
    header = ["---", f"library_name: {LIBRARY}", "tags:", "- medical-imaging", "- 3d",
              "- self-supervised-learning", "- semantic-genesis", f"- {card.modality}", "---", ""]
    return "\n".join(header) + card_markdown(card, _load_text(card), metrics)


def export_hf(model: nn.Module, card: ModelCard, out: str | Path,
              metrics: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (described by ``card``) as a Hugging Face-format folder ``out``.

    Each file is written atomically (a temporary name, then a rename); the weights first and
    ``config.json`` after them, so a folder with a config always has its weights. The caller
    claims ``out`` (:func:`~semantic_genesis.utils.outdir.claim_output`).

    Returns:
        ``out``.
    """
    from safetensors.torch import save_file

    out = Path(out)
    # a copy per key: safetensors refuses tensors sharing memory (nnU-Net's decoder holds the
    # encoder, so its state dict names each encoder tensor twice)
    state = {k: v.detach().cpu().clone(memory_format=torch.contiguous_format)
             for k, v in unwrap_model(model).state_dict().items()}
    with atomic_path(out / WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "library": LIBRARY,
                                             "architecture": card.architecture})
    write_json(out / CONFIG, hf_config(card))
    atomic_write_text(out / README, hf_readme(card, metrics))
    return out
