"""The model card stored in every checkpoint we write (docs/design.md, "file contracts").

It says what the weights are (architecture, backbone family, width, channels, classes, head,
normalisation), what they expect as input (patch size, spacing, intensity window, modality) and
how they were made (pretext, semantic add-on, data fingerprint, package version), so a
checkpoint can be rebuilt with ``create_model(**card.model_kwargs())`` without guessing.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semantic_genesis import __version__
from semantic_genesis.models.names import HEADS, NORMS
from semantic_genesis.utils.config import setting, validate
from semantic_genesis.utils.errors import SemgenError


@dataclass
class ModelCard:
    """Everything needed to rebuild and correctly feed a checkpoint's model."""

    architecture: str = setting("ynet3d", help="registry name for create_model")
    backbone: str = setting(
        "reference", help="backbone family (models.backbone); cards without it: reference")
    width: int = setting(32, ge=1, help="base channels; 32 = reference")
    in_channels: int = setting(1, ge=1)
    n_classes: int = setting(44, ge=0, help="pseudo-classes (pre-training) or target classes")
    out_channels: int = setting(1, ge=1, help="segmentation / restoration outputs")
    norm: str = setting("batch", choices=NORMS)
    head: str = setting("torch", choices=HEADS)
    patch_size: tuple[int, int, int] = setting((64, 64, 32), ge=1)
    spacing: tuple[float, float, float] | None = setting(None, gt=0, help="None = native")
    intensity_window: tuple[float, float] | None = (-1000.0, 1000.0)  # HU window for CT
    modality: str = "ct"
    pretext: str = "genesis"
    semantic: bool = True
    method: str = ""  # the pre-training method's registry name ("" before methods had names)
    data_fingerprint: str = ""
    #: hashed ids (prepare.groups.case_hash) of the cases pre-training saw; finetune and
    #: benchmark refuse a target whose test case is among them
    seen_cases: list[str] = field(default_factory=list)
    package_version: str = __version__
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, so the card survives ``torch.load(weights_only=True)``."""
        d = dataclasses.asdict(self)
        for key in ("patch_size", "spacing", "intensity_window"):
            if d[key] is not None:
                d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | Path | None = None) -> ModelCard:
        """Rebuild a card, checking every field's type and range; keys this version does not
        know are kept in ``notes`` with a warning.

        Raises:
            SemgenError: a field has a wrong type or value, named with ``source`` (the file).
        """
        if not isinstance(data, dict):
            raise SemgenError(f"model card is a {type(data).__name__}, not a mapping", source)
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        unknown = {k: v for k, v in data.items() if k not in names}
        if unknown:
            warnings.warn(
                f"model card has keys this version does not know: {sorted(unknown)}", stacklevel=2
            )
        for key in ("patch_size", "spacing", "intensity_window"):
            if isinstance(known.get(key), list):
                known[key] = tuple(known[key])
        try:
            card = cls(**known)
        except SemgenError as exc:
            field_text = exc.reason.removeprefix(f"{cls.__name__}.")
            raise SemgenError(f"model card field {field_text}", source) from None
        if not isinstance(card.notes, dict):
            raise SemgenError("model card field notes is not a mapping", source)
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
