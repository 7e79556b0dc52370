"""Run the whole chain on built-in data (phantoms -> prepare -> discover -> pretrain SG and MG ->
fine-tune scratch vs MG vs SG) and write report.html / report.md with the cohort, the discovered
classes, restorations, training curves, the results table and plot, stage times and hardware.
About 12 minutes on 2 CPU cores (measured); --quick takes a few minutes. A re-run resumes.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`semgen demo [--out DIR] [--quick]`."""
    parser.add_argument("--out", default="demo-output",
                        help="output folder: new, empty, or an earlier demo's (it resumes)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny settings: every stage in a few minutes")


def run(args: argparse.Namespace) -> int:
    from semantic_genesis.report.demo import run_demo

    result = run_demo(args.out, quick=args.quick)
    print(f"semgen demo: report at {result.report_html} ({result.seconds / 60:.1f} min)")
    return 0
