"""``PrepareConfig``: the settings of ``semgen prepare``, checked when made."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from semantic_genesis.io.intensity import MODALITIES
from semantic_genesis.utils.config import setting, to_dict
from semantic_genesis.utils.config import validate as validate_config
from semantic_genesis.utils.errors import SemgenError

#: bump when the per-volume processing changes, so old volumes are redone
RECIPE_VERSION = 1


@dataclass
class PrepareConfig:
    """Settings of ``prepare`` (stored as ``prepare-config.yaml`` with the cohort); checked
    when made, so the CLI, YAML files and the Python API refuse the same values.

    Attributes:
        modality: ``ct`` (HU window), ``mr`` (percentiles), ``none`` (already in [0, 1]) or
            ``auto`` (decided per volume by ``io.detect_modality``).
        spacing: resample to this voxel size (mm, x y z); None keeps native spacing, as the
            reference does (method.md §1).
        val_fraction: share of patients in the ``val`` split (at least one when >= 2 volumes).
        seed: decides the split (a hash of seed and patient id).
        workers: processes per rank.
        dtype: ``float16`` (half the disk, exact enough for [0, 1]) or ``float32``.
        min_shape: smallest usable volume (x, y, z); default one 64x64x32 training cube
            (method.md: the network input).
        npy_spacing: voxel size assumed for ``.npy`` inputs, which store none.
        window: CT HU window (method.md §1), low < high.
        percentiles: MR percentiles mapped to 0 and 1, 0 <= low < high <= 100.
        allow_external_data: read MetaImage/NRRD data files that a header names outside its
            own folder (refused by default: a crafted header could read any file).
    """

    modality: str = setting("auto", choices=(*MODALITIES, "auto"), help=(
        "intensity preset; none = values already in [0, 1], auto = decided per volume"))
    spacing: tuple[float, float, float] | None = setting(None, gt=0, help=(
        "resample to this voxel size in mm (none: keep the native spacing)"))
    val_fraction: float = setting(0.1, ge=0, lt=1, help=(
        "share of patients in the validation split"))
    seed: int = setting(0, ge=0, help="seed of the train/val split")
    workers: int = setting(1, ge=1, help="processes (per torchrun rank)")
    dtype: str = setting("float16", choices=("float16", "float32"), help="stored volume type")
    min_shape: tuple[int, int, int] = setting((64, 64, 32), ge=1, help=(
        "smallest usable volume in voxels"))
    npy_spacing: tuple[float, float, float] = setting((1.0, 1.0, 1.0), gt=0,
                                                      help="voxel size of .npy inputs (mm)")
    window: tuple[float, float] = setting((-1000.0, 1000.0), help=(
        "CT window in HU mapped to [0, 1] (values outside are clipped)"))
    percentiles: tuple[float, float] = setting((0.5, 99.5), ge=0, le=100,
                                               help="MR percentiles mapped to 0 and 1")
    allow_external_data: bool = setting(False, help=(
        "read a MetaImage/NRRD data file that its header names outside the header's folder "
        "(refused by default)"))

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse impossible settings with one line naming the field, value and range."""
        validate_config(self)
        for name in ("window", "percentiles"):
            low, high = getattr(self, name)
            if not low < high:
                raise SemgenError(f"PrepareConfig.{name} = {getattr(self, name)!r}: the low "
                                  "end must be below the high end")

    def recipe(self) -> dict[str, Any]:
        """What determines a stored volume's content (a change redoes the volume)."""
        keep = ("modality", "spacing", "dtype", "min_shape", "npy_spacing", "window",
                "percentiles")
        return {"version": RECIPE_VERSION, **{k: v for k, v in to_dict(self).items() if k in keep}}
