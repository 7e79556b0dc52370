"""Fine-tune an initialisation (scratch, one of our checkpoints, or the official Semantic Genesis
/ Models Genesis weights) on a target task and test it.

--task classify: LUNA16-style candidate classification (candidates.csv in world mm, scans in
subset*/<seriesuid>.mhd or images/<id>.nii.gz), cubes around each candidate, AUC.
--task segment: images/ + labels/ folders, whole U-Net, Dice loss, sliding-window test, IoU/Dice.
Writes metrics.json, predictions (predictions.csv or predictions/<id>.nii.gz), curves.png,
config.yaml and model.pt to --out. Recipes (method.md §7.2): ncc, ncs, lcs, bms, ecc.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``semgen finetune``."""
    parser.add_argument("--task", choices=["classify", "segment"], required=True)
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="data folder (LUNA16 layout or images/ + labels/)")
    src.add_argument(
        "--target",
        help="a built-in target instead of --data: phantom-ncc, "
        "phantom-ncs, lung-tumour, mni152-tissue",
    )
    parser.add_argument(
        "--init",
        default="scratch",
        help="'scratch' or a checkpoint (.pt of ours, official SG/MG, .h5)",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--recipe",
        default=None,
        help="ncc, ncs, lcs, bms or ecc (default: ncc for classify, ncs for segment)",
    )
    parser.add_argument(
        "--label-fraction", type=float, default=1.0, help="fraction of the training labels to use"
    )
    parser.add_argument(
        "--width",
        type=int,
        default=None,
        help="base channels (default: the checkpoint's; 32 for scratch)",
    )
    parser.add_argument("--epochs", type=int, default=100, help="most epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the patient split")
    parser.add_argument("--patch", type=int, nargs=3, default=None, metavar=("X", "Y", "Z"))
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--patience", type=int, default=None, help="early-stopping patience")
    parser.add_argument("--steps-per-epoch", type=int, default=0)
    parser.add_argument("--freeze-encoder", action="store_true")
    parser.add_argument(
        "--linear-probe",
        action="store_true",
        help="train only a linear layer on the frozen network",
    )
    parser.add_argument("--modality", choices=["auto", "ct", "mr"], default=None)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--no-save-model", action="store_true", help="do not write model.pt")


def run(args: argparse.Namespace) -> int:
    """Run ``semgen finetune``."""
    from pathlib import Path

    from semantic_genesis.finetune import FinetuneConfig, finetune
    from semantic_genesis.finetune.targets import prepare_target
    from semantic_genesis.utils.config import from_dict

    settings: dict = {}
    data, notes = args.data, ""
    if args.target:
        target = prepare_target(args.target, Path(args.out) / "target")
        if target.task != args.task:
            raise_mismatch(args.target, target.task)
        data, settings, notes = str(target.data_dir), dict(target.settings), target.notes
        print(f"target {args.target}: {notes}")
    flags = {
        "task": args.task,
        "init": args.init,
        "recipe": args.recipe,
        "label_fraction": args.label_fraction,
        "width": args.width,
        "epochs": args.epochs,
        "seed": args.seed,
        "split_seed": args.split_seed,
        "patch": args.patch,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "patience": args.patience,
        "steps_per_epoch": args.steps_per_epoch,
        "freeze_encoder": args.freeze_encoder,
        "linear_probe": args.linear_probe,
        "modality": args.modality,
        "device": args.device,
    }
    settings.update({k: v for k, v in flags.items() if v is not None})
    config = from_dict(FinetuneConfig, settings)
    result = finetune(data, args.out, config, save_model=not args.no_save_model, notes=notes)
    print(
        f"test {result.metric} = {result.score:.4f} (best epoch {result.best_epoch} of "
        f"{result.epochs_run}); outputs in {result.out_dir}"
    )
    return 0


def raise_mismatch(target: str, task: str) -> None:
    """A built-in target used with the other task."""
    from semantic_genesis.utils.errors import SemgenError

    raise SemgenError(f"target {target!r} is a {task} task; use --task {task}")
