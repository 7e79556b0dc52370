"""The fine-tuned network and the recipe its inputs need, read from a checkpoint's model card.

A checkpoint that ``semgen finetune`` writes (``model.pt``, ``checkpoints/best.pt``) carries a
model card (docs/design.md, file contracts) naming the network (architecture, backbone family,
width, labels), the task (``pretext`` ``finetune-segment`` or ``finetune-classify``) and what the
weights expect as input: patch size, spacing (None = the scan's own, as the reference fine-tunes
at native spacing, method.md §1), modality and HU window (method.md §1: [-1000, 1000] -> [0, 1]).
The network is rebuilt from the card and loaded strictly, only through
``torch.load(weights_only=True)`` (``models.read_weights``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from semantic_genesis.models.card import ModelCard
from semantic_genesis.predict.config import DEFAULT_ORIENTATION, PredictConfig, valid_orientation
from semantic_genesis.utils.errors import SemgenError

#: the intensity recipes a card may name (``auto``: guessed per scan, as fine-tuning does)
MODALITIES = ("auto", "ct", "mr", "none")
TASKS = {"finetune-segment": "segment", "finetune-classify": "classify"}


@dataclass
class Predictor:
    """A loaded network with the input recipe resolved (config over card)."""

    model: nn.Module
    card: ModelCard
    task: str  # "segment" or "classify"
    path: Path
    sha256: str
    spacing: tuple[float, float, float] | None
    orientation: str
    modality: str
    window: tuple[float, float]
    patch: tuple[int, int, int]
    n_labels: int  # segmentation: labels incl. background; classification: 1

    def recipe(self) -> dict[str, Any]:
        """What decides a case's output besides the scan: stored in every case's sidecar and
        compared on resume (a case made with another recipe or other weights is redone)."""
        return {
            "checkpoint_sha256": self.sha256,
            "spacing": None if self.spacing is None else list(self.spacing),
            "orientation": self.orientation,
            "modality": self.modality,
            "window": list(self.window),
            "patch": list(self.patch),
        }


def load_predictor(path: str | Path, config: PredictConfig) -> Predictor:
    """Rebuild and load the network of a fine-tuned checkpoint; resolve the input recipe.

    Raises:
        SemgenError: the file is not a checkpoint of ours with a model card, was not fine-tuned
            (a pre-trained checkpoint restores images, it does not segment), its weights do not
            fit the network its card names, or the patch does not fit the network.
    """
    from semantic_genesis.io.formats import sha256_of
    from semantic_genesis.models.backbone import check_input_size
    from semantic_genesis.models.registry import create_model, model_kwargs_of
    from semantic_genesis.models.weights import load_weights, read_weights

    path = Path(path)
    src = read_weights(path)
    if not src.card:
        raise SemgenError("has no model card: `semgen predict` needs a checkpoint written by "
                          "`semgen finetune` (model.pt or checkpoints/best.pt)", path)
    card = ModelCard.from_dict(src.card, path)
    task = TASKS.get(card.pretext)
    if task is None:
        raise SemgenError(f"is not a fine-tuned checkpoint (its card says pretext "
                          f"{card.pretext!r}); fine-tune it with `semgen finetune` first", path)
    kwargs = model_kwargs_of(src, card)  # the card's fields and a family's own arguments
    n_labels = 1
    if task == "segment":
        n_labels = max(2, card.n_classes)
        kwargs["out_channels"] = 1 if n_labels == 2 else n_labels  # as finetune builds it
    model = create_model(**kwargs)
    load_weights(model, src, strict=True)
    modality = config.modality or card.modality
    if modality not in MODALITIES:
        raise SemgenError(f"model card field modality {modality!r} is not one of "
                          f"{', '.join(MODALITIES)}; pass --modality", path)
    patch = tuple(int(p) for p in (config.patch or card.patch_size))
    check_input_size(model, patch, "patch", str(path))
    return Predictor(
        model=model,
        card=card,
        task=task,
        path=path,
        sha256=sha256_of([path]),
        spacing=_spacing(config, card),
        orientation=_orientation(config, card, path),
        modality=modality,
        window=tuple(config.window or card.intensity_window or (-1000.0, 1000.0)),
        patch=patch,  # type: ignore[arg-type]
        n_labels=n_labels,
    )


def _spacing(config: PredictConfig, card: ModelCard) -> tuple[float, float, float] | None:
    chosen = config.spacing or card.spacing
    return None if chosen is None else tuple(float(s) for s in chosen)  # type: ignore[return-value]


def _orientation(config: PredictConfig, card: ModelCard, path: Path) -> str:
    """The config's orientation, else the card's ``notes["orientation"]`` (the orientation the
    weights were trained in, where the card records it), else LPS."""
    if config.orientation:
        return config.orientation
    code = card.notes.get("orientation")
    if code is None:
        return DEFAULT_ORIENTATION
    if not isinstance(code, str) or not valid_orientation(code):
        raise SemgenError(f"model card notes['orientation'] = {code!r} is not an orientation "
                          "code (e.g. LPS) nor 'native'; pass --orientation", path)
    return code


def resolve_device(name: str) -> torch.device:
    """The device to run on (``auto``: the first GPU when there is one)."""
    from semantic_genesis.finetune.tasks.common import resolve_device as resolve

    return resolve(name)
