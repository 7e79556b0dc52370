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

from semantic_genesis.cli.options import Option, add_config_options, config_from_args

#: how PrepareConfig's fields appear here: all as --field-name, from the field
OPTIONS: dict[str, Option] = {}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`semgen prepare INPUT... --out COHORT [options]`; the options are PrepareConfig's."""
    from semantic_genesis.prepare.config import PrepareConfig

    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="scan files or folders (searched recursively)")
    parser.add_argument("--out", required=True, metavar="COHORT", help="cohort folder to write")
    add_config_options(parser, PrepareConfig, OPTIONS)


def run(args: argparse.Namespace) -> int:
    from semantic_genesis.io.formats import display_path
    from semantic_genesis.prepare.cohort import PrepareConfig, prepare
    from semantic_genesis.utils import dist
    from semantic_genesis.utils.errors import SemgenError

    config = config_from_args(PrepareConfig, args, OPTIONS)
    report = prepare(args.inputs, args.out, config)
    if not dist.is_main():
        return 0
    out = display_path(args.out)
    for item in report.skipped:
        _say(f"skipped {item['input']}: {item['reason']}")
    _print_changes(report.volumes, report.removed_ids, out)
    if config.modality == "auto" and report.volumes:
        counts = Counter(v["modality"] for v in report.volumes)
        for modality, n in sorted(counts.items()):
            example = next(v for v in report.volumes if v["modality"] == modality)
            _say(f"--modality auto chose {modality} for {n} volume(s), e.g. {example['source']}: "
                 f"{example['modality_reason']}")
    if any(report.groups):  # LUNA16 subsets (prepare.groups): what pre-training may leave out
        _say("volumes per source group: " + ", ".join(
            f"{g or '(none)'} {n}" for g, n in report.groups.items()))
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
