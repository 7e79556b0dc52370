"""The fine-tuning config: one dataclass, stored with every run (config.yaml, metrics.json)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from semantic_genesis.finetune.recipes import Recipe, default_recipe, get_recipe
from semantic_genesis.utils.errors import SemgenError

TASKS = ("classify", "segment")


@dataclass
class FinetuneConfig:
    """Everything that decides a fine-tuning run.

    ``None`` in ``lr``, ``patience``, ``batch_size`` and ``patch`` means "the recipe's value"
    (method.md §7.2); ``recipe`` empty means ``ncc`` for classification, ``ncs`` for
    segmentation.
    """

    task: str = "classify"  # classify | segment
    init: str = "scratch"  # scratch | path of a checkpoint
    recipe: str = ""
    epochs: int = 100  # the most epochs; early stopping usually ends sooner
    label_fraction: float = 1.0  # of the training candidates (classify) / cases (segment)
    seed: int = 0  # training randomness and the label subset
    split_seed: int = 0  # the random train/val/test split (fixed across a benchmark's seeds)
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    width: int | None = None  # None: the checkpoint's width (32 for scratch)
    norm: str | None = None  # None: the checkpoint's norm (batch for scratch)
    lr: float | None = None
    patience: int | None = None
    batch_size: int | None = None
    patch: tuple[int, int, int] | None = None
    steps_per_epoch: int = 0  # 0: one pass over the balanced training set / 8 patches per case
    freeze_encoder: bool = False
    linear_probe: bool = False
    augment: bool = True  # random flips of training cubes and patches
    modality: str = "auto"  # ct | mr | auto (intensity normalisation, io.normalize_intensity)
    window: tuple[float, float] = (-1000.0, 1000.0)  # CT HU window
    candidates: str = "candidates.csv"  # classification: relative to the data folder
    negatives_per_positive: float = 20.0  # cap per split (LUNA16 has ~400); 0 keeps all
    foreground_probability: float = 0.5  # segmentation: patches centred on a labelled voxel
    val_patches_per_case: int = 8  # segmentation: fixed validation patches
    overlap: float = 0.25  # sliding-window overlap at test time
    inference_patch: tuple[int, int, int] | None = None  # sliding window; None = the patch
    n_labels: int = 0  # segmentation labels incl. background; 0 = from the data
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    cache_dir: str = ""  # normalised volumes; empty = <out>/cache
    save_predictions: bool = True

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
        if not 0 < self.label_fraction <= 1:
            raise SemgenError(f"--label-fraction must be in (0, 1], got {self.label_fraction}")
        return recipe
