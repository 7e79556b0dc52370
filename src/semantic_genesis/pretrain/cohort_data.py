"""Cohort data (``Method.data = "cohort"``): random air-test cubes cut straight from the scans.

This is the Models Genesis data recipe (ModelsGenesis ``infinite_generator_3D.py``,
method.md §3.1), with no discovery and no classes:

- per scan, corners are drawn uniformly inside borders of 100 / 100 / 30 voxels (scaled down
  for small volumes exactly as self-discovery's, :func:`discovery.coordinates.corner_bounds`),
  and a ``patch`` window plus the air test's 3 look-ahead slices (64 x 64 x (32 + 3)) is kept
  when it passes the same air test as self-discovery (score <= 0.15;
  :func:`discovery.coordinates.cube_scores`; for MR the foreground test);
- a scan yields up to ``cubes_per_scan`` (32) cubes, after at most ``cube_tries`` x
  ``cubes_per_scan`` (50 x 32) tries, in the order drawn; a scan too small for the cube, or
  without a passing corner, yields none (the reference returned None for it);
- the cubes are drawn **once per run** from a fixed seed (``derive_rng(seed, "cohort-cubes",
  patient id)``: the same cubes whatever the order or number of scans, as the reference drew
  its cubes once, with ``random.seed(1)``) and listed in the run folder's ``cubes.csv``
  (``patterns.csv``'s columns, class 0, ``rank`` = the cube's number within its scan, plus the
  air-test ``score``), written atomically; a resumed run redraws them and refuses a cohort
  whose cubes changed;
- the split: for LUNA16 (every scan in a ``subsetN`` group) subsets 5 and 6 validate and the
  others train (the reference: 0-4 train, 5-6 validate; 7-9 are excluded by default through
  ``exclude_groups``); otherwise ``cohort.csv``'s ``split``.

The cubes are cut on the fly from the memory-mapped volumes by the same code as the patterns'
(:class:`~semantic_genesis.pretrain.dataset.CubeDataset`), without multi-resolution crops (Models
Genesis has none).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from semantic_genesis.discovery.coordinates import (
    CoordinateRules,
    accepted,
    corner_bounds,
    cube_scores,
    draw_corners,
)
from semantic_genesis.io.manifests import (
    PATTERN_COLUMNS,
    CohortRecord,
    PatternRecord,
    open_volume,
    read_csv_lines,
    write_csv,
)
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.seed import derive_rng

if TYPE_CHECKING:  # pragma: no cover - types only
    from semantic_genesis.pretrain.data import PatternsInfo

CUBES_CSV = "cubes.csv"
CUBE_COLUMNS = [*PATTERN_COLUMNS, "score"]
#: LUNA16 subsets the reference validated on (0-4 train, 7-9 held out; method.md §1)
LUNA_VALIDATION = ("subset5", "subset6")
#: corners tested per batch (a fixed number, so a seed always gives the same cubes)
TRY_CHUNK = 64
_LUNA = re.compile(r"subset\d+")


def cube_split(record: CohortRecord, luna: bool) -> str:
    """``val`` for LUNA16 subsets 5-6 when the cohort is LUNA16 (``luna``), else train; a
    cohort of another layout keeps ``cohort.csv``'s split."""
    from semantic_genesis.prepare.groups import record_group

    if luna:
        return "val" if record_group(record) in LUNA_VALIDATION else "train"
    return record.split


def is_luna(records: Sequence[CohortRecord]) -> bool:
    """True when every record sits in a LUNA16 ``subsetN`` group."""
    from semantic_genesis.prepare.groups import record_group

    return bool(records) and all(_LUNA.fullmatch(record_group(r)) for r in records)


def scan_cubes(volume: np.ndarray, rng: np.random.Generator, rules: CoordinateRules,
               wanted: int, tries: int, modality: str = "ct") -> tuple[np.ndarray, np.ndarray]:
    """Up to ``wanted`` corners that pass the air test, after at most ``tries`` draws, in the
    order drawn (``infinite_generator_from_one_volume``); ``(corners (m, 3), scores (m,))``."""
    lo, hi = corner_bounds(volume.shape, rules)
    if np.any(hi < lo):
        return np.zeros((0, 3), np.int64), np.zeros(0)
    corners, scores, drawn = [], [], 0
    while drawn < tries and len(corners) < wanted:
        n = min(TRY_CHUNK, tries - drawn)
        trial = draw_corners(rng, lo, hi, n)
        score = cube_scores(volume, trial, rules, modality)
        keep = np.flatnonzero(accepted(score, rules))[: wanted - len(corners)]
        corners.extend(trial[keep])
        scores.extend(score[keep])
        drawn += n
    return np.asarray(corners, np.int64).reshape(-1, 3), np.asarray(scores, np.float64)


def draw_cubes(cohort_dir: Path, records: Sequence[CohortRecord], patch: Sequence[int],
               per_scan: int, tries_per_cube: int, seed: int) -> list[tuple[PatternRecord, float]]:
    """The cubes of every scan (module docstring): ``(row, air-test score)`` in record order."""
    from semantic_genesis.discovery.references import modality_of
    from semantic_genesis.utils.progress import progress

    rules = CoordinateRules(patch=tuple(int(v) for v in patch))  # type: ignore[arg-type]
    luna = is_luna(records)
    out: list[tuple[PatternRecord, float]] = []
    for record in progress(records, desc="cohort cubes", unit="scan"):
        rng = derive_rng(seed, "cohort-cubes", record.id)
        volume = open_volume(cohort_dir, record)
        corners, scores = scan_cubes(volume, rng, rules, per_scan, tries_per_cube * per_scan,
                                     modality_of(record))
        split = cube_split(record, luna)
        for k, ((x, y, z), score) in enumerate(zip(corners.tolist(), scores, strict=True)):
            row = PatternRecord(cls=0, split=split, patient_id=record.id, rank=k, x=x, y=y, z=z,
                                size=rules.patch)
            out.append((row, float(score)))
    return out


def write_cubes(path: Path, cubes: list[tuple[PatternRecord, float]]) -> Path:
    """Write ``cubes.csv`` atomically."""
    return write_csv(path, CUBE_COLUMNS,
                     ({**row.row(), "score": f"{score:.6f}"} for row, score in cubes))


def read_cubes(path: Path) -> list[PatternRecord]:
    """Read a run's ``cubes.csv`` (each row checked as a ``patterns.csv`` row)."""
    return [PatternRecord.from_row(row, path, line)
            for line, row in read_csv_lines(path, CUBE_COLUMNS)]


def prepare_cubes(info: PatternsInfo, out_dir: Path, config: Any, main: bool) -> PatternsInfo:
    """Draw the run's cubes (rank 0 writes ``out_dir/cubes.csv``; other ranks read it after a
    barrier) and return ``info`` with the manifest, split counts and the patients seen.

    Raises:
        SemgenError: no cube in the training split (scans too small or never passing the air
            test), or a resumed run whose stored cubes differ from the cohort's now.
    """
    from semantic_genesis.utils.dist import barrier

    path = out_dir / CUBES_CSV
    if main:
        cubes = draw_cubes(info.cohort_dir, info.records, info.patch, config.cubes_per_scan,
                           config.cube_tries, config.seed)
        _check_stored(path, cubes, config)
        write_cubes(path, cubes)
    barrier()
    rows = read_cubes(path)
    counts = Counter(r.split for r in rows)
    if not counts["train"]:
        raise SemgenError(
            f"no training cube in the cohort: no {'x'.join(map(str, info.patch))} window of its "
            f"{sum(r.split == 'train' for r in info.records)} training scan(s) passed the air "
            "test within the borders (a smaller --patch, or larger scans)",
            info.cohort_dir,
        )
    return replace(info, cubes=path, train_counts={0: counts["train"]},
                   val_counts={0: counts["val"]} if counts["val"] else {},
                   seen=tuple(sorted({r.patient_id for r in rows})))


def _check_stored(path: Path, cubes: list[tuple[PatternRecord, float]], config: Any) -> None:
    """On resume, the cubes drawn now must be the stored ones (the cohort did not change)."""
    if not (config.resume and path.is_file()):
        return
    if read_cubes(path) != [row for row, _ in cubes]:
        raise SemgenError(
            "cannot resume: the cohort's cubes differ from the ones this run trained on (was "
            "the cohort prepared again?); start a new run with --overwrite",
            path,
        )


def cohort_datasets(info: PatternsInfo, seed: int) -> tuple[Any, Any | None]:
    """Training and validation :class:`CohortCubes` of a run's ``cubes.csv`` (validation is
    None when no scan validates)."""
    train = CohortCubes(info, "train", seed)
    val = CohortCubes(info, "val", seed) if info.val_counts else None
    return train, val


def CohortCubes(info: PatternsInfo, split: str, seed: int) -> Any:  # noqa: N802 - a factory
    """The cubes of ``split`` listed in ``info.cubes``, class 0, no multi-resolution crops."""
    from semantic_genesis.pretrain.dataset import CubeDataset

    if info.cubes is None:
        raise ValueError("the cohort's cubes are not drawn yet (prepare_cubes)")
    rows = [r for r in read_cubes(info.cubes) if r.split == split]
    return CubeDataset(info.cohort_dir, info.records, rows, info.cubes, info.patch, 1, split,
                       multires=False, seed=seed)
