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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `semgen discover`."""
    from semantic_genesis.discovery.config import DiscoverConfig
    from semantic_genesis.utils.device import DEVICE_CHOICES

    d = DiscoverConfig()
    parser.add_argument("cohort", metavar="COHORT", help="a prepared cohort folder "
                        "(`semgen prepare`)")
    parser.add_argument("--out", required=True, metavar="PATTERNS", help="output folder")
    parser.add_argument("--classes", type=int, default=d.n_classes, help="classes C")
    parser.add_argument("--instances", type=int, default=d.instances,
                        help="training instances per class K (nearest training patients, the "
                             "reference included)")
    parser.add_argument("--val-instances", type=int, default=d.val_instances,
                        help="validation instances per class")
    parser.add_argument("--patch", type=int, nargs=3, default=list(d.patch),
                        metavar=("X", "Y", "Z"), help="base crop size in voxels")
    parser.add_argument("--features", default=d.features, metavar="ae|encoder|FILE",
                        help="feature source: train the auto-encoder, pool a pre-trained "
                             "encoder (--encoder-checkpoint), or a .npz/.npy/.csv file")
    parser.add_argument("--encoder-checkpoint", default=None, metavar="CKPT",
                        help="checkpoint for --features encoder")
    parser.add_argument("--seed", type=int, default=d.seed, help="random seed (>= 0)")
    parser.add_argument("--min-distance", type=float, default=d.min_distance,
                        help="minimum distance between class corners in voxels (reference: 5)")
    parser.add_argument("--trials", type=int, default=d.trials,
                        help="random corners tried per reference patient")
    parser.add_argument("--max-tissue", type=float, default=d.max_tissue,
                        help="air test: largest accepted tissue fraction of the cube")
    parser.add_argument("--ae-epochs", type=int, default=d.ae_epochs,
                        help="auto-encoder: most epochs")
    parser.add_argument("--ae-patience", type=int, default=d.ae_patience,
                        help="auto-encoder: early-stopping patience (epochs)")
    parser.add_argument("--ae-width", type=int, default=d.ae_width,
                        help="auto-encoder base width (features = 16 x width); 0 = 32 with a "
                             "GPU, 8 without")
    parser.add_argument("--ae-shape", type=int, nargs=3, default=list(d.ae_shape),
                        metavar=("X", "Y", "Z"),
                        help="size volumes are resized to for the auto-encoder (multiples of "
                             "8); 0 0 0 = 128 128 64 with a GPU, 64 64 32 without (about 8x "
                             "cheaper per epoch on a CPU)")
    parser.add_argument("--ae-batch", type=int, default=d.ae_batch,
                        help="auto-encoder batch size")
    parser.add_argument("--index", choices=["flat", "ivf"], default=d.index,
                        help="FAISS index: exact L2, or inverted file for huge cohorts")
    parser.add_argument("--small-neighbours", choices=["skip", "clamp"],
                        default=d.small_neighbours,
                        help="a neighbour whose volume cannot hold the crop: leave it out, or "
                             "move its crop inside")
    parser.add_argument("--device", default=d.device, help=DEVICE_CHOICES)
    parser.add_argument("--overwrite", action="store_true",
                        help="discard classes that discover made with other settings in --out "
                             "(never other files)")


def run(args: argparse.Namespace) -> int:
    """Run self-discovery with the parsed arguments."""
    from semantic_genesis.discovery import DiscoverConfig, DiscoverWarning, discover
    from semantic_genesis.utils.dist import init_distributed

    config = DiscoverConfig(
        n_classes=args.classes, instances=args.instances, val_instances=args.val_instances,
        patch=tuple(args.patch), seed=args.seed, features=args.features,
        encoder_checkpoint=args.encoder_checkpoint, min_distance=args.min_distance,
        trials=args.trials, max_tissue=args.max_tissue, ae_epochs=args.ae_epochs,
        ae_patience=args.ae_patience, ae_width=args.ae_width, ae_batch=args.ae_batch,
        ae_shape=tuple(args.ae_shape),
        index=args.index, small_neighbours=args.small_neighbours, device=args.device)
    init_distributed("gloo")  # only barriers: gloo works on CPU and GPU nodes alike
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DiscoverWarning)
        result = discover(args.cohort, args.out, config, overwrite=args.overwrite)
    for w in caught:
        if issubclass(w.category, DiscoverWarning):
            print(f"semgen discover: warning: {w.message}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    print(f"{result.n_classes} classes, {result.n_patterns} patterns "
          f"(K = {result.k_train} train, {result.k_val} val) -> {result.out_dir}")
    return 0
