"""What a pre-training run does: the config, the method it resolves to, and the result.

The paper's methods are flags (method.md §0, §8.2; TransVW's add-on study):

=========================================  =================  =========  ================
method                                     flags              preset     architecture
=========================================  =================  =========  ================
Semantic Genesis                           genesis, semantic  ``sg``     ``ynet3d``
Models Genesis (self-restoration)          genesis, no-sem.   ``mg``     ``unet3d``
Self-classification only (reference `en`)  none, semantic     ``sg``     ``ynet3d`` (enc.)
In-painting / shuffling (+ semantics)      inpaint/shuffle    same name  unet3d / ynet3d
Rotation (+ semantics, TransVW)            rotation           rotation   unet3d / ynet3d
=========================================  =================  =========  ================

Decisions, with their reasons:

- Models Genesis uses the ``mg`` preset (MG's own recipe: flips, 10,000-block shuffling,
  multi-box painting, method.md §3.1), because the paper compares SG and MG as *methods*;
  ``preset`` overrides it (``preset="sg"`` gives the "restoration only" ablation of §8.1).
- Self-classification only trains the encoder and head on *perturbed* cubes with the ``sg``
  preset, as the reference's ``--exp en`` mode does (method.md §4.3); ``preset="identity"``
  gives clean cubes. The decoder is never run.
- Rotation predicts which 3D rotation was applied with its own head on the bottleneck; its
  cross-entropy takes the place of the restoration loss, so ``lambda_rec`` weights it.
- The checkpoint's ``state_dict`` is always the full backbone (``ynet3d`` with semantics,
  ``unet3d`` without), so it loads strictly into ``create_model`` of the architecture named in
  the card; parts a pretext does not use (the decoder for rotation / classification only) stay
  at their initial values. The rotation head is stored beside it (``aux_state_dict``).
- ``batch_size`` is the batch per optimiser step, as in the reference (64, method.md §5.1);
  under torchrun it is split across processes and over ``accumulate`` micro-batches, so the
  same config gives the same optimisation on any number of processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semantic_genesis.models.names import HEADS, NORMS
from semantic_genesis.utils.config import setting
from semantic_genesis.utils.config import validate as check_fields
from semantic_genesis.utils.device import DEVICE_CHOICES, check_device
from semantic_genesis.utils.errors import SemgenError

PRETEXTS = ("genesis", "inpaint", "shuffle", "rotation", "identity", "none")
RESTORING = ("genesis", "inpaint", "shuffle", "identity")
AMP_MODES = ("auto", "bf16", "fp16", "none")
#: largest seed every generator accepts (torch takes 64 bits, numpy's legacy seed is reduced)
MAX_SEED = 2**63 - 1

#: config fields that may change when a run is resumed (everything else must match).
RESUMABLE_CHANGES = frozenset(
    {"epochs", "workers", "resume", "overwrite", "compile", "device", "figures", "patience", "init"}
)


@dataclass
class PretrainConfig:
    """Settings of one pre-training run (stored as ``pretrain-config.yaml`` with the run).

    Defaults are the reference's (method.md §5.1): λ_rec 1, λ_cls 0.01, Adam 1e-3, StepLR every
    40 epochs ×0.5, early stopping with patience 50 on the validation loss, batch 64. Every field
    is checked (type and range) when the config is made, so the CLI, YAML files and the Python
    API refuse a bad value with one line before any work starts.
    """

    pretext: str = setting("genesis", choices=PRETEXTS, help="the restoration/rotation pretext")
    semantic: bool = setting(True, help="add self-classification of the discovered classes")
    preset: str | None = setting(None, help="perturbation preset; None = the pretext's default")
    lambda_rec: float = setting(1.0, ge=0, help="weight of the restoration MSE (or rotation CE)")
    lambda_cls: float = setting(0.01, ge=0, help="weight of the pseudo-class cross-entropy")
    backbone: str = setting(
        "reference", help="network family: reference (UNet3D/YNet3D) or a registered one, e.g. "
        "monai-basicunet (models.registry.list_backbones)")
    width: int = setting(32, ge=1, help="base channels (32 = reference)")
    norm: str = setting("batch", choices=NORMS, help="normalisation layers")
    head: str = setting("torch", choices=HEADS, help="classification head")
    epochs: int = setting(10000, ge=1, help="maximum epochs; early stopping usually ends a run")
    batch_size: int = setting(64, ge=1, help="cubes per optimiser step, over all processes")
    accumulate: int = setting(1, ge=1, help="micro-batches per optimiser step")
    lr: float = setting(1e-3, gt=0, help="Adam learning rate")
    lr_step: int = setting(40, ge=1, help="StepLR step in epochs (reference: 0.8 x patience)")
    lr_gamma: float = setting(0.5, gt=0, le=1, help="StepLR factor, in (0, 1]")
    patience: int = setting(50, ge=1, help="epochs without validation improvement to stop")
    min_delta: float = setting(0.0, ge=0, help="smallest decrease that counts as improvement")
    amp: str = setting("auto", choices=AMP_MODES, help="auto = bf16 on GPU, none on CPU")
    compile: bool = setting(False, help="torch.compile the model")
    channels_last: bool = setting(True, help="torch.channels_last_3d for model and inputs")
    fast_decoder: bool = setting(True, help="on CPU, decoder up-sampling as sub-pixel GEMMs")
    workers: int = setting(0, ge=0, help="DataLoader worker processes")
    multires: bool = setting(True, help="multi-resolution training crops (method.md §2.5)")
    warp_target: bool = setting(False, help="warp the target with the input (reference: no)")
    init: str | None = setting(None, help="initialise the backbone from this checkpoint")
    seed: int = setting(0, ge=0, le=MAX_SEED, help="seed of every random draw")
    device: str = setting("auto", help=DEVICE_CHOICES)
    figures: bool = setting(True, help="curves.png and restorations.png every epoch")
    resume: bool = setting(False, help="continue from out/checkpoints/last.pt")
    overwrite: bool = setting(False, help="replace an existing run folder's outputs")

    def __post_init__(self) -> None:
        if isinstance(self.init, Path):  # the Python API may pass a path
            self.init = str(self.init)
        self.validate()

    def validate(self) -> None:
        """Refuse settings that cannot work, with one clear line naming the field."""
        check_fields(self)
        if self.pretext == "none" and not self.semantic:
            raise SemgenError("--pretext none --no-semantic leaves nothing to learn")
        if self.resume and self.overwrite:
            raise SemgenError("--resume and --overwrite contradict each other; choose one")
        if self.preset is not None:
            from semantic_genesis.transforms.presets import PRESETS  # imports torch: only here

            if self.preset not in PRESETS:
                raise SemgenError(
                    f"PretrainConfig.preset = {self.preset!r}: must be one of {', '.join(PRESETS)}"
                )
        if self.init is not None and not self.init:
            raise SemgenError("PretrainConfig.init = '': name a checkpoint file or leave it out")
        try:
            check_device(self.device)
        except SemgenError as exc:
            raise SemgenError(f"PretrainConfig.device: {exc}") from None


@dataclass(frozen=True)
class Method:
    """What a config trains: which outputs, which preset, which architecture."""

    restore: bool  # decoder restores the perturbed cube (MSE)
    classify: bool  # head predicts the discovered class (CE)
    rotate: bool  # aux head predicts the rotation (CE)
    preset: str
    architecture: str

    @property
    def name(self) -> str:
        """A short human name, e.g. 'Semantic Genesis' or 'inpaint + semantics'."""
        if self.restore and self.classify and self.preset == "sg":
            return "Semantic Genesis"
        if self.restore and not self.classify and self.preset == "mg":
            return "Models Genesis"
        if not self.restore and not self.rotate:
            return "self-classification"
        base = "rotation" if self.rotate else f"restoration ({self.preset})"
        return f"{base} + semantics" if self.classify else base


def resolve_method(config: PretrainConfig) -> Method:
    """Turn the pretext/semantic flags into a :class:`Method` (table in the module docstring)."""
    config.validate()
    default_preset = {"genesis": "sg" if config.semantic else "mg", "none": "sg"}
    preset = config.preset or default_preset.get(config.pretext, config.pretext)
    return Method(
        restore=config.pretext in RESTORING,
        classify=config.semantic,
        rotate=config.pretext == "rotation",
        preset=preset,
        architecture="ynet3d" if config.semantic else "unet3d",
    )


@dataclass
class PretrainResult:
    """What a finished run produced (also written to ``run.json``)."""

    out_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    method: str
    epochs_run: int  # epochs completed in total (including before a resume)
    best_epoch: int  # 1-based epoch of best.pt
    best_val_loss: float
    stopped_early: bool
    seconds: float  # wall time of this invocation
    final: dict[str, Any] = field(default_factory=dict)  # last epoch's metrics row
