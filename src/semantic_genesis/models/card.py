"""The model card stored in every checkpoint we write (docs/design.md, "file contracts").

It says what the weights are (architecture, width, channels, classes, head, normalisation), what
they expect as input (patch size, spacing, intensity window, modality) and how they were made
(pretext, semantic add-on, data fingerprint, package version), so a checkpoint can be rebuilt
with ``create_model(**card.model_kwargs())`` without guessing.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Any

from semantic_genesis import __version__


@dataclass
class ModelCard:
    """Everything needed to rebuild and correctly feed a checkpoint's model."""

    architecture: str = "ynet3d"  # registry name for create_model
    width: int = 32  # base channels; 32 = reference
    in_channels: int = 1
    n_classes: int = 44  # pseudo-classes (pre-training) or target classes (fine-tuning)
    out_channels: int = 1  # segmentation / restoration outputs
    norm: str = "batch"
    head: str = "torch"
    patch_size: tuple[int, int, int] = (64, 64, 32)
    spacing: tuple[float, float, float] | None = None  # None = native spacing kept
    intensity_window: tuple[float, float] | None = (-1000.0, 1000.0)  # HU window for CT
    modality: str = "ct"
    pretext: str = "genesis"
    semantic: bool = True
    data_fingerprint: str = ""
    package_version: str = __version__
    notes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, so the card survives ``torch.load(weights_only=True)``."""
        d = dataclasses.asdict(self)
        for key in ("patch_size", "spacing", "intensity_window"):
            if d[key] is not None:
                d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        """Rebuild a card; keys this version does not know are kept in ``notes`` with a warning."""
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        unknown = {k: v for k, v in data.items() if k not in names}
        if unknown:
            warnings.warn(
                f"model card has keys this version does not know: {sorted(unknown)}", stacklevel=2
            )
        for key in ("patch_size", "spacing", "intensity_window"):
            if known.get(key) is not None:
                known[key] = tuple(known[key])
        card = cls(**known)
        card.notes = {**card.notes, **unknown}
        return card

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``create_model`` that rebuild this architecture."""
        return {
            "name": self.architecture,
            "width": self.width,
            "in_channels": self.in_channels,
            "n_classes": self.n_classes,
            "norm": self.norm,
            "head": self.head,
            "out_channels": self.out_channels,
        }
