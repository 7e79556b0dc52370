"""What a pre-training run does: the config, the method it names, and the result.

A method is a :class:`~semantic_genesis.pretrain.methods.Method` (one module each, in
``pretrain/methods/``), named by ``method`` (``--method NAME``, ``module:Name`` or
``path/file.py:Name``). The earlier flags still work and map onto methods:

=========================================  =====================================
flags                                      method
=========================================  =====================================
``--pretext genesis --semantic``           ``semantic-genesis`` (preset ``sg``)
``--pretext genesis --no-semantic``        ``genesis-restoration`` (preset ``mg``)
``--pretext none --semantic``              ``self-classification`` (preset ``sg``)
``--pretext inpaint|shuffle [--semantic]``  ``inpainting`` / ``shuffling`` [``+semantics``]
``--pretext rotation [--semantic]``         ``rotation`` [``+semantics``] (TransVW add-on)
``--pretext identity [--semantic]``         ``identity`` [``+semantics``]
=========================================  =====================================

Decisions, with their reasons:

- ``models-genesis`` is Models Genesis as its authors trained it (method.md §3.1, §5.4): random
  air-test cubes cut straight from a prepared cohort (``data = "cohort"``, no discovery, 32 per
  scan), the ``mg`` preset, SGD lr 1 momentum 0.9, batch 6. ``genesis-restoration`` (what
  ``--pretext genesis --no-semantic`` names, as before) is the ``mg`` preset on the discovered
  patterns with the SG optimiser: the "restoration only" ablation; ``preset`` overrides a
  method's preset (``preset="sg"`` gives the ablation of §8.1).
- Fields left at None (the optimiser, ``batch_size``, ``lr``, ``lr_step``, ``lr_gamma``,
  ``patience``, ``momentum``, ``norm``, ``redraw_multires``) are decided by ``profile`` and the
  method's recipe (:mod:`.recipe`); the run folder stores the decided values.
- Self-classification only trains the encoder and head on *perturbed* cubes with the ``sg``
  preset, as the reference's ``--exp en`` mode does (method.md §4.3); ``preset="identity"``
  gives clean cubes. The decoder is never run.
- The checkpoint's ``state_dict`` is always the full backbone (``ynet3d`` with semantics,
  ``unet3d`` without), so it loads strictly into ``create_model`` of the architecture named in
  the card; parts a method does not use stay at their initial values. Heads a method adds
  outside the backbone (rotation's) are stored beside it (``aux_state_dict``).
- ``batch_size`` is the batch per optimiser step, as in the reference (64, method.md §5.1);
  under torchrun it is split across processes and over ``accumulate`` micro-batches, so the
  same config gives the same optimisation on any number of processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semantic_genesis.models.names import HEADS, NORMS
from semantic_genesis.prepare.groups import normalise_groups
from semantic_genesis.utils.config import setting
from semantic_genesis.utils.config import validate as check_fields
from semantic_genesis.utils.device import DEVICE_CHOICES, check_device
from semantic_genesis.utils.errors import SemgenError

if TYPE_CHECKING:  # pragma: no cover - types only
    from semantic_genesis.pretrain.methods import Method

PRETEXTS = ("genesis", "inpaint", "shuffle", "rotation", "identity", "none")
#: the method each ``--pretext`` flag names (``+semantics`` is added with ``--semantic``).
PRETEXT_METHODS = {
    "genesis": "genesis-restoration",
    "inpaint": "inpainting",
    "shuffle": "context-restoration",
    "rotation": "rotation",
    "identity": "auto-encoder",
    "none": "none",
}
AMP_MODES = ("auto", "bf16", "fp16", "none")
#: largest seed every generator accepts (torch takes 64 bits, numpy's legacy seed is reduced)
MAX_SEED = 2**63 - 1

#: config fields that may change when a run is resumed (everything else must match).
RESUMABLE_CHANGES = frozenset(
    {"epochs", "workers", "resume", "overwrite", "compile", "device", "figures", "patience", "init",
     "profile", "probe", "probe_every"}  # the profile only chooses values; the values
    # themselves are compared; the online probe only watches (no random draw, no weight change)
)
OPTIMIZERS = ("adam", "sgd")
PROFILES = ("ours", "reference")
#: the Models Genesis cube recipe (``infinite_generator_3D.py``, method.md §3.1)
MG_CUBES_PER_SCAN = 32
MG_TRIES_PER_CUBE = 50


@dataclass
class PretrainConfig:
    """Settings of one pre-training run (stored as ``pretrain-config.yaml`` with the run).

    Defaults are the reference's (method.md §5.1): λ_rec 1, λ_cls 0.01, Adam 1e-3, StepLR every
    40 epochs ×0.5, early stopping with patience 50 on the validation loss, batch 64; the fields
    that default to None take the profile's or the method's value (:mod:`.recipe`). Every field
    is checked (type and range) when the config is made, so the CLI, YAML files and the Python
    API refuse a bad value with one line before any work starts.
    """

    method: str | None = setting(
        None, help="pre-training method: NAME, NAME+semantics, module:Name or file.py:Name "
        "(None = the one --pretext/--semantic name)")
    pretext: str = setting("genesis", choices=PRETEXTS, help=(
        "restoration pretext (genesis = Models Genesis perturbations), rotation, or none "
        "(self-classification only)"))
    semantic: bool = setting(True, help="add self-classification of the discovered classes")
    preset: str | None = setting(None, help=(
        "perturbation preset (default: sg with semantics, mg for (Models) Genesis, else the "
        "pretext's name)"))
    lambda_rec: float = setting(1.0, ge=0, help="weight of the restoration MSE (or rotation CE)")
    lambda_cls: float = setting(0.01, ge=0, help="weight of the pseudo-class cross-entropy")
    backbone: str = setting(
        "reference", help="network family: reference (UNet3D/YNet3D) or a registered one, e.g. "
        "monai-basicunet (models.registry.list_backbones)")
    width: int = setting(32, ge=1, help="base channels (32 = reference)")
    norm: str | None = setting(None, choices=(*NORMS, None), help=(
        "normalisation layers (default: batch; batch_always with --profile reference)"))
    head: str = setting("torch", choices=HEADS, help="classification head")
    epochs: int = setting(10000, ge=1, help="maximum epochs; early stopping usually ends a run")
    batch_size: int | None = setting(None, ge=1, help=(
        "cubes per optimiser step, over all processes (default: the method's recipe, else 64)"))
    accumulate: int = setting(1, ge=1, help="micro-batches per optimiser step")
    optimizer: str | None = setting(None, choices=(*OPTIMIZERS, None), help=(
        "optimiser (default: the method's recipe, else adam; models-genesis: sgd)"))
    lr: float | None = setting(None, gt=0, help=(
        "learning rate (default: the method's recipe, else 1e-3; models-genesis: 1)"))
    momentum: float | None = setting(None, ge=0, lt=1, help=(
        "SGD momentum, unused by Adam (default: the method's recipe, else 0; models-genesis: "
        "0.9)"))
    lr_step: int | None = setting(None, ge=1, help=(
        "StepLR step in epochs (default: the method's recipe, else 40 = 0.8 x patience)"))
    lr_gamma: float | None = setting(None, gt=0, le=1, help=(
        "StepLR factor, in (0, 1] (default: the method's recipe, else 0.5)"))
    patience: int | None = setting(None, ge=1, help=(
        "epochs without validation improvement to stop (default: the method's recipe, else 50)"))
    min_delta: float = setting(0.0, ge=0, help="smallest decrease that counts as improvement")
    amp: str = setting("auto", choices=AMP_MODES, help=(
        "autocast precision (auto = bf16 on GPU, none on CPU)"))
    compile: bool = setting(False, help="torch.compile the model")
    channels_last: bool = setting(True, help="torch.channels_last_3d for model and inputs")
    fast_decoder: bool = setting(True, help=(
        "on CPU, compute each decoder up-sampling + first convolution as one sub-pixel "
        "convolution (same function, fewer operations)"))
    workers: int = setting(0, ge=0, help="DataLoader worker processes")
    multires: bool = setting(True, help=(
        "add two multi-resolution crops per training instance (method.md §2.5); off: the base "
        "crops only"))
    redraw_multires: bool | None = setting(None, help=(
        "draw the multi-resolution crops anew every epoch (default: on; off with --profile "
        "reference, which cut them once)"))
    profile: str = setting("ours", choices=PROFILES, help=(
        "ours, or reference: every setting the reference code used (batch_always norm, amp "
        "none, multi-resolution crops drawn once; method.md §12); explicit values still win"))
    patch: tuple[int, int, int] = setting((64, 64, 32), ge=8, help=(
        "cohort methods (models-genesis): cube size in voxels, each a multiple of 8 "
        "(patterns methods take the patterns' patch)"))
    cubes_per_scan: int = setting(MG_CUBES_PER_SCAN, ge=1, help=(
        "cohort methods: air-test cubes cut per scan, once per run (Models Genesis: 32)"))
    cube_tries: int = setting(MG_TRIES_PER_CUBE, ge=1, help=(
        "cohort methods: random corners tried per wanted cube (Models Genesis: 50, so at most "
        "50 x 32 per scan)"))
    exclude_groups: tuple[str, ...] = setting(("subset7", "subset8", "subset9"), help=(
        "source groups kept out of pre-training (LUNA16 subsets 7-9: the target tasks' test "
        "scans); 'none' = keep every group"))
    warp_target: bool = setting(False, help=(
        "apply the elastic warp to the target too (reference: input only)"))
    init: str | None = setting(None, help="initialise the backbone from this checkpoint")
    seed: int = setting(0, ge=0, le=MAX_SEED, help="seed of every random draw")
    device: str = setting("auto", help=DEVICE_CHOICES)
    figures: bool = setting(True, help=(
        "draw curves.png and restorations.png every epoch"))
    resume: bool = setting(False, help="continue from out/checkpoints/last.pt")
    overwrite: bool = setting(False, help="replace an existing run folder's outputs")
    plans: str | None = setting(None, help=(
        "--backbone nnunet: the nnU-Net plans file (nnUNetPlans.json) whose network to build; "
        "use the target dataset's plans (README, Fine-tune in nnU-Net)"))
    plans_configuration: str = setting("3d_fullres", help=(
        "--backbone nnunet: the plans configuration (3d_fullres, 3d_lowres, ...)"))
    probe: str | None = setting(None, help=(
        "online probe: a built-in classification target (phantom-ncc) or a data folder with "
        "candidates.csv; after each probe_every epochs, probe_auc of a logistic regression on "
        "the frozen encoder's pooled features (metrics.csv, curves.png; method.md §7.3)"))
    probe_every: int = setting(1, ge=1, help="online probe: probe after every N-th epoch")

    def __post_init__(self) -> None:
        if isinstance(self.init, Path):  # the Python API may pass a path
            self.init = str(self.init)
        if isinstance(self.exclude_groups, (str, list, tuple)):  # one spelling, as discover's
            self.exclude_groups = normalise_groups(self.exclude_groups)
        if isinstance(self.patch, list):
            self.patch = tuple(self.patch)
        self.validate()

    def validate(self) -> None:
        """Refuse settings that cannot work, with one clear line naming the field."""
        check_fields(self)
        if self.pretext == "none" and not self.semantic:
            raise SemgenError("--pretext none --no-semantic leaves nothing to learn")
        if self.method is not None and not self.method.strip():
            raise SemgenError("PretrainConfig.method = '': name a method or leave it out")
        if self.method is not None and (self.pretext != "genesis" or not self.semantic):
            raise SemgenError(
                f"--method {self.method} names the whole method; leave out --pretext and "
                "--no-semantic (add semantics with NAME+semantics)"
            )
        if any(s % 8 for s in self.patch):
            raise SemgenError(f"PretrainConfig.patch = {list(self.patch)}: every side must be a "
                              "multiple of 8 (the network pools each side by 2 three times)")
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


def method_spec(config: PretrainConfig) -> str:
    """The method ``config`` names: ``method``, or the one the pretext flags map onto."""
    if config.method:
        return config.method.strip()
    if config.pretext == "genesis" and config.semantic:
        return "semantic-genesis"
    if config.pretext == "none":
        return "self-classification"
    base = PRETEXT_METHODS[config.pretext]
    return f"{base}+semantics" if config.semantic else base


def resolve_method(config: PretrainConfig) -> Method:
    """The :class:`~semantic_genesis.pretrain.methods.Method` ``config`` names, with its
    ``preset`` override, checked for what this engine can train.

    Raises:
        SemgenError: an unknown method (the message lists the known ones), a method that
            classifies discovered patterns but declares cohort cubes (no classes there), a
            preset override on a method with its own perturbation function, a weight naming
            no config field, no loss term.
    """
    from semantic_genesis.pretrain.methods import get_method
    from semantic_genesis.pretrain.methods.base import DATA_KINDS, FIGURE_KINDS

    config.validate()
    spec = method_spec(config)
    method = get_method(spec)
    if config.preset is not None:
        if callable(method.perturbation):
            raise SemgenError(f"--preset {config.preset}: method {spec} perturbs with its own "
                              "function, not a preset")
        method = method.with_preset(config.preset)
    if method.data not in DATA_KINDS:
        raise SemgenError(f"method {spec}: data = {method.data!r}; must be one of "
                          f"{', '.join(DATA_KINDS)}")
    if method.data == "cohort" and method.semantic:
        raise SemgenError(f"method {spec}: cohort cubes (data = 'cohort') have no discovered "
                          "classes to classify; a semantic method trains on the patterns")
    if not method.terms:
        raise SemgenError(f"method {spec} has no loss term: it leaves nothing to learn")
    if "restoration" in method.heads:
        raise SemgenError(f"method {spec}: a head may not be called 'restoration' (the "
                          "decoder's output)")
    names = {f.name for f in fields(PretrainConfig)}
    for term in method.terms:
        if isinstance(term.weight, str) and term.weight not in names:
            raise SemgenError(f"method {spec}: the weight of term {term.name!r} names "
                              f"{term.weight!r}, which is not a PretrainConfig field")
    unknown = [f for f in method.figures if f not in FIGURE_KINDS]
    if unknown:
        raise SemgenError(f"method {spec}: unknown figure(s) {unknown}; known: "
                          f"{', '.join(FIGURE_KINDS)}")
    return method


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
