"""Read scans (NIfTI, MetaImage .mhd/.raw, NRRD, .npy, DICOM series folders) into a cohort folder:
cohort.csv, volumes/<id>.npy in [0, 1] with axis order (x, y, z), prepare-report.json.

Folders are searched recursively; files that look like label maps or masks are skipped (give
them explicitly to include them). Intensities: CT clips HU to [-1000, 1000] and scales to [0, 1]
(the reference); MR maps the (0.5, 99.5) percentiles to [0, 1]; auto decides per volume from the
values (air at -1000 HU means CT). Volumes keep their native spacing unless --spacing is given
(the reference does not resample). Re-running is idempotent and resumes a killed run.

The cohort folder must be new, empty or made by an earlier `semgen prepare`; it may not be or
contain an input, and one run at a time writes into it. Only files prepare wrote are ever
replaced or removed, and each change is printed. A MetaImage/NRRD header whose data file lies
outside its folder is refused unless --allow-external-data. Values that contradict --modality,
a cohort mixing CT and MR and unevenly spaced DICOM slices are printed as warnings and recorded
in prepare-report.json.
Exit status: 0 when at least one volume was prepared, 2 when none was, arguments are wrong or
the folder cannot be written (full or read-only disk).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`semgen prepare INPUT... --out COHORT [options]`."""
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="scan files or folders (searched recursively)")
    parser.add_argument("--out", required=True, metavar="COHORT", help="cohort folder to write")
    parser.add_argument("--modality", choices=["auto", "ct", "mr", "none"], default="auto",
                        help="intensity preset; none = values already in [0, 1]")
    parser.add_argument("--spacing", nargs=3, type=float, metavar=("X", "Y", "Z"), default=None,
                        help="resample to this voxel size in mm (None: keep native spacing)")
    parser.add_argument("--val-fraction", type=float, default=0.1,
                        help="share of patients in the validation split")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/val split")
    parser.add_argument("--workers", type=int, default=1, help="processes (per torchrun rank)")
    parser.add_argument("--min-shape", nargs=3, type=int, metavar=("X", "Y", "Z"),
                        default=[64, 64, 32], help="smallest usable volume in voxels")
    parser.add_argument("--npy-spacing", nargs=3, type=float, metavar=("X", "Y", "Z"),
                        default=[1.0, 1.0, 1.0], help="voxel size assumed for .npy inputs (mm)")
    parser.add_argument("--dtype", choices=["float16", "float32"], default="float16",
                        help="stored volume type")
    parser.add_argument("--window", nargs=2, type=float, metavar=("LOW", "HIGH"),
                        default=[-1000.0, 1000.0],
                        help="CT window in HU mapped to [0, 1] (values outside are clipped)")
    parser.add_argument("--percentiles", nargs=2, type=float, metavar=("LOW", "HIGH"),
                        default=[0.5, 99.5], help="MR percentiles mapped to 0 and 1")
    parser.add_argument("--allow-external-data", action="store_true",
                        help="read a MetaImage/NRRD data file that its header names outside "
                             "the header's folder (refused by default)")


def run(args: argparse.Namespace) -> int:
    from semantic_genesis.io.formats import display_path
    from semantic_genesis.prepare.cohort import PrepareConfig, prepare
    from semantic_genesis.utils import dist
    from semantic_genesis.utils.errors import SemgenError

    config = PrepareConfig(
        modality=args.modality, spacing=tuple(args.spacing) if args.spacing else None,
        val_fraction=args.val_fraction, seed=args.seed, workers=args.workers, dtype=args.dtype,
        min_shape=tuple(args.min_shape), npy_spacing=tuple(args.npy_spacing),
        window=tuple(args.window), percentiles=tuple(args.percentiles),
        allow_external_data=args.allow_external_data)
    report = prepare(args.inputs, args.out, config)
    if not dist.is_main():
        return 0
    out = display_path(args.out)
    for item in report.skipped:
        _say(f"skipped {item['input']}: {item['reason']}")
    _print_changes(report.volumes, report.removed_ids, out)
    if args.modality == "auto" and report.volumes:
        counts = Counter(v["modality"] for v in report.volumes)
        for modality, n in sorted(counts.items()):
            example = next(v for v in report.volumes if v["modality"] == modality)
            _say(f"--modality auto chose {modality} for {n} volume(s), e.g. {example['source']}: "
                 f"{example['modality_reason']}")
    for warning in report.warnings:
        _say(f"warning: {warning}")
    if report.n_prepared == 0:
        raise SemgenError("no volume was prepared (see prepare-report.json)", out)
    reused = sum(v["status"] == "reused" for v in report.volumes)
    n_val = sum(r.split == "val" for r in report.records)
    print(f"semgen prepare: {report.n_prepared} volume(s) in {out} ({reused} unchanged, "
          f"{n_val} val), {len(report.skipped)} skipped")
    return 0


def _say(line: str) -> None:
    print(f"semgen prepare: {line}", file=sys.stderr)


def _print_changes(volumes: list[dict], removed_ids: list[str], out: str) -> None:
    """Print what this run changed in a cohort folder made before (redone and removed)."""
    redone: dict[str, list[str]] = {}
    for v in volumes:
        if v.get("replaced"):
            redone.setdefault(v["replaced"], []).append(v["id"])
    for why, ids in sorted(redone.items()):
        _say(f"redid {len(ids)} volume(s) of the earlier run in {out} ({why}): {_ids(ids)}")
    if removed_ids:
        _say(f"removed {len(removed_ids)} volume(s) of the earlier run from {out} (not prepared "
             f"in this run): {_ids(removed_ids)}")


def _ids(ids: list[str], shown: int = 20) -> str:
    return ", ".join(ids[:shown]) + (f", ... ({len(ids) - shown} more)" if len(ids) > shown else "")
