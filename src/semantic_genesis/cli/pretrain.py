"""Pre-train on discovered patterns: self-classification + self-restoration (Semantic Genesis),
Models Genesis, self-classification only, and the add-on pretexts (in-painting, shuffling,
rotation) with or without semantics.

Methods: Semantic Genesis = --pretext genesis --semantic; Models Genesis = --pretext genesis
--no-semantic (preset mg); self-classification only = --pretext none --semantic; add-ons =
--pretext inpaint|shuffle|rotation [--semantic]. Under torchrun it trains with DDP; --batch-size
is the batch per optimiser step over all processes. Writes RUN/checkpoints/{last,best}.pt,
metrics.csv, curves.png, restorations.png and TensorBoard events.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from semantic_genesis.models.names import HEADS, NORMS
from semantic_genesis.pretrain.config import AMP_MODES, PRETEXTS, PretrainConfig
from semantic_genesis.utils.device import DEVICE_CHOICES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `semgen pretrain` options (defaults are the reference's, method.md §5.1)."""
    d = PretrainConfig()
    parser.add_argument("patterns", type=Path, help="patterns folder written by `semgen discover`")
    parser.add_argument("--out", type=Path, required=True, help="run folder to write")
    m = parser.add_argument_group("method")
    m.add_argument(
        "--pretext",
        choices=PRETEXTS,
        default=d.pretext,
        help="restoration pretext (genesis = Models Genesis perturbations), rotation, "
        "or none (self-classification only)",
    )
    m.add_argument(
        "--semantic",
        action=argparse.BooleanOptionalAction,
        default=d.semantic,
        help="add self-classification of the discovered classes",
    )
    m.add_argument(
        "--preset",
        default=None,
        help="perturbation preset (default: sg with semantics, mg for Models Genesis, "
        "else the pretext's name)",
    )
    m.add_argument(
        "--lambda-rec",
        type=float,
        default=d.lambda_rec,
        help="weight of the restoration MSE (or rotation CE)",
    )
    m.add_argument(
        "--lambda-cls",
        type=float,
        default=d.lambda_cls,
        help="weight of the pseudo-class cross-entropy",
    )
    m.add_argument(
        "--warp-target",
        action="store_true",
        help="apply the elastic warp to the target too (reference: input only)",
    )
    m.add_argument(
        "--multires",
        action=argparse.BooleanOptionalAction,
        default=d.multires,
        help="add two multi-resolution crops per training instance (method.md §2.5); "
        "--no-multires trains on the base crops only",
    )
    a = parser.add_argument_group("model")
    a.add_argument("--width", type=int, default=d.width, help="base channels (32 = reference)")
    a.add_argument("--norm", choices=NORMS, default=d.norm, help="normalisation layers")
    a.add_argument("--head", choices=HEADS, default=d.head, help="classification head")
    a.add_argument("--init", default=None, help="initialise the backbone from this checkpoint")
    o = parser.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int, default=d.epochs, help="maximum epochs (1 or more)")
    o.add_argument(
        "--batch-size",
        type=int,
        default=d.batch_size,
        help="cubes per optimiser step, over all processes",
    )
    o.add_argument(
        "--accumulate",
        type=int,
        default=d.accumulate,
        help="micro-batches per optimiser step (gradient accumulation)",
    )
    o.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate")
    o.add_argument("--lr-step", type=int, default=d.lr_step, help="StepLR step (epochs)")
    o.add_argument(
        "--lr-gamma", type=float, default=d.lr_gamma, help="StepLR factor, in (0, 1]"
    )
    o.add_argument(
        "--patience",
        type=int,
        default=d.patience,
        help="early stopping: epochs without validation improvement",
    )
    o.add_argument(
        "--min-delta",
        type=float,
        default=d.min_delta,
        help="early stopping: smallest decrease that counts as an improvement",
    )
    o.add_argument(
        "--seed", type=int, default=d.seed, help="seed of every random draw (0 or more)"
    )
    s = parser.add_argument_group("speed")
    s.add_argument(
        "--amp",
        choices=AMP_MODES,
        default=d.amp,
        help="autocast precision (auto = bf16 on GPU, none on CPU)",
    )
    s.add_argument("--compile", action="store_true", help="torch.compile the model")
    s.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=d.channels_last,
        help="channels-last-3d memory layout",
    )
    s.add_argument(
        "--fast-decoder",
        action=argparse.BooleanOptionalAction,
        default=d.fast_decoder,
        help="on CPU, compute each decoder up-sampling + first convolution as one sub-pixel "
        "convolution (same function, fewer operations)",
    )
    s.add_argument("--workers", type=int, default=d.workers, help="data loader processes")
    s.add_argument("--device", default=d.device, help=DEVICE_CHOICES)
    r = parser.add_argument_group("run folder")
    r.add_argument("--resume", action="store_true", help="continue RUN from checkpoints/last.pt")
    r.add_argument("--overwrite", action="store_true", help="replace an existing run in RUN")
    r.add_argument(
        "--figures",
        action=argparse.BooleanOptionalAction,
        default=d.figures,
        help="draw curves.png and restorations.png every epoch (--no-figures skips them)",
    )


def config_from_args(args: argparse.Namespace) -> PretrainConfig:
    """Build the config from parsed arguments (every config field has an option)."""
    from dataclasses import fields

    return PretrainConfig(**{f.name: getattr(args, f.name) for f in fields(PretrainConfig)})


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
