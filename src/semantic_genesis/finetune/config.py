"""The fine-tuning config: one dataclass, stored with every run (config.yaml, metrics.json)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from semantic_genesis.finetune.recipes import Recipe, default_recipe, get_recipe
from semantic_genesis.models.blocks import NORMS
from semantic_genesis.utils.config import setting, validate
from semantic_genesis.utils.errors import SemgenError

TASKS = ("classify", "segment")


@dataclass
class FinetuneConfig:
    """Everything that decides a fine-tuning run.

    ``None`` in ``lr``, ``patience``, ``batch_size`` and ``patch`` means "the recipe's value"
    (method.md §7.2); ``recipe`` empty means ``ncc`` for classification, ``ncs`` for
    segmentation. Every field has its range (:func:`~semantic_genesis.utils.config.setting`),
    checked on construction, so the CLI, YAML files and the Python API are refused alike.
    """

    task: str = setting("classify", choices=TASKS, help=(
        "classify candidates (AUC) or segment volumes (IoU, Dice)"))
    init: str = setting("scratch", help=(
        "'scratch' or a checkpoint (.pt of ours, official SG/MG, .h5); checked first"))
    recipe: str = setting("", help=(
        "ncc, ncs, lcs, bms or ecc (default: ncc for classify, ncs for segment)"))
    epochs: int = setting(100, ge=1, help="the most epochs; early stopping usually ends sooner")
    label_fraction: float = setting(
        1.0, gt=0, le=1, help="fraction of the training labels to use: candidates (classify) or "
        "cases (segment)")
    seed: int = setting(0, ge=0, help="training randomness and the label subset")
    split_seed: int = setting(
        0, ge=0, help="the random train/val/test split (fixed across a benchmark's seeds)")
    val_fraction: float = setting(0.2, ge=0, lt=1, help="share of cases for validation")
    test_fraction: float = setting(0.2, gt=0, lt=1, help="share of cases for the test")
    width: int | None = setting(None, ge=1, help=(
        "base channels (default: the checkpoint's; 32 for scratch)"))
    norm: str | None = setting(None, choices=(None, *NORMS), help=(
        "normalisation layers (default: the checkpoint's)"))
    backbone: str | None = setting(
        None, help="network family: reference or monai-basicunet (default: the checkpoint's; "
        "reference for scratch); a checkpoint of another family is refused")
    lr: float | None = setting(None, gt=0, help="learning rate (default: the recipe's)")
    patience: int | None = setting(None, ge=1, help=(
        "early-stopping patience in epochs (default: the recipe's)"))
    batch_size: int | None = setting(None, ge=1, help="batch size (default: the recipe's)")
    patch: tuple[int, int, int] | None = setting(None, ge=8, help=(
        "training patch, multiples of 8 (default: the recipe's)"))
    steps_per_epoch: int | None = setting(
        None, ge=1, help="batches per epoch (default: one pass over the balanced training set / "
        "8 patches per training case)")
    freeze_encoder: bool = setting(False, help=(
        "keep the (pre-trained) encoder fixed; train the rest"))
    linear_probe: bool = setting(False, help="train only a linear layer on the frozen network")
    augment: bool = setting(True, help="random flips of training cubes and patches")
    modality: str = setting(
        "auto", choices=("auto", "ct", "mr"), help="intensity normalisation (a built-in target sets its own)")
    window: tuple[float, float] = setting((-1000.0, 1000.0), help="CT HU window")
    candidates: str = setting("candidates.csv", help=(
        "classification: the candidates file in the data folder"))
    negatives_per_positive: float = setting(
        20.0, ge=0, help="cap of negatives per positive in each split; 0 keeps all")
    foreground_probability: float = setting(
        0.5, ge=0, le=1, help="segmentation: share of patches centred on a labelled voxel")
    val_patches_per_case: int = setting(8, ge=1, help="segmentation: fixed validation patches")
    overlap: float = setting(0.25, ge=0, lt=1, help="sliding-window overlap at test time")
    inference_patch: tuple[int, int, int] | None = setting(
        None, ge=8, help="sliding window at test time (default: the patch)")
    n_labels: int = setting(0, ge=0, help="segmentation labels incl. background; 0: from data")
    device: str = setting("auto", help="auto, cpu, cuda, cuda:N or mps")
    cache_dir: str = setting("", help=(
        "folder of the normalised volumes (default: OUT/cache)"))
    save_predictions: bool = setting(True, help="write predictions.csv / predictions/")
    resume: bool = setting(
        False, help="continue the killed run in the output folder from checkpoints/last.pt")
    allow_seen_test_cases: bool = setting(False, help=(
        "run even when test cases of the target were seen in pre-training (the init's model "
        "card lists them); refused by default, method.md §1.1"))

    def __post_init__(self) -> None:
        """Check every field (types and ranges) before any work, whoever built the config."""
        from semantic_genesis.utils.device import check_device

        validate(self)
        name = type(self).__name__
        if self.n_labels == 1:
            raise SemgenError(f"{name}.n_labels = 1: use 0 (from the data) or at least 2")
        if self.val_fraction + self.test_fraction >= 1:
            raise SemgenError(f"{name}.val_fraction + test_fraction must be below 1 "
                              f"(got {self.val_fraction} + {self.test_fraction})")
        if not self.window[0] < self.window[1]:
            raise SemgenError(f"{name}.window = {self.window}: low must be below high")
        if not self.init.strip():
            raise SemgenError(f"{name}.init is empty: give 'scratch' or a checkpoint path")
        if self.backbone is not None:
            from semantic_genesis.models.registry import list_backbones

            if self.backbone not in list_backbones():
                raise SemgenError(f"{name}.backbone = {self.backbone!r}: must be one of "
                                  f"{', '.join(list_backbones())}")
        check_device(self.device)

    def resolved_recipe(self) -> Recipe:
        """The recipe with this config's overrides applied; checks the task and values."""
        if self.task not in TASKS:
            raise SemgenError(f"unknown task {self.task!r}; use {' or '.join(TASKS)}")
        recipe = get_recipe(self.recipe or default_recipe(self.task))
        if recipe.task != self.task:
            raise SemgenError(f"recipe {self.recipe!r} is for {recipe.task}, not {self.task}")
        over = {
            k: getattr(self, k)
            for k in ("lr", "patience", "batch_size", "patch")
            if getattr(self, k) is not None
        }
        if "patch" in over:
            over["patch"] = tuple(int(p) for p in over["patch"])
        recipe = replace(recipe, **over)
        for name, size in (("patch", recipe.patch), ("inference_patch", self.inference_patch)):
            if size is not None and (len(size) != 3 or any(p < 8 or p % 8 for p in size)):
                raise SemgenError(
                    f"{name} {tuple(size)}: three sizes, each a multiple of 8 "
                    "(the U-Net pools three times; 16 is safer)"
                )
        return recipe
