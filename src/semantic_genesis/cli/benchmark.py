"""Run a grid of fine-tuning runs (initialisations x label fractions x seeds x tasks) from a
YAML config and compare: results.csv, results.md (mean ± std, t-tests against scratch and
Models Genesis, the label fraction that reaches scratch's best) and results.png.

Two protocols (``protocols`` in the config, or --set protocols=[finetune,probe]): finetune
(full fine-tuning per seed) and probe (frozen-encoder features extracted once per
initialisation, then logistic regression and kNN, or a voxel head for segmentation, over
probe_seeds, 10 by default: seconds per cell; method.md §7.3). results.md adds paired
statistics over shared seeds (mean difference with a bootstrap interval, paired t-test,
Wilcoxon, Cohen's d_z) and the label fraction needed to match scratch at 100 %.

Resumable: finished cells (cells/<cell>.json) are not rerun. Several processes (one per GPU or
core) can run one --out together: each cell is claimed with an OS file lock, and the last process
to finish writes the results. CONFIG is a YAML file or the name of a shipped one (e.g.
'benchmark-targets'); see semantic_genesis/configs/. Exit status: 0 when every cell ran (or is
still running in another process), 1 when some cells failed (listed), 2 on a bad config.
"""

from __future__ import annotations

import argparse

from semantic_genesis.cli.options import Option, add_config_options, given_settings

#: BenchmarkConfig's simple fields become options, in the fields' own words (its lists and
#: mappings: the file or --set)
OPTIONS: dict[str, Option] = {}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``semgen benchmark``: the config file, and BenchmarkConfig's fields."""
    from semantic_genesis.benchmark.config import BenchmarkConfig

    parser.add_argument("config_file", nargs="?", metavar="CONFIG.yaml",
                        help="benchmark config (YAML), or the name of a shipped one; the same "
                             "as --config")
    parser.add_argument("--out", required=True, help="output folder (re-run to resume)")
    add_config_options(parser, BenchmarkConfig, OPTIONS)


def _load(args: argparse.Namespace):  # noqa: ANN202 (BenchmarkConfig: imported lazily)
    """The config file (positional or --config), then the options, then --set."""
    from semantic_genesis.benchmark.config import BenchmarkConfig, benchmark_config_from_dict
    from semantic_genesis.finetune.recipes import find_config
    from semantic_genesis.utils.errors import SemgenError

    given = [f for f in (args.config_file, getattr(args, "config", None)) if f]
    if not given:
        raise SemgenError("name the benchmark config: CONFIG.yaml or --config FILE")
    if len(given) == 2 and given[0] != given[1]:
        raise SemgenError(f"two configs given ({given[0]} and --config {given[1]}); give one")
    path = find_config(given[0])
    from_file = given_settings(BenchmarkConfig, argparse.Namespace(config=path))
    config = benchmark_config_from_dict(from_file, path.parent, path)  # the file's own errors
    args.config = None
    changes = given_settings(BenchmarkConfig, args)
    if not changes:
        return config
    return benchmark_config_from_dict({**from_file, **changes}, path.parent, "command line")


def run(args: argparse.Namespace) -> int:
    """Run ``semgen benchmark``."""
    from semantic_genesis.benchmark import run_benchmark

    config = _load(args)
    result = run_benchmark(config, args.out)
    failed = (f"; {len(result.failed)} FAILED (listed above): "
              + ", ".join(sorted(result.failed))) if result.failed else ""
    if result.running:
        print(
            f"{result.ran} runs done here; {result.running} still running in other processes"
            f"{failed}. results.md is NOT written yet: the last process to finish writes "
            f"{result.out_dir / 'results.md'} (or re-run this command to collect them)"
        )
    else:
        print(
            f"{len(result.rows)} result rows ({result.ran} fine-tuning runs now, "
            f"{result.skipped} already done)"
            f"{failed}; results in {result.out_dir / 'results.md'}"
        )
    return 1 if result.failed else 0
