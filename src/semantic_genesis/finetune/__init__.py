"""Fine-tuning and evaluation on target tasks: does pre-training help (method.md §7, §8)?

- :func:`finetune`: one run — classification of candidate cubes (LUNA16 NCC recipe) or
  segmentation of volumes (NCS/LCS/BMS recipes) from scratch, our checkpoints or the official
  weights; writes metrics.json, predictions and curves.png.
- :func:`run_benchmark`: a resumable grid of runs with mean ± std, t-tests and label
  efficiency (results.csv, results.md, results.png).
- :mod:`.targets`: built-in target tasks (phantoms, pyradiomics lung CT, MNI152 tissue).
- :mod:`.metrics`, :mod:`.statistics`, :mod:`.recipes`: the numbers behind them.
"""

from semantic_genesis.finetune.benchconfig import (
    BenchmarkConfig,
    TaskSpec,
    benchmark_config_from_dict,
    load_benchmark_config,
)
from semantic_genesis.finetune.config import FinetuneConfig
from semantic_genesis.finetune.grid import BenchmarkResult, run_benchmark
from semantic_genesis.finetune.metrics import dice_score, iou_score, roc_auc, segmentation_scores
from semantic_genesis.finetune.recipes import Recipe, get_recipe, recipe_names
from semantic_genesis.finetune.run import FinetuneResult, finetune
from semantic_genesis.finetune.statistics import label_efficiency, summarise, ttest_p
from semantic_genesis.finetune.targets import TARGETS, TargetData, prepare_target

#: the name the shared interface promises (``semantic_genesis.finetune.benchmark(...)``)
benchmark = run_benchmark

__all__ = [
    "TARGETS",
    "BenchmarkConfig",
    "BenchmarkResult",
    "FinetuneConfig",
    "FinetuneResult",
    "Recipe",
    "TargetData",
    "TaskSpec",
    "benchmark",
    "benchmark_config_from_dict",
    "dice_score",
    "finetune",
    "get_recipe",
    "iou_score",
    "label_efficiency",
    "load_benchmark_config",
    "prepare_target",
    "recipe_names",
    "roc_auc",
    "run_benchmark",
    "segmentation_scores",
    "summarise",
    "ttest_p",
]
