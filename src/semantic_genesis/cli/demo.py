"""Run the whole chain on built-in data (phantoms -> prepare -> discover -> pretrain SG and MG ->
fine-tune scratch vs MG vs SG) and write report.html / report.md with the cohort, the discovered
classes, restorations, training curves, the results table and plot, stage times and hardware.
About 4 minutes on 2 idle CPU cores (3.6 measured); --quick takes about a minute. A re-run resumes.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from semantic_genesis.cli.options import add_config_options, config_from_args
from semantic_genesis.utils.config import setting, validate


@dataclass
class DemoOptions:
    """The demo's one setting (each stage's own settings are fixed by the demo and saved in
    its folder, from where they re-run that stage)."""

    quick: bool = setting(False, help="tiny settings: every stage in a few minutes")

    def __post_init__(self) -> None:
        validate(self)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`semgen demo [--out DIR] [--quick]`."""
    parser.add_argument("--out", default="demo-output",
                        help="output folder: new, empty, or an earlier demo's (it resumes)")
    add_config_options(parser, DemoOptions)


def run(args: argparse.Namespace) -> int:
    from semantic_genesis.report.demo import run_demo

    options = config_from_args(DemoOptions, args)
    result = run_demo(args.out, quick=options.quick)
    print(f"semgen demo: report at {result.report_html} ({result.seconds / 60:.1f} min)")
    return 0
