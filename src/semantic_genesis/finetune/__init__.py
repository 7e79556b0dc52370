"""Fine-tuning and evaluation on target tasks: does pre-training help (method.md §7, §8)?

- :func:`finetune`: one run — classification of candidate cubes (LUNA16 NCC recipe) or
  segmentation of volumes (NCS/LCS/BMS recipes) from scratch, our checkpoints or the official
  weights; writes metrics.json, predictions and curves.png.
- :mod:`.metrics`, :mod:`.recipes`: the numbers behind them; :mod:`.tasks`: classify, segment.

Grids of runs with statistics live in :mod:`semantic_genesis.benchmark`; the built-in target
data in :mod:`semantic_genesis.data.targets`.
"""

from semantic_genesis.finetune.config import FinetuneConfig
from semantic_genesis.finetune.metrics import dice_score, iou_score, roc_auc, segmentation_scores
from semantic_genesis.finetune.recipes import Recipe, get_recipe, recipe_names
from semantic_genesis.finetune.run import FinetuneResult, finetune

__all__ = [
    "FinetuneConfig",
    "FinetuneResult",
    "Recipe",
    "dice_score",
    "finetune",
    "get_recipe",
    "iou_score",
    "recipe_names",
    "roc_auc",
    "segmentation_scores",
]
