"""Does pre-training help? Grids of fine-tuning runs with statistics (method.md §7, §8).

- :func:`run_benchmark` (``semgen benchmark``): a resumable grid of initialisations x seeds x
  label fractions x tasks, with mean ± std, paired t-tests and label efficiency
  (results.csv, results.md, results.png); cells can be shared by several processes.
- :func:`run_experiment`: the whole chain (discover, pre-train, benchmark) from one config,
  as ``semgen demo`` runs it.
- the ``probe`` protocol (:mod:`.features`, :mod:`.probe`, :mod:`.probe_run`): frozen-encoder
  features extracted once per initialisation, then logistic regression / kNN / a voxel head
  over 10 seeds in seconds (method.md §7.3).
- :mod:`.statistics`, :mod:`.results`: the numbers (incl. paired statistics over shared seeds)
  and the tables.
"""

from semantic_genesis.benchmark.config import (
    BenchmarkConfig,
    TaskSpec,
    benchmark_config_from_dict,
    load_benchmark_config,
)
from semantic_genesis.benchmark.grid import BenchmarkResult, run_benchmark
from semantic_genesis.benchmark.statistics import (
    label_efficiency,
    paired_comparisons,
    paired_stats,
    summarise,
    ttest_p,
)

#: the short name (``semantic_genesis.benchmark.benchmark(...)``)
benchmark = run_benchmark

__all__ = [
    "BenchmarkConfig",
    "BenchmarkResult",
    "TaskSpec",
    "benchmark",
    "benchmark_config_from_dict",
    "label_efficiency",
    "load_benchmark_config",
    "paired_comparisons",
    "paired_stats",
    "run_benchmark",
    "summarise",
    "ttest_p",
]
