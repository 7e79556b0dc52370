"""Settings of ``semgen discover`` (stored with its outputs as ``discover-config.yaml``)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semantic_genesis.discovery.coordinates import (
    LOOK_AHEAD,
    MAX_SCORE,
    REFERENCE_BORDER,
    TISSUE_THRESHOLD,
    CoordinateRules,
)
from semantic_genesis.utils.config import to_dict
from semantic_genesis.utils.errors import SemgenError

FEATURE_KINDS = ("ae", "encoder")


@dataclass
class DiscoverConfig:
    """Everything that decides which patterns are discovered (method.md §2; defaults = the
    reference unless said otherwise).

    Classes and instances: ``n_classes`` (C = 44, the published model), ``instances`` (K = 200
    training neighbours per class, the reference patient included), ``val_instances`` (30),
    ``patch`` (64 x 64 x 32 base crop).

    Features: ``features`` is ``ae``, ``encoder`` (with ``encoder_checkpoint``) or the path of a
    features file; ``ae_*`` set the auto-encoder (``ae_width`` 0 = 32, the reference's 512-d
    features, with a GPU and 8 without one; early stopping after ``ae_patience`` epochs, at most
    ``ae_epochs``; the reference's 50 / 10,000 are far too long for a CPU). ``ae_shape`` is the
    size every volume is resized to (128 x 128 x 64, §2.1; each side a multiple of 8).

    Coordinates: ``trials`` per reference (200), ``border`` and ``border_fraction`` (scaled for
    small volumes, see :mod:`.coordinates`), the air test (``tissue_threshold`` 0.425 = -150 HU,
    ``look_ahead`` 3, ``max_tissue`` 0.15), ``mr_threshold`` for MR's foreground test, and
    ``min_distance`` between class corners in voxels (16 by default; the reference uses 5,
    which lets classes overlap by over 90 %, method.md §9.5).

    Neighbours: ``index`` ``flat`` (exact L2) or ``ivf``; ``small_neighbours`` ``skip`` (a
    neighbour whose volume cannot hold the crop is left out) or ``clamp`` (its crop is moved the
    least needed to fit).
    """

    n_classes: int = 44
    instances: int = 200
    val_instances: int = 30
    patch: tuple[int, int, int] = (64, 64, 32)
    seed: int = 0
    features: str = "ae"
    encoder_checkpoint: str | None = None
    ae_width: int = 0
    ae_shape: tuple[int, int, int] = (128, 128, 64)
    ae_epochs: int = 20
    ae_patience: int = 5
    ae_batch: int = 2
    ae_lr: float = 1e-3
    device: str = "auto"
    trials: int = 200
    min_distance: float = 16.0
    border: tuple[int, int, int] = REFERENCE_BORDER
    border_fraction: float = 0.25
    tissue_threshold: float = TISSUE_THRESHOLD
    look_ahead: int = LOOK_AHEAD
    max_tissue: float = MAX_SCORE
    mr_threshold: float = 0.1
    index: str = "flat"
    small_neighbours: str = "skip"
    montage_classes: int = 12
    montage_neighbours: int = 5

    def __post_init__(self) -> None:
        # one spelling per value (8 and 8.0, lists and tuples), so settings compare and hash
        # the same whichever way they were given
        for name in ("patch", "border", "ae_shape"):
            setattr(self, name, tuple(int(v) for v in getattr(self, name)))
        for name in ("min_distance", "border_fraction", "tissue_threshold", "max_tissue",
                     "mr_threshold", "ae_lr"):
            setattr(self, name, float(getattr(self, name)))

    def check(self) -> None:
        """Refuse settings that cannot work, with one clear line."""
        if self.n_classes < 1 or self.instances < 1 or self.val_instances < 0:
            raise SemgenError("--classes and --instances must be >= 1, --val-instances >= 0")
        if len(self.patch) != 3 or min(self.patch) < 1:
            raise SemgenError(f"--patch needs three positive sizes, got {self.patch}")
        if self.trials < 1 or self.look_ahead < 2 or not 0 <= self.max_tissue <= 1:
            raise SemgenError("--trials >= 1, look_ahead >= 2 and 0 <= max_tissue <= 1 needed")
        if len(self.ae_shape) != 3 or any(s < 8 or s % 8 for s in self.ae_shape):
            raise SemgenError(f"ae_shape sides must be multiples of 8, got {self.ae_shape}")
        if self.index not in ("flat", "ivf"):
            raise SemgenError(f"unknown index '{self.index}' (use flat or ivf)")
        if self.small_neighbours not in ("skip", "clamp"):
            raise SemgenError(f"unknown small_neighbours '{self.small_neighbours}' "
                              "(use skip or clamp)")
        if self.features not in FEATURE_KINDS and not Path(self.features).is_file():
            raise SemgenError("--features must be ae, encoder or an existing features file "
                              "(.npz, .npy, .csv)", self.features)
        if self.features == "encoder" and not self.encoder_checkpoint:
            raise SemgenError("--features encoder needs --encoder-checkpoint")

    def rules(self) -> CoordinateRules:
        """The coordinate rules these settings describe."""
        return CoordinateRules(patch=tuple(self.patch), border=tuple(self.border),
                               border_fraction=self.border_fraction,
                               look_ahead=self.look_ahead,
                               tissue_threshold=self.tissue_threshold,
                               max_score=self.max_tissue, mr_threshold=self.mr_threshold,
                               trials=self.trials)


#: settings that do not change the result (left out of the resume keys)
_PRESENTATION = {"device", "montage_classes", "montage_neighbours"}
#: settings the features depend on
_FEATURE_FIELDS = {"features", "encoder_checkpoint", "seed", "ae_width", "ae_shape",
                   "ae_epochs", "ae_patience", "ae_batch", "ae_lr"}


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _file_digest(path: str | None) -> str:
    if not path or not Path(path).is_file():
        return ""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def feature_key(config: DiscoverConfig, fingerprint: str) -> str:
    """What the features depend on: their settings, the cohort, and any input file's bytes."""
    if config.features == "ae":
        d = {k: getattr(config, k) for k in sorted(_FEATURE_FIELDS - {"encoder_checkpoint"})}
    elif config.features == "encoder":
        d = {"features": "encoder", "ae_shape": config.ae_shape,
             "checkpoint": _file_digest(config.encoder_checkpoint)}
    else:
        d = {"features": "file", "file": _file_digest(config.features)}
    return _digest({"fingerprint": fingerprint, **d})


def result_key(config: DiscoverConfig, fingerprint: str) -> str:
    """What the discovered classes depend on: every setting but presentation, plus features."""
    d = {k: v for k, v in to_dict(config).items()
         if k not in _PRESENTATION and (k == "seed" or k not in _FEATURE_FIELDS)}
    return _digest({"features": feature_key(config, fingerprint), **d})


def resolved(config: DiscoverConfig, cuda: bool) -> DiscoverConfig:
    """``config`` with automatic settings decided (``ae_width`` 0 -> 32 on GPU, 8 on CPU)."""
    if config.ae_width:
        return config
    return dataclasses.replace(config, ae_width=32 if cuda else 8)
