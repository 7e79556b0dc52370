"""Generate a synthetic chest-CT cohort with nodules: the built-in data for the demo and tests.

Writes images/<id>.nii.gz (int16 HU), labels/<id>.nii.gz (nodule masks), LUNA16-style
annotations.csv and candidates.csv (world mm), patients.csv and phantoms.json. Deterministic
for a seed; a re-run with the same settings keeps the patients already written.
"""

from __future__ import annotations

import argparse
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``semgen phantoms``."""
    parser.add_argument("--out", required=True, help="output folder (new, empty, or an earlier "
                        "phantoms run's: its patients are reused)")
    parser.add_argument("--n", type=int, default=32, help="number of patients")
    parser.add_argument("--seed", type=int, default=0, help="cohort seed")
    parser.add_argument(
        "--spacing",
        type=float,
        nargs=3,
        default=(1.5, 1.5, 2.0),
        metavar=("X", "Y", "Z"),
        help="voxel size in mm",
    )
    parser.add_argument(
        "--shape",
        type=int,
        nargs=3,
        default=None,
        metavar=("X", "Y", "Z"),
        help="grid size; default: a 350 x 350 x 300 mm field of view "
        "(the anatomy is stretched to other fields of view)",
    )
    parser.add_argument(
        "--families",
        type=int,
        default=0,
        help="F > 0: F families of near-identical anatomy (neighbour tests)",
    )
    parser.add_argument(
        "--nodules",
        type=int,
        nargs=2,
        default=(1, 3),
        metavar=("MIN", "MAX"),
        help="nodules per patient",
    )
    parser.add_argument(
        "--negatives", type=int, default=20, help="false-positive candidates per patient (>= 0)"
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (>= 1; default: one per CPU)")


def run(args: argparse.Namespace) -> int:
    """Run ``semgen phantoms``: the config is checked, then ``--out`` claimed, then written."""
    from semantic_genesis.data.phantoms import PhantomConfig, generate_phantoms
    from semantic_genesis.io.manifests import read_csv
    from semantic_genesis.utils.config import to_dict
    from semantic_genesis.utils.outdir import claim_output

    config = PhantomConfig(
        n=args.n,
        seed=args.seed,
        spacing=tuple(args.spacing),
        shape=tuple(args.shape) if args.shape else None,
        families=args.families,
        nodules=tuple(args.nodules),
        negatives=args.negatives,
        workers=args.workers,
    )
    with claim_output(args.out, "phantoms", legacy=("phantoms.json", "patients.csv"),
                      settings=to_dict(config)):
        generate_phantoms(args.out, config)
    n_nod = len(read_csv(os.path.join(args.out, "annotations.csv"), []))
    n_cand = len(read_csv(os.path.join(args.out, "candidates.csv"), []))
    shape = "x".join(map(str, config.grid_shape()))
    spacing = "x".join(f"{s:g}" for s in config.spacing)
    print(
        f"{args.out}: {config.n} phantom patients ({shape} voxels of {spacing} mm), "
        f"{n_nod} nodules, {n_cand} candidates",
        file=sys.stdout,
    )
    return 0
