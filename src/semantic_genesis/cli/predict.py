"""Run a fine-tuned checkpoint (``model.pt`` or ``checkpoints/best.pt`` of `semgen finetune`)
on new scans: files, folders (searched like `semgen prepare`'s inputs) or a prepared cohort, in
any format `semgen prepare` reads.

Segmentation: each scan is normalised and resampled as the checkpoint's model card says
(spacing, HU window, orientation), run with MONAI's sliding-window inference, and its label map
(uint8; --probabilities adds float32 probability maps) written as NIfTI on the scan's own grid
to OUT/labels/<id>.nii.gz, with a sidecar <id>.json and, with --montage, an overlay <id>.png.
Classification: --candidates FILE.csv (LUNA16: seriesuid, coordX, coordY, coordZ[, class])
gives OUT/candidates.csv with a probability per candidate. OUT/predictions.csv lists every
case with its status. A re-run reuses the cases already done with the same checkpoint,
inputs and settings (--overwrite redoes them); an unreadable scan is reported and skipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from semantic_genesis.cli.options import Option, add_config_options, config_from_args

OPTIONS = {
    "candidates": Option(metavar="FILE.csv"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The checkpoint, the inputs, the folder, one option per PredictConfig field."""
    from semantic_genesis.predict.config import PredictConfig

    parser.add_argument("checkpoint", type=Path,
                        help="a fine-tuned checkpoint (model.pt or checkpoints/best.pt)")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="scan files, folders of scans, or a prepared cohort folder")
    parser.add_argument("--out", required=True, type=Path,
                        help="output folder (new, empty, or an earlier predict run's)")
    parser.add_argument("--overwrite", action="store_true",
                        help="redo the cases an earlier run in --out already predicted")
    add_config_options(parser, PredictConfig, OPTIONS)


def run(args: argparse.Namespace) -> int:
    """Run ``semgen predict``; 0 when at least one case was predicted."""
    from semantic_genesis.io.formats import display_path
    from semantic_genesis.predict import PredictConfig, predict

    config = config_from_args(PredictConfig, args, OPTIONS)
    result = predict(args.checkpoint, args.inputs, args.out, config, overwrite=args.overwrite)
    out = display_path(result.out_dir)
    counts = {s: result.count(s) for s in ("done", "reused", "failed", "skipped")}
    what = (f"candidate probabilities in {display_path(result.candidates_csv)}"
            if result.candidates_csv else f"label maps in {out}/labels")
    print(f"semgen predict: {counts['done']} predicted, {counts['reused']} reused, "
          f"{counts['failed']} failed, {counts['skipped']} skipped; {what} "
          f"(summary: {out}/predictions.csv)")
    return 0
