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

from semantic_genesis.utils.errors import SemgenError

PRETEXTS = ("genesis", "inpaint", "shuffle", "rotation", "identity", "none")
RESTORING = ("genesis", "inpaint", "shuffle", "identity")
AMP_MODES = ("auto", "bf16", "fp16", "none")

#: config fields that may change when a run is resumed (everything else must match).
RESUMABLE_CHANGES = frozenset(
    {"epochs", "workers", "resume", "overwrite", "compile", "device", "figures", "patience", "init"}
)


@dataclass
class PretrainConfig:
    """Settings of one pre-training run (stored as ``pretrain-config.yaml`` with the run).

    Defaults are the reference's (method.md §5.1): λ_rec 1, λ_cls 0.01, Adam 1e-3, StepLR every
    40 epochs ×0.5, early stopping with patience 50 on the validation loss, batch 64.
    """

    pretext: str = "genesis"  # genesis | inpaint | shuffle | rotation | identity | none
    semantic: bool = True  # add self-classification of the discovered classes
    preset: str | None = None  # perturbation preset; None = the pretext's default (see table)
    lambda_rec: float = 1.0  # weight of the restoration MSE (or rotation CE)
    lambda_cls: float = 0.01  # weight of the pseudo-class cross-entropy
    width: int = 32  # base channels (32 = reference)
    norm: str = "batch"
    head: str = "torch"
    epochs: int = 10000  # maximum; early stopping usually ends the run (method.md §5.1)
    batch_size: int = 64  # per optimiser step, over all processes and micro-batches
    accumulate: int = 1  # micro-batches per optimiser step
    lr: float = 1e-3
    lr_step: int = 40  # StepLR step in epochs (reference: int(0.8 * patience))
    lr_gamma: float = 0.5
    patience: int = 50  # epochs without validation improvement before stopping
    min_delta: float = 0.0
    amp: str = "auto"  # auto (bf16 on GPU, none on CPU) | bf16 | fp16 | none
    compile: bool = False  # torch.compile the model
    channels_last: bool = True  # torch.channels_last_3d for model and inputs
    fast_decoder: bool = True  # on CPU, decoder up-sampling as sub-pixel GEMMs (engine/speed.py)
    workers: int = 0  # DataLoader worker processes
    multires: bool = True  # multi-resolution training crops (method.md §2.5)
    warp_target: bool = False  # warp the target with the input (reference: input only, §3.2)
    init: str | None = None  # initialise the backbone from this checkpoint
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    figures: bool = True  # curves.png and restorations.png every epoch
    resume: bool = False  # continue from out/checkpoints/last.pt
    overwrite: bool = False  # replace an existing run folder's outputs

    def validate(self) -> None:
        """Refuse settings that cannot work, with one clear line each."""
        if self.pretext not in PRETEXTS:
            raise SemgenError(f"unknown pretext '{self.pretext}'; choose {', '.join(PRETEXTS)}")
        if self.pretext == "none" and not self.semantic:
            raise SemgenError("--pretext none --no-semantic leaves nothing to learn")
        if self.amp not in AMP_MODES:
            raise SemgenError(f"unknown amp mode '{self.amp}'; choose {', '.join(AMP_MODES)}")
        for name in ("width", "epochs", "batch_size", "accumulate", "lr_step", "patience"):
            if getattr(self, name) < 1:
                raise SemgenError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lambda_rec < 0 or self.lambda_cls < 0:
            raise SemgenError("loss weights must not be negative")
        if self.lr <= 0:
            raise SemgenError(f"lr must be positive, got {self.lr}")


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
