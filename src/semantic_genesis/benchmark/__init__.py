"""Does pre-training help? Grids of fine-tuning runs with statistics (method.md §7, §8).

- :func:`run_benchmark` (``semgen benchmark``): a resumable grid of initialisations x seeds x
  label fractions x tasks, with mean ± std, paired t-tests and label efficiency
  (results.csv, results.md, results.png); cells can be shared by several processes.
- :func:`run_experiment`: the whole chain (discover, pre-train, benchmark) from one config,
  as ``semgen demo`` runs it.
- :mod:`.statistics`, :mod:`.results`: the numbers and the tables.
"""

from semantic_genesis.benchmark.config import (
    BenchmarkConfig,
    TaskSpec,
    benchmark_config_from_dict,
    load_benchmark_config,
)
from semantic_genesis.benchmark.grid import BenchmarkResult, run_benchmark
from semantic_genesis.benchmark.statistics import label_efficiency, summarise, ttest_p

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
    "run_benchmark",
    "summarise",
    "ttest_p",
]
