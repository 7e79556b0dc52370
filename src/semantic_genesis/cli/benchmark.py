"""Run a grid of fine-tuning runs (initialisations x label fractions x seeds x tasks) from a
YAML config and compare: results.csv, results.md (mean ± std, t-tests against scratch and
Models Genesis, the label fraction that reaches scratch's best) and results.png.

Resumable: finished cells (cells/<cell>.json) are not rerun. Several processes (one per GPU or
core) can run one --out together: each cell is claimed with an OS file lock, and the last process
to finish writes the results. CONFIG is a YAML file or the name of a shipped one (e.g.
'benchmark-targets'); see semantic_genesis/configs/. Exit status: 0 when every cell ran (or is
still running in another process), 1 when some cells failed (listed), 2 on a bad config.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``semgen benchmark``."""
    parser.add_argument("config", metavar="CONFIG.yaml", help="benchmark config (YAML)")
    parser.add_argument("--out", required=True, help="output folder (re-run to resume)")
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        help="cells run at once, each in its own process (0 = one per CPU core without a GPU; "
        "default: the config's, else 1)",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``semgen benchmark``."""
    import dataclasses

    from semantic_genesis.benchmark import load_benchmark_config, run_benchmark

    config = load_benchmark_config(args.config)
    if args.processes is not None:
        config = dataclasses.replace(config, processes=args.processes)  # checked again
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
            f"{len(result.rows)} runs ({result.ran} now, {result.skipped} already done)"
            f"{failed}; results in {result.out_dir / 'results.md'}"
        )
    return 1 if result.failed else 0
