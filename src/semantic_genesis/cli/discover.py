"""Self-discovery (method.md §2): learn a feature per patient (an auto-encoder with a real
bottleneck, a pre-trained encoder, or a file you bring), find each reference patient's nearest
neighbours with FAISS, draw a coordinate that passes the air test (CT) or the foreground test
(MR), and write the discovered classes as patterns.csv, classes.csv, discover.json and a montage
(patterns.png). Deterministic for a seed, resumable (re-run the same command after an
interruption), and sharded by rank under torchrun.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from semantic_genesis.cli.options import Option, add_config_options, config_from_args

#: how DiscoverConfig's fields appear here (the rest: --field-name, from the field)
OPTIONS = {
    "n_classes": Option(flag="--classes"),
    "features": Option(metavar="ae|encoder|FILE"),
    "encoder_checkpoint": Option(metavar="CKPT"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `semgen discover`: one option per DiscoverConfig field."""
    from semantic_genesis.discovery.config import DiscoverConfig

    parser.add_argument("cohort", metavar="COHORT", help="a prepared cohort folder "
                        "(`semgen prepare`)")
    parser.add_argument("--out", required=True, metavar="PATTERNS", help="output folder")
    add_config_options(parser, DiscoverConfig, OPTIONS)
    parser.add_argument("--overwrite", action="store_true",
                        help="discard classes that discover made with other settings in --out "
                             "(never other files)")


def run(args: argparse.Namespace) -> int:
    """Run self-discovery with the parsed arguments."""
    from semantic_genesis.discovery import DiscoverConfig, DiscoverWarning, discover
    from semantic_genesis.utils.dist import init_distributed

    config = config_from_args(DiscoverConfig, args, OPTIONS)
    init_distributed("gloo")  # only barriers: gloo works on CPU and GPU nodes alike
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DiscoverWarning)
        result = discover(args.cohort, args.out, config, overwrite=args.overwrite)
    for w in caught:
        if issubclass(w.category, DiscoverWarning):
            print(f"semgen discover: warning: {w.message}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    left_out = result.excluded.get("n_excluded", 0)
    if left_out:
        groups = ", ".join(f"{g} {n}" for g, n in result.excluded["excluded_per_group"].items())
        print(f"left out {left_out} case(s) of the excluded groups ({groups}; "
              "--exclude-groups '' keeps them)")
    print(f"{result.n_classes} classes, {result.n_patterns} patterns "
          f"(K = {result.k_train} train, {result.k_val} val) -> {result.out_dir}")
    return 0
