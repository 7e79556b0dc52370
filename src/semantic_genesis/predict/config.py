"""The settings of ``semgen predict`` (docs/design.md, "Predict").

``None`` in ``spacing``, ``modality``, ``window`` and ``patch`` means "the checkpoint's model
card's value" (the recipe the weights were fine-tuned with); a card without a spacing means the
scan's own spacing (the reference fine-tunes at native spacing, method.md §1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from semantic_genesis.utils.config import setting, validate
from semantic_genesis.utils.errors import SemgenError

#: ``orientation`` value that keeps each scan's stored axis order
NATIVE = "native"
_CODE = re.compile(r"^[LR][PA][SI]$|^[LR][SI][PA]$|^[PA][LR][SI]$|^[PA][SI][LR]$"
                   r"|^[SI][LR][PA]$|^[SI][PA][LR]$")


#: the orientation the network sees when neither the config nor the card names one
DEFAULT_ORIENTATION = "LPS"


def valid_orientation(code: str) -> bool:
    """True for ``native`` or a three-letter ITK orientation code (one of L/R, P/A, S/I each)."""
    return code == NATIVE or bool(_CODE.match(code))


@dataclass
class PredictConfig:
    """Everything that decides a prediction (stored in ``predict-config.yaml`` and, for the
    settings that change a case's output, in each case's sidecar)."""

    probabilities: bool = setting(False, help=(
        "also write the foreground probability (one label) or the per-label probabilities "
        "(float32 NIfTI) on the input's grid"))
    montage: bool = setting(False, help=(
        "also write one overlay PNG per case: axial slices with the predicted mask outlined"))
    candidates: str = setting("", help=(
        "classification checkpoint: a LUNA16-style CSV (seriesuid, coordX, coordY, coordZ in "
        "world mm[, class]) whose candidates get a probability each"))
    spacing: tuple[float, float, float] | None = setting(None, gt=0, help=(
        "resample each scan to this voxel size (mm) for the network (default: the model "
        "card's; a card without one: the scan's own)"))
    orientation: str | None = setting(None, help=(
        "axis order and directions the network sees: an ITK orientation code such as LPS or "
        "RAS, or 'native' (each scan's stored order) (default: the model card's "
        "notes['orientation'], else LPS, the order of LUNA16 .mhd files and `semgen phantoms`)"))
    modality: str | None = setting(None, choices=(None, "auto", "ct", "mr", "none"), help=(
        "intensity normalisation: ct (HU window), mr (percentiles), none (values already in "
        "[0, 1]), auto (guess per scan) (default: the model card's)"))
    window: tuple[float, float] | None = setting(None, help=(
        "CT HU window mapped to [0, 1] (default: the model card's)"))
    patch: tuple[int, int, int] | None = setting(None, ge=8, help=(
        "sliding window (default: the model card's patch size)"))
    overlap: float = setting(0.25, ge=0, lt=1, help="overlap of neighbouring windows")
    batch_size: int = setting(4, ge=1, help="windows per forward pass")
    device: str = setting("auto", help="auto, cpu, cuda, cuda:N or mps")

    def __post_init__(self) -> None:
        """Check every field before any work (CLI, YAML and Python alike)."""
        from semantic_genesis.utils.device import check_device

        validate(self)
        name = type(self).__name__
        if self.orientation is not None and not valid_orientation(self.orientation):
            raise SemgenError(f"{name}.orientation = {self.orientation!r}: give '{NATIVE}' or a "
                              "three-letter ITK code naming one of L/R, P/A and S/I each "
                              "(e.g. LPS, RAS)")
        if self.window is not None and not self.window[0] < self.window[1]:
            raise SemgenError(f"{name}.window = {self.window}: low must be below high")
        check_device(self.device)
