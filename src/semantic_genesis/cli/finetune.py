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

from semantic_genesis.cli.options import Option, add_config_options, given_settings

#: files of a finished run (also what marks a folder written by releases before the marker)
RUN_FILES = ("metrics.json", "config.yaml", "model.pt", "predictions.csv", "predictions",
             "curves.png", "metrics.csv", "checkpoints")
#: what a killed run leaves to resume from
LAST_PT = Path("checkpoints") / "last.pt"


#: FinetuneConfig's fields as options (their words are the fields' own), but for these two
OPTIONS = {
    "task": Option(help="classify candidates (AUC) or segment volumes (IoU, Dice); required "
                   "unless a --config file sets it", show_default=False),
    "resume": Option(help="continue the killed run in --out from its checkpoints/last.pt, "
                     "exactly (give the same options; never taken from a --config file)"),
}
#: how a run was started, not what it trains: a saved config.yaml re-runs without it
RUN_FOLDER_FIELDS = ("resume",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``semgen finetune``: the data, the folder, one per FinetuneConfig field."""
    from semantic_genesis.finetune.config import FinetuneConfig

    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="data folder (LUNA16 layout or images/ + labels/)")
    src.add_argument(
        "--target",
        help="a built-in target instead of --data: phantom-ncc, "
        "phantom-ncs, lung-tumour, mni152-tissue",
    )
    parser.add_argument("--out", required=True, help="output folder (new, empty, or an earlier "
                        "finetune run's)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the finished or stopped run already in --out (else it is "
                        "refused)")
    parser.add_argument("--no-save-model", action="store_true",
                        help="do not keep the weights: no model.pt, and checkpoints/ is removed "
                        "once the run has finished")
    add_config_options(parser, FinetuneConfig, OPTIONS)


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    """The FinetuneConfig fields the user chose: --config file < options < --set (a target's
    own settings go below them all)."""
    from semantic_genesis.finetune.config import FinetuneConfig
    from semantic_genesis.utils.errors import SemgenError

    flags = given_settings(FinetuneConfig, args, file_ignores=RUN_FOLDER_FIELDS)
    if "task" not in flags:
        raise SemgenError("--task is required (classify or segment), or a --config file that "
                          "sets it")
    return flags


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
    check_backbone(config.init, config.backbone, sizes, config.width)  # family, width, sizes
    if args.target:
        check_target(args.target, config.task)
    out = Path(args.out)
    check_resume(out, config.resume, args.overwrite)
    inputs = [p for p in (args.data, None if config.init == "scratch" else config.init) if p]
    with claim_output(out, "finetune", inputs=inputs, legacy=RUN_FILES[:2], settings=flags):
        if not config.resume:
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

