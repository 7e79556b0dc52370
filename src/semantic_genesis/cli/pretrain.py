"""Pre-train on discovered patterns: self-classification + self-restoration (Semantic Genesis),
self-classification only, and the add-on pretexts (in-painting, shuffling, rotation) with or
without semantics; or, for a cohort method (--method models-genesis: Models Genesis as
published, random air-test cubes of the cohort, SGD lr 1 batch 6), on a prepared cohort.

Choose the method with --method NAME (listed under --method, each also as NAME+semantics), or
your own with --method path/to/file.py:Name (docs/design.md, "Extending it today"). The earlier
flags still work: Semantic Genesis = --pretext genesis --semantic; Genesis restoration on the
patterns (mg preset, the "restoration only" ablation) = --pretext genesis --no-semantic;
self-classification only = --pretext none --semantic; add-ons
= --pretext inpaint|shuffle|rotation [--semantic]. Under torchrun it trains with DDP; --batch-size
is the batch per optimiser step over all processes. Optimisation settings left out take the
method's recipe; --profile reference switches every setting to the reference code's at once
(explicit options still win). Writes RUN/checkpoints/{last,best}.pt, metrics.csv, curves.png,
restorations.png and TensorBoard events (and cubes.csv for a cohort method).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from semantic_genesis.cli.options import Option, add_config_options
from semantic_genesis.cli.options import config_from_args as build_config
from semantic_genesis.pretrain.config import PretrainConfig
from semantic_genesis.pretrain.methods import known_methods

_M, _A, _O, _S, _R = "method", "model", "optimisation", "speed", "run folder"
_D = "data (cohort methods)"
#: where PretrainConfig's fields appear in the help (their words are the fields' own)
OPTIONS: dict[str, Option] = {
    **{name: Option(group=_M) for name in ("pretext", "semantic", "preset", "lambda_rec",
                                           "lambda_cls", "warp_target", "multires",
                                           "redraw_multires", "profile")},
    **{name: Option(group=_D) for name in ("patch", "cubes_per_scan", "cube_tries")},
    "exclude_groups": Option(group=_D, metavar="GROUP"),
    **{name: Option(group=_A) for name in ("backbone", "width", "norm", "head", "init")},
    **{name: Option(group=_O) for name in ("epochs", "batch_size", "accumulate", "optimizer",
                                           "lr", "momentum", "lr_step", "lr_gamma", "patience",
                                           "min_delta", "seed")},
    **{name: Option(group=_S) for name in ("amp", "compile", "channels_last", "fast_decoder",
                                           "workers", "device")},
    "figures": Option(group=_R),
    "resume": Option(group=_R, help="continue RUN from checkpoints/last.pt (never taken from a "
                     "--config file)"),
    "overwrite": Option(group=_R, help="replace an existing run in RUN (never taken from a "
                        "--config file)"),
}
#: how a run was started, not what it trains: a saved config re-runs without them
RUN_FOLDER_FIELDS = ("resume", "overwrite")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `semgen pretrain` options (defaults are the reference's, method.md §5.1), one per
    PretrainConfig field."""
    parser.add_argument("patterns", type=Path, metavar="SOURCE", help=(
        "patterns folder written by `semgen discover`; for a cohort method (models-genesis) a "
        "prepared cohort folder (`semgen prepare`), or a patterns folder whose cohort it uses"))
    parser.add_argument("--out", type=Path, required=True, help="run folder to write")
    add_config_options(parser, PretrainConfig, {**OPTIONS, "method": _method_option()})


def _method_option() -> Option:
    """``--method``, its help listing the known methods and their papers (the method modules
    load without torch, so this stays cheap)."""
    entries = known_methods()
    listed = "; ".join(f"{e.name} ({e.paper})" for e in entries)
    aliases = ", ".join(f"{a} = {e.name}" for e in entries for a in e.aliases)
    return Option(group=_M, metavar="NAME", help=(
        "pre-training method, instead of --pretext/--semantic: NAME, NAME+semantics "
        f"(adds self-classification), module:Name or path/to/file.py:Name. Known: {listed}"
        + (f". Earlier names: {aliases}" if aliases else "")))


def config_from_args(args: argparse.Namespace) -> PretrainConfig:
    """Build the config: defaults < --config file < options < --set."""
    return build_config(PretrainConfig, args, OPTIONS, file_ignores=RUN_FOLDER_FIELDS)


def run(args: argparse.Namespace) -> int:
    """Run `semgen pretrain` (``cli.main`` sets ``OMP_WAIT_POLICY=PASSIVE`` unless chosen)."""
    from semantic_genesis.pretrain import pretrain
    from semantic_genesis.utils.dist import is_main
    from semantic_genesis.utils.progress import say

    result = pretrain(args.patterns, args.out, config_from_args(args))
    if is_main():
        say(
            f"{result.method}: {result.epochs_run} epochs, best validation loss "
            f"{result.best_val_loss:.4g} at epoch {result.best_epoch}"
            f"{' (early stop)' if result.stopped_early else ''}; best weights "
            f"{result.best_checkpoint}"
        )
    return 0
