"""Settings of ``semgen discover`` (stored with its outputs as ``discover-config.yaml``)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import numbers
import os
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
from semantic_genesis.prepare.groups import DEFAULT_EXCLUDED_GROUPS, normalise_groups
from semantic_genesis.pretrain.data import PATCH_MULTIPLE
from semantic_genesis.utils.config import setting, to_dict, validate
from semantic_genesis.utils.device import DEVICE_CHOICES, check_device
from semantic_genesis.utils.errors import SemgenError

FEATURE_KINDS = ("ae", "encoder")
PROFILES = ("ours", "reference")
#: the values ``profile`` gives the fields left at None (method.md §12): ours are CPU-sized;
#: the reference's are ``train_autoencoder.py``'s budget (at most 10,000 epochs, early stopping
#: after 50, batch 8 as intended, §2.1) and ``self_discovery``'s minimum class distance of 5
#: voxels (§9.5)
PROFILE_VALUES: dict[str, dict[str, Any]] = {
    "ours": {"ae_epochs": 20, "ae_patience": 5, "ae_batch": 2, "min_distance": 16.0},
    "reference": {"ae_epochs": 10_000, "ae_patience": 50, "ae_batch": 8, "min_distance": 5.0,
                  "ae_width": 32, "ae_shape": (128, 128, 64)},
}
#: ``ae_shape`` 0 0 0: 128 x 128 x 64 (method.md §2.1) with a GPU, 64 x 64 x 32 on a CPU
AUTO_SHAPE = (0, 0, 0)
GPU_AE_SHAPE = (128, 128, 64)
CPU_AE_SHAPE = (64, 64, 32)


@dataclass
class DiscoverConfig:
    """Everything that decides which patterns are discovered (method.md §2; defaults = the
    reference unless said otherwise).

    Classes and instances: ``n_classes`` (C = 44, the published model), ``instances`` (K = 200
    training neighbours per class, the reference patient included), ``val_instances`` (30),
    ``patch`` (64 x 64 x 32 base crop; each side a multiple of 8, as pre-training's network
    needs).

    Features: ``features`` is ``ae``, ``encoder`` (with ``encoder_checkpoint``) or the path of a
    features file; ``ae_*`` set the auto-encoder (``ae_width`` 0 = 32, the reference's 512-d
    features, with a GPU and 8 without one; early stopping after ``ae_patience`` epochs, at most
    ``ae_epochs``; the reference's 50 / 10,000 are far too long for a CPU). ``ae_shape`` is the
    size every volume is resized to (each side a multiple of 8); 0 0 0 = 128 x 128 x 64 (§2.1)
    with a GPU and 64 x 64 x 32 without one (8x fewer voxels: an epoch is about 8x cheaper on a
    CPU), chosen like ``ae_width`` and printed.

    ``profile``: ``ours`` (the defaults above) or ``reference``, which gives every field left
    at None (or at its automatic 0) the reference code's value at once (:data:`PROFILE_VALUES`:
    auto-encoder 32 wide on 128 x 128 x 64 volumes, batch 8, at most 10,000 epochs with
    patience 50; minimum class distance 5). A value given explicitly always wins; the stored
    ``discover-config.yaml`` holds the decided values.

    Coordinates: ``trials`` per reference (200), ``border`` and ``border_fraction`` (scaled for
    small volumes, see :mod:`.coordinates`), the air test (``tissue_threshold`` 0.425 = -150 HU,
    ``look_ahead`` 3, ``max_tissue`` 0.15), ``mr_threshold`` for MR's foreground test, and
    ``min_distance`` between class corners in voxels (16 by default; the reference uses 5,
    which lets classes overlap by over 90 %, method.md §9.5).

    Neighbours: ``index`` ``flat`` (exact L2) or ``ivf``; ``small_neighbours`` ``skip`` (a
    neighbour whose volume cannot hold the crop is left out) or ``clamp`` (its crop is moved the
    least needed to fit).

    Leakage: ``exclude_groups`` (LUNA16 subsets 7-9 by default, the target tasks' test scans;
    method.md §1.1) are left out of everything discovery does, so no pattern, and no
    pre-training on the patterns, comes from them.
    """

    n_classes: int = setting(44, ge=1, help="classes C")
    instances: int = setting(200, ge=1, help=(
        "training instances per class K (nearest training patients, the reference included)"))
    val_instances: int = setting(30, ge=0, help="validation instances per class")
    patch: tuple[int, int, int] = setting((64, 64, 32), ge=PATCH_MULTIPLE, help=(
        f"base crop size in voxels (x, y, z), each a multiple of {PATCH_MULTIPLE}"))
    seed: int = setting(0, ge=0, help="random seed")
    features: str = setting("ae", help=(
        "feature source: train the auto-encoder (ae), pool a pre-trained encoder (encoder, "
        "with encoder_checkpoint), or a .npz/.npy/.csv file"))
    encoder_checkpoint: str | None = setting(None, help="checkpoint for features 'encoder'")
    ae_width: int = setting(0, ge=0, help=(
        "auto-encoder base width (features = 16 x width); 0 = 32 with a GPU, 8 without"))
    ae_shape: tuple[int, int, int] = setting(AUTO_SHAPE, ge=0, help=(
        "size volumes are resized to for the auto-encoder (multiples of 8); 0 0 0 = 128 128 64 "
        "with a GPU, 64 64 32 without (about 8x cheaper per epoch on a CPU)"))
    ae_epochs: int | None = setting(None, ge=1, help=(
        "auto-encoder: most epochs (default: 20; --profile reference: 10000)"))
    ae_patience: int | None = setting(None, ge=1, help=(
        "auto-encoder: early-stopping patience in epochs (default: 5; --profile reference: 50)"))
    ae_batch: int | None = setting(None, ge=1, help=(
        "auto-encoder batch size (default: 2; --profile reference: 8)"))
    ae_lr: float = setting(1e-3, gt=0, help="auto-encoder learning rate (Adam)")
    device: str = setting("auto", help=DEVICE_CHOICES)
    trials: int = setting(200, ge=1, help="random corners tried per reference patient")
    min_distance: float | None = setting(None, ge=0, help=(
        "minimum distance between class corners in voxels (default: 16; --profile reference "
        "and the reference code: 5)"))
    profile: str = setting("ours", choices=PROFILES, help=(
        "ours, or reference: the reference code's auto-encoder budget, size and batch and its "
        "minimum class distance, at once (method.md §12); explicit values still win"))
    border: tuple[int, int, int] = setting(REFERENCE_BORDER, ge=0, help=(
        "borders (x, y, z) in voxels that a class corner is drawn inside (reference: 100 100 "
        "30; smaller for small volumes, see border_fraction)"))
    border_fraction: float = setting(0.25, ge=0, le=1, help=(
        "each border is at most this share of the corner's free range"))
    tissue_threshold: float = setting(TISSUE_THRESHOLD, ge=0, le=1, help=(
        "air test: intensity from which a voxel is tissue (0.425 = -150 HU)"))
    look_ahead: int = setting(LOOK_AHEAD, ge=2, help=(
        "air test: slices searched for tissue from each voxel (L, reference: 3)"))
    max_tissue: float = setting(MAX_SCORE, ge=0, le=1, help=(
        "air test: largest accepted tissue fraction of the cube"))
    mr_threshold: float = setting(0.1, ge=0, le=1, help=(
        "MR foreground test: intensity below which a voxel is background"))
    index: str = setting("flat", choices=("flat", "ivf"), help=(
        "FAISS index: exact L2, or inverted file for huge cohorts"))
    small_neighbours: str = setting("skip", choices=("skip", "clamp"), help=(
        "a neighbour whose volume cannot hold the crop: leave it out, or move its crop inside"))
    exclude_groups: tuple[str, ...] = setting(DEFAULT_EXCLUDED_GROUPS, help=(
        "source groups (cohort.csv's group: LUNA16 subsets) whose cases discovery never uses, "
        "so pre-training never sees them; '' = none (method.md §1.1)"))
    montage_classes: int = setting(12, ge=0, help="classes drawn in patterns.png")
    montage_neighbours: int = setting(5, ge=0, help="instances per class drawn in patterns.png")

    def __post_init__(self) -> None:
        # one spelling per value (8 and 8.0, lists and tuples), so settings compare and hash
        # the same whichever way they were given; what cannot be spelled so is left to validate
        for name in ("patch", "border", "ae_shape"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)) and all(
                    isinstance(v, numbers.Integral) or (isinstance(v, float) and v.is_integer())
                    for v in value):
                setattr(self, name, tuple(int(v) for v in value))
        for name in ("min_distance", "border_fraction", "tissue_threshold", "max_tissue",
                     "mr_threshold", "ae_lr"):
            value = getattr(self, name)
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                setattr(self, name, float(value))
        self.exclude_groups = normalise_groups(self.exclude_groups)
        for name in ("features", "encoder_checkpoint"):  # paths are kept as text
            if isinstance(getattr(self, name), os.PathLike):
                setattr(self, name, os.fspath(getattr(self, name)))
        self._apply_profile()
        validate(self)
        check_device(self.device)
        if any(s % PATCH_MULTIPLE for s in self.patch):
            raise SemgenError(
                f"DiscoverConfig.patch = {list(self.patch)}: every side must be a multiple of "
                f"{PATCH_MULTIPLE}, or pre-training cannot use the patterns (its network pools "
                f"each side by 2 three times)")
        if self.ae_shape != AUTO_SHAPE and any(s < 8 or s % 8 for s in self.ae_shape):
            raise SemgenError(f"DiscoverConfig.ae_shape = {list(self.ae_shape)}: sides must be "
                              "multiples of 8 (the auto-encoder pools by 2 three times), or "
                              "0 0 0 for automatic")

    def _apply_profile(self) -> None:
        """Give each field left at None (``ae_width`` 0, ``ae_shape`` 0 0 0: automatic) the
        profile's value (:data:`PROFILE_VALUES`); an unknown profile is left to validate."""
        values = PROFILE_VALUES.get(self.profile, PROFILE_VALUES["ours"])
        unset = {"ae_width": 0, "ae_shape": AUTO_SHAPE}
        for name, value in values.items():
            if getattr(self, name) is None or getattr(self, name) == unset.get(name):
                setattr(self, name, value)

    def check(self) -> None:
        """Refuse settings that depend on files: the feature source must exist."""
        validate(self)
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
#: settings whose effect the fingerprint of the cases used already holds (left out of the keys)
_IN_FINGERPRINT = {"exclude_groups"}
#: the profile: the values it decided are in the keys already
_IN_FINGERPRINT |= {"profile"}
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
         if k not in _PRESENTATION | _IN_FINGERPRINT and (k == "seed" or k not in _FEATURE_FIELDS)}
    # neighbours are searched within the reference's modality (not before this key existed)
    return _digest({"features": feature_key(config, fingerprint), "neighbours": "modality",
                    **d})


def _spell(value: object) -> str:
    return " ".join(map(str, value)) if isinstance(value, tuple) else str(value)


def resolved(config: DiscoverConfig, cuda: bool) -> tuple[DiscoverConfig, list[str]]:
    """``config`` with automatic settings decided (``ae_width`` 0 -> 32 on GPU, 8 on CPU;
    ``ae_shape`` 0 0 0 -> 128 x 128 x 64 on GPU, 64 x 64 x 32 on CPU, about 8x cheaper per
    epoch there), and one line per automatic choice saying what and why."""
    where = "a GPU" if cuda else "no GPU (a CPU-sized choice; set it to override)"
    changes: dict[str, object] = {}
    if not config.ae_width:
        changes["ae_width"] = 32 if cuda else 8
    if config.ae_shape == AUTO_SHAPE:
        changes["ae_shape"] = GPU_AE_SHAPE if cuda else CPU_AE_SHAPE
    notes = [f"--{name.replace('_', '-')} {_spell(value)} chosen automatically: {where}"
             for name, value in changes.items()]
    return dataclasses.replace(config, **changes), notes
