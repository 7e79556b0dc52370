"""The file contracts between stages (docs/design.md), in one place.

Each stage reads only the files of the stage before it, through the readers here:

- ``cohort/cohort.csv``: one row per usable volume (:class:`CohortRecord`); the volumes are
  ``volumes/<id>.npy`` in [0, 1], axis order (x, y, z), memory-mappable.
- ``patterns/patterns.csv``: one row per instance of a discovered class (:class:`PatternRecord`);
  ``patterns/classes.csv``: one row per class (:class:`ClassRecord`); ``patterns/discover.json``
  names the cohort it was discovered in and that cohort's fingerprint.

Columns may grow (extra columns are kept in ``extra``); the named ones must stay.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semantic_genesis.utils.atomic import atomic_path
from semantic_genesis.utils.errors import SemgenError

COHORT_CSV = "cohort.csv"
PATTERNS_CSV = "patterns.csv"
CLASSES_CSV = "classes.csv"
DISCOVER_JSON = "discover.json"

COHORT_COLUMNS = ["id", "split", "source", "modality", "shape_x", "shape_y", "shape_z",
                  "spacing_x", "spacing_y", "spacing_z", "sha256", "file"]
PATTERN_COLUMNS = ["class", "split", "patient_id", "rank", "x", "y", "z",
                   "size_x", "size_y", "size_z"]
CLASS_COLUMNS = ["class", "patient_id", "x", "y", "z", "air_score"]


@dataclass(frozen=True)
class CohortRecord:
    """One prepared volume: ``cohort/volumes/<id>.npy`` and where it came from."""

    id: str
    split: str  # "train" or "val", per patient
    source: str  # the input path it was read from
    modality: str  # "ct" or "mr"
    shape: tuple[int, int, int]  # (x, y, z)
    spacing: tuple[float, float, float]  # mm, (x, y, z)
    sha256: str  # of the source file(s)
    file: str  # relative to the cohort folder, e.g. "volumes/<id>.npy"
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    def row(self) -> dict[str, Any]:
        return {"id": self.id, "split": self.split, "source": self.source,
                "modality": self.modality,
                "shape_x": self.shape[0], "shape_y": self.shape[1], "shape_z": self.shape[2],
                "spacing_x": f"{self.spacing[0]:.6g}", "spacing_y": f"{self.spacing[1]:.6g}",
                "spacing_z": f"{self.spacing[2]:.6g}", "sha256": self.sha256, "file": self.file,
                **self.extra}

    @classmethod
    def from_row(cls, row: dict[str, str]) -> CohortRecord:
        extra = {k: v for k, v in row.items() if k not in COHORT_COLUMNS}
        return cls(id=row["id"], split=row["split"], source=row["source"],
                   modality=row["modality"],
                   shape=(int(row["shape_x"]), int(row["shape_y"]), int(row["shape_z"])),
                   spacing=(float(row["spacing_x"]), float(row["spacing_y"]),
                            float(row["spacing_z"])),
                   sha256=row["sha256"], file=row["file"], extra=extra)


@dataclass(frozen=True)
class PatternRecord:
    """One instance of a discovered class: the base crop ``[x:x+size_x, y:y+size_y, z:z+size_z]``
    of patient ``patient_id``; ``rank`` is the neighbour rank (0 = the reference patient)."""

    cls: int
    split: str
    patient_id: str
    rank: int
    x: int
    y: int
    z: int
    size: tuple[int, int, int]

    def row(self) -> dict[str, Any]:
        return {"class": self.cls, "split": self.split, "patient_id": self.patient_id,
                "rank": self.rank, "x": self.x, "y": self.y, "z": self.z,
                "size_x": self.size[0], "size_y": self.size[1], "size_z": self.size[2]}

    @classmethod
    def from_row(cls, row: dict[str, str]) -> PatternRecord:
        return cls(cls=int(row["class"]), split=row["split"], patient_id=row["patient_id"],
                   rank=int(row["rank"]), x=int(row["x"]), y=int(row["y"]), z=int(row["z"]),
                   size=(int(row["size_x"]), int(row["size_y"]), int(row["size_z"])))


@dataclass(frozen=True)
class ClassRecord:
    """One discovered class: its reference patient, base-crop corner and air score."""

    cls: int
    patient_id: str
    x: int
    y: int
    z: int
    air_score: float
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    def row(self) -> dict[str, Any]:
        return {"class": self.cls, "patient_id": self.patient_id, "x": self.x, "y": self.y,
                "z": self.z, "air_score": f"{self.air_score:.6g}", **self.extra}

    @classmethod
    def from_row(cls, row: dict[str, str]) -> ClassRecord:
        extra = {k: v for k, v in row.items() if k not in CLASS_COLUMNS}
        return cls(cls=int(row["class"]), patient_id=row["patient_id"], x=int(row["x"]),
                   y=int(row["y"]), z=int(row["z"]), air_score=float(row["air_score"]),
                   extra=extra)


# ---------------------------------------------------------------------------------------------
# generic CSV reading/writing


def write_csv(path: str | Path, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> Path:
    """Write rows atomically; columns beyond ``columns`` found in rows are appended in order."""
    rows = list(rows)
    header = list(columns)
    for r in rows:
        header.extend(k for k in r if k not in header)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)


def read_csv(path: str | Path, required: Sequence[str]) -> list[dict[str, str]]:
    """Read a CSV as dicts; a missing file or missing columns is one clear error."""
    path = Path(path)
    if not path.is_file():
        raise SemgenError("file not found", path)
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise SemgenError(f"missing column(s) {', '.join(missing)}", path)
        return list(reader)


# ---------------------------------------------------------------------------------------------
# cohort


def write_cohort(cohort_dir: str | Path, records: Iterable[CohortRecord]) -> Path:
    """Write ``cohort.csv`` (sorted by id) atomically."""
    records = sorted(records, key=lambda r: r.id)
    return write_csv(Path(cohort_dir) / COHORT_CSV, COHORT_COLUMNS, (r.row() for r in records))


def read_cohort(cohort_dir: str | Path) -> list[CohortRecord]:
    """Read ``cohort.csv`` of a prepared cohort folder."""
    path = Path(cohort_dir) / COHORT_CSV
    if not path.is_file():
        raise SemgenError("not a prepared cohort (no cohort.csv); run `semgen prepare` first",
                          cohort_dir)
    return [CohortRecord.from_row(r) for r in read_csv(path, COHORT_COLUMNS)]


def open_volume(cohort_dir: str | Path, record: CohortRecord) -> np.ndarray:
    """Memory-map a prepared volume (read-only, axis order x, y, z, values in [0, 1])."""
    path = Path(cohort_dir) / record.file
    try:
        return np.load(path, mmap_mode="r")
    except FileNotFoundError:
        raise SemgenError("volume listed in cohort.csv is missing", path) from None
    except ValueError as exc:
        raise SemgenError(f"not a readable .npy volume ({exc})", path) from None


def cohort_fingerprint(records: Iterable[CohortRecord]) -> str:
    """A short hash of (id, sha256, shape) of every volume: which data a result was made from."""
    h = hashlib.sha256()
    for r in sorted(records, key=lambda r: r.id):
        h.update(f"{r.id}:{r.sha256}:{r.shape}\n".encode())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# patterns


def write_patterns(patterns_dir: str | Path, records: Iterable[PatternRecord]) -> Path:
    """Write ``patterns.csv`` sorted by (class, split, rank) atomically."""
    records = sorted(records, key=lambda r: (r.cls, r.split != "train", r.rank, r.patient_id))
    return write_csv(Path(patterns_dir) / PATTERNS_CSV, PATTERN_COLUMNS,
                     (r.row() for r in records))


def read_patterns(patterns_dir: str | Path) -> list[PatternRecord]:
    """Read ``patterns.csv`` of a discovered patterns folder."""
    path = Path(patterns_dir) / PATTERNS_CSV
    if not path.is_file():
        raise SemgenError("not a patterns folder (no patterns.csv); run `semgen discover` first",
                          patterns_dir)
    return [PatternRecord.from_row(r) for r in read_csv(path, PATTERN_COLUMNS)]


def write_classes(patterns_dir: str | Path, records: Iterable[ClassRecord]) -> Path:
    """Write ``classes.csv`` sorted by class atomically."""
    records = sorted(records, key=lambda r: r.cls)
    return write_csv(Path(patterns_dir) / CLASSES_CSV, CLASS_COLUMNS, (r.row() for r in records))


def read_classes(patterns_dir: str | Path) -> list[ClassRecord]:
    """Read ``classes.csv`` of a discovered patterns folder."""
    return [ClassRecord.from_row(r)
            for r in read_csv(Path(patterns_dir) / CLASSES_CSV, CLASS_COLUMNS)]


def read_discover_info(patterns_dir: str | Path) -> dict[str, Any]:
    """Read ``discover.json``; it holds at least ``cohort`` (absolute path of the cohort folder),
    ``cohort_fingerprint``, ``n_classes`` and ``patch`` ([x, y, z])."""
    path = Path(patterns_dir) / DISCOVER_JSON
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise SemgenError("not a patterns folder (no discover.json)", patterns_dir) from None
    except json.JSONDecodeError as exc:
        raise SemgenError(f"corrupt JSON ({exc.msg})", path) from None
    for key in ("cohort", "cohort_fingerprint", "n_classes", "patch"):
        if key not in info:
            raise SemgenError(f"missing key '{key}'", path)
    return info


def as_dict(record: Any) -> dict[str, Any]:
    """A record as a plain dict (for JSON reports)."""
    return dataclasses.asdict(record)
