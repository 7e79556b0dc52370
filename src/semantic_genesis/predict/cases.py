"""The scans ``semgen predict`` runs on: files, folders, and prepared cohorts.

Files and folders follow ``semgen prepare``'s rules (``io.inputs.find_scans``: every format
``read_volume`` reads, DICOM series folders, label-like files inside folders skipped, ids from
the file names). A folder holding ``cohort.csv`` is a prepared cohort: its volumes are already
in [0, 1] (``semgen prepare``'s intensity recipe), so they are not normalised again, and their
grid is the one ``cohort.csv`` records (spacing, origin, direction).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semantic_genesis.io.inputs import Skipped, find_scans
from semantic_genesis.io.manifests import COHORT_CSV, CohortRecord, open_volume, read_cohort
from semantic_genesis.io.volume import Volume
from semantic_genesis.utils.errors import SemgenError


@dataclass(frozen=True)
class Case:
    """One scan to predict: its id (output file stem), where it is read from, and, for a
    volume of a prepared cohort, its record."""

    id: str
    path: Path
    cohort: Path | None = None
    record: CohortRecord | None = None

    @property
    def normalised(self) -> bool:
        """True for a prepared volume (values already in [0, 1])."""
        return self.record is not None

    def read(self) -> Volume:
        """The scan with its geometry (raw values, or [0, 1] for a prepared volume)."""
        from semantic_genesis.io.readers import read_volume

        if self.record is None:
            return read_volume(self.path)
        array = np.asarray(open_volume(self.cohort, self.record), dtype=np.float32)
        return Volume(array, self.record.spacing, *_cohort_geometry(self.record), path=self.path)

    def sha256(self) -> str:
        """SHA-256 of what the case is read from (all files of a series or .mhd/.raw pair)."""
        from semantic_genesis.io.formats import sha256_of, source_sha256

        return sha256_of([self.path]) if self.record else source_sha256(self.path)


def _cohort_geometry(record: CohortRecord) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(origin, direction) of a prepared volume from ``cohort.csv``'s extra columns (identity
    and 0 where a cohort predates them)."""
    extra = record.extra
    try:
        origin = tuple(float(extra.get(f"origin_{a}") or 0.0) for a in "xyz")
        direction = tuple(float(d) for d in (extra.get("direction") or "").split())
    except ValueError:
        raise SemgenError(f"cohort.csv: volume {record.id} has a malformed origin or direction",
                          record.file) from None
    if len(direction) != 9:
        direction = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    return origin, direction


def find_cases(inputs: list[str | Path], out_dir: Path) -> tuple[list[Case], list[Skipped]]:
    """The cases of ``inputs`` (sorted by id, ids unique) and the inputs skipped before
    reading, with the reason. ``out_dir`` is never searched."""
    cohorts = [Path(p) for p in inputs if (Path(p) / COHORT_CSV).is_file()]
    others = [p for p in inputs if Path(p) not in cohorts]
    scans, skipped = find_scans(others, exclude=[out_dir]) if others else ([], [])
    cases = [Case(s.id, s.path) for s in scans]
    for folder in cohorts:
        cases += [Case(r.id, folder / r.file, folder, r) for r in read_cohort(folder)]
    return _unique(cases), skipped


def _unique(cases: list[Case]) -> list[Case]:
    """The cases with ids made unique (``-2``, ``-3`` in input order), sorted by id."""
    seen: set[str] = set()
    out = []
    for case in cases:
        name, n = case.id, 1
        while name.casefold() in seen:
            n += 1
            name = f"{case.id}-{n}"
        seen.add(name.casefold())
        out.append(Case(name, case.path, case.cohort, case.record))
    return sorted(out, key=lambda c: c.id)
