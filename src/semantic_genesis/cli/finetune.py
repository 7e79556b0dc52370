"""Fine-tune an initialisation (scratch, one of our checkpoints, or the official Semantic Genesis
/ Models Genesis weights) on a target task and test it.

--task classify: LUNA16-style candidate classification (candidates.csv in world mm, scans in
subset*/<seriesuid>.mhd or images/<id>.nii.gz), cubes around each candidate, AUC.
--task segment: images/ + labels/ folders, whole U-Net, Dice loss, sliding-window test, IoU/Dice.
Writes metrics.json, predictions (predictions.csv or predictions/<id>.nii.gz), curves.png,
config.yaml and model.pt to --out, and each epoch checkpoints/last.pt, checkpoints/best.pt and
metrics.csv. Recipes (method.md §7.2): ncc, ncs, lcs, bms, ecc.
A folder holding a finished run is not retrained unless --overwrite is given; a killed run is
continued exactly with --resume (the same options), or started again with --overwrite.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

#: files of a finished run (also what marks a folder written by releases before the marker)
RUN_FILES = ("metrics.json", "config.yaml", "model.pt", "predictions.csv", "predictions",
             "curves.png", "metrics.csv", "checkpoints")
#: what a killed run leaves to resume from
LAST_PT = Path("checkpoints") / "last.pt"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``semgen finetune``."""
    parser.add_argument("--task", choices=["classify", "segment"], required=True,
                        help="classify candidates (AUC) or segment volumes (IoU, Dice)")
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
        help="'scratch' or a checkpoint (.pt of ours, official SG/MG, .h5); checked first",
    )
    parser.add_argument("--out", required=True, help="output folder (new, empty, or an earlier "
                        "finetune run's)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the finished or stopped run already in --out (else it is "
                        "refused)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the killed run in --out from its checkpoints/last.pt, "
                        "exactly (give the same options)")
    parser.add_argument(
        "--recipe",
        default=None,
        help="ncc, ncs, lcs, bms or ecc (default: ncc for classify, ncs for segment)",
    )
    parser.add_argument(
        "--label-fraction", type=float, default=None,
        help="fraction (0, 1] of the training labels to use (default: 1)"
    )
    parser.add_argument(
        "--width",
        type=int,
        default=None,
        help="base channels (default: the checkpoint's; 32 for scratch)",
    )
    parser.add_argument(
        "--backbone", default=None,
        help="network family: reference or monai-basicunet (default: the checkpoint's; "
        "reference for scratch); a checkpoint of another family is refused",
    )
    parser.add_argument("--epochs", type=int, default=None,
                        help="the most epochs, at least 1 (default: 100; early stopping "
                        "usually ends sooner)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed (>= 0) of the training and the label subset (default: 0)")
    parser.add_argument("--split-seed", type=int, default=None,
                        help="seed (>= 0) of the patient split (default: 0)")
    parser.add_argument("--patch", type=int, nargs=3, default=None, metavar=("X", "Y", "Z"),
                        help="training patch, multiples of 8 (default: the recipe's)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="batch size, at least 1 (default: the recipe's)")
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate, > 0 (default: the recipe's)")
    parser.add_argument("--patience", type=int, default=None,
                        help="early-stopping patience in epochs, at least 1 (default: the "
                        "recipe's)")
    parser.add_argument("--steps-per-epoch", type=int, default=None,
                        help="batches per epoch, at least 1 (default: one pass over the "
                        "balanced training set / 8 patches per training case)")
    parser.add_argument("--freeze-encoder", action="store_true",
                        help="keep the (pre-trained) encoder fixed; train the rest")
    parser.add_argument(
        "--linear-probe",
        action="store_true",
        help="train only a linear layer on the frozen network",
    )
    parser.add_argument("--modality", choices=["auto", "ct", "mr"], default=None,
                        help="intensity normalisation (default: auto, or the target's)")
    parser.add_argument("--device", default=None,
                        help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument("--no-save-model", action="store_true",
                        help="do not keep the weights: no model.pt, and checkpoints/ is removed "
                        "once the run has finished")


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    """The FinetuneConfig fields given on the command line."""
    names = ("task", "init", "recipe", "label_fraction", "width", "backbone", "epochs", "seed",
             "split_seed", "patch", "batch_size", "lr", "patience", "steps_per_epoch", "modality",
             "device")
    flags = {k: getattr(args, k) for k in names}
    flags.update(freeze_encoder=args.freeze_encoder or None,
                 linear_probe=args.linear_probe or None, resume=args.resume or None)
    return {k: v for k, v in flags.items() if v is not None}


def check_resume(out: Path, resume: bool, overwrite: bool) -> None:
    """With ``--resume``: refuse ``--overwrite`` too, and a folder holding no stopped run
    (before anything is claimed or made)."""
    from semantic_genesis.finetune.run import check_resumable
    from semantic_genesis.utils.errors import SemgenError

    if not resume:
        return
    if overwrite:
        raise SemgenError("--resume and --overwrite contradict: --resume continues the run in "
                          "this folder, --overwrite replaces it; give one", out)
    check_resumable(out)


def check_finished(out: Path, overwrite: bool) -> None:
    """Refuse to retrain into a folder that holds a finished run, or a stopped one that could
    resume, unless ``overwrite``; with it, say what will be replaced."""
    from semantic_genesis.utils.errors import SemgenError

    if not (out / "metrics.json").is_file():
        if (out / LAST_PT).is_file() and not overwrite:
            raise SemgenError(f"holds a stopped fine-tuning run ({LAST_PT}); pass --resume to "
                              "continue it, or --overwrite to start again", out)
        return
    present = ", ".join(n for n in RUN_FILES if (out / n).exists())
    if not overwrite:
        raise SemgenError(f"holds a finished run ({present}); pass --overwrite to retrain and "
                          "replace it, or choose another --out", out)
    print(f"--overwrite: replacing the finished run in {out} ({present})")


def run(args: argparse.Namespace) -> int:
    """Run ``semgen finetune``."""
    from semantic_genesis.data.targets import check_target, prepare_target
    from semantic_genesis.finetune import FinetuneConfig, finetune
    from semantic_genesis.finetune.backbone import check_backbone
    from semantic_genesis.utils.config import from_dict
    from semantic_genesis.utils.outdir import claim_output

    flags = _flags(args)
    config = from_dict(FinetuneConfig, flags, source="command line")  # ranges, before any work
    recipe = config.resolved_recipe()
    sizes = {"patch": recipe.patch, "inference_patch": config.inference_patch}
    check_backbone(config.init, config.backbone, sizes)  # readable, its family, sizes it takes
    if args.target:
        check_target(args.target, config.task)
    out = Path(args.out)
    check_resume(out, args.resume, args.overwrite)
    inputs = [p for p in (args.data, None if config.init == "scratch" else config.init) if p]
    with claim_output(out, "finetune", inputs=inputs, legacy=RUN_FILES[:2], settings=flags):
        if not args.resume:
            check_finished(out, args.overwrite)
        data, notes, settings = args.data, "", {}
        if args.target:
            target = prepare_target(args.target, out / "target")
            data, settings, notes = str(target.data_dir), dict(target.settings), target.notes
            print(f"target {args.target}: {notes}")
            config = from_dict(FinetuneConfig, {**settings, **flags}, source=args.target)
        result = finetune(data, out, config, save_model=not args.no_save_model, notes=notes)
    print(
        f"test {result.metric} = {result.score:.4f} (best epoch {result.best_epoch} of "
        f"{result.epochs_run}); outputs in {result.out_dir}"
    )
    return 0

