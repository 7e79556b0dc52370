"""The file contracts between stages (docs/design.md), in one place.

Each stage reads only the files of the stage before it, through the readers here:

- ``cohort/cohort.csv``: one row per usable volume (:class:`CohortRecord`); the volumes are
  ``volumes/<id>.npy`` in [0, 1], axis order (x, y, z), memory-mappable; the optional
  ``group`` column holds each case's source group (its LUNA16 subset), "" when absent.
- ``patterns/patterns.csv``: one row per instance of a discovered class (:class:`PatternRecord`);
  ``patterns/classes.csv``: one row per class (:class:`ClassRecord`); ``patterns/discover.json``
  names the cohort it was discovered in and that cohort's fingerprint.

Columns may grow (extra columns are kept in ``extra``); the named ones must stay.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
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
#: columns ``cohort.csv`` may lack (a cohort prepared by an older release): read as ""
#: (``group``: the case's source group, e.g. its LUNA16 subset; prepare.groups)
OPTIONAL_COHORT_COLUMNS = ["group"]
PATTERN_COLUMNS = ["class", "split", "patient_id", "rank", "x", "y", "z",
                   "size_x", "size_y", "size_z"]
CLASS_COLUMNS = ["class", "patient_id", "x", "y", "z", "air_score"]


SPLITS = ("train", "val")
MODALITY_NAMES = ("ct", "mr", "none")


class RowReader:
    """Reads the fields of one CSV row against the contract, so that a bad value is ONE
    :class:`SemgenError` naming the file, the line and the field (not a ``ValueError``)."""

    def __init__(self, row: dict[str, str | None], path: str | Path | None = None,
                 line: int | None = None) -> None:
        self.row, self.path, self.line = row, path, line

    def fail(self, name: str, problem: str) -> SemgenError:
        where = f"line {self.line}, " if self.line is not None else ""
        return SemgenError(f"{where}field '{name}': {problem}", self.path)

    def text(self, name: str, choices: Sequence[str] | None = None) -> str:
        value = (self.row.get(name) or "").strip()
        if not value:
            raise self.fail(name, "is empty")
        if choices is not None and value.lower() not in choices:
            raise self.fail(name, f"{value!r} is not one of {', '.join(choices)}")
        return value.lower() if choices is not None else value

    def integer(self, name: str, ge: int = 0) -> int:
        raw = (self.row.get(name) or "").strip()
        try:
            value = int(raw)
        except ValueError:
            raise self.fail(name, f"{raw!r} is not a whole number") from None
        if value < ge:
            raise self.fail(name, f"{value} must be at least {ge}")
        return value

    def number(self, name: str, gt: float | None = None) -> float:
        raw = (self.row.get(name) or "").strip()
        try:
            value = float(raw)
        except ValueError:
            raise self.fail(name, f"{raw!r} is not a number") from None
        if not math.isfinite(value):
            raise self.fail(name, f"{raw!r} is not a finite number")
        if gt is not None and value <= gt:
            raise self.fail(name, f"{value:g} must be greater than {gt:g}")
        return value

    def relative_file(self, name: str) -> str:
        value = self.text(name)
        parts = Path(value).parts
        if Path(value).is_absolute() or ".." in parts:
            raise self.fail(name, f"{value!r} must be a path inside the cohort folder")
        return value


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
    group: str = ""  # source group, e.g. "subset3" for LUNA16 (prepare.groups); "" = none

    def row(self) -> dict[str, Any]:
        return {"id": self.id, "split": self.split, "source": self.source,
                "modality": self.modality,
                "shape_x": self.shape[0], "shape_y": self.shape[1], "shape_z": self.shape[2],
                "spacing_x": f"{self.spacing[0]:.6g}", "spacing_y": f"{self.spacing[1]:.6g}",
                "spacing_z": f"{self.spacing[2]:.6g}", "sha256": self.sha256, "file": self.file,
                "group": self.group, **self.extra}

    @classmethod
    def from_row(cls, row: dict[str, str], path: str | Path | None = None,
                 line: int | None = None) -> CohortRecord:
        """Parse one ``cohort.csv`` row, checking every field (shapes >= 1, spacings > 0 and
        finite, split train/val, modality ct/mr/none, a file inside the cohort folder);
        a missing or empty ``group`` is ""."""
        r = RowReader(row, path, line)
        known = COHORT_COLUMNS + OPTIONAL_COHORT_COLUMNS
        extra = {k: v for k, v in row.items() if k not in known and k is not None}
        return cls(id=r.text("id"), split=r.text("split", SPLITS), source=row["source"] or "",
                   modality=r.text("modality", MODALITY_NAMES),
                   shape=(r.integer("shape_x", 1), r.integer("shape_y", 1),
                          r.integer("shape_z", 1)),
                   spacing=(r.number("spacing_x", 0), r.number("spacing_y", 0),
                            r.number("spacing_z", 0)),
                   sha256=row["sha256"] or "", file=r.relative_file("file"), extra=extra,
                   group=(row.get("group") or "").strip())


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
    def from_row(cls, row: dict[str, str], path: str | Path | None = None,
                 line: int | None = None) -> PatternRecord:
        """Parse one ``patterns.csv`` row (class, rank and corner >= 0, sizes >= 1)."""
        r = RowReader(row, path, line)
        return cls(cls=r.integer("class"), split=r.text("split", SPLITS),
                   patient_id=r.text("patient_id"), rank=r.integer("rank"), x=r.integer("x"),
                   y=r.integer("y"), z=r.integer("z"),
                   size=(r.integer("size_x", 1), r.integer("size_y", 1),
                         r.integer("size_z", 1)))


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
    def from_row(cls, row: dict[str, str], path: str | Path | None = None,
                 line: int | None = None) -> ClassRecord:
        """Parse one ``classes.csv`` row (class and corner >= 0, a finite air score)."""
        r = RowReader(row, path, line)
        extra = {k: v for k, v in row.items() if k not in CLASS_COLUMNS and k is not None}
        return cls(cls=r.integer("class"), patient_id=r.text("patient_id"), x=r.integer("x"),
                   y=r.integer("y"), z=r.integer("z"), air_score=r.number("air_score"),
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
    """Read a UTF-8 CSV as dicts; a missing file, bytes that are not UTF-8, a malformed line or
    missing columns is one clear error naming the file (and the line)."""
    return [row for _, row in read_csv_lines(path, required)]


def read_csv_lines(path: str | Path, required: Sequence[str]
                   ) -> list[tuple[int, dict[str, str]]]:
    """:func:`read_csv` with each row's line number in the file (the header is line 1)."""
    path = Path(path)
    if not path.is_file():
        raise SemgenError("file not found", path)
    try:
        data = path.read_bytes()
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise SemgenError(f"line {line}: not UTF-8 text (byte {data[exc.start]:#04x}); "
                          "is this the right file?", path) from None
    except OSError as exc:
        raise SemgenError(f"cannot read ({exc.strerror})", path) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise SemgenError(f"missing column(s) {', '.join(missing)}", path)
        rows = []
        for row in reader:
            if None in row:
                raise SemgenError(f"line {reader.line_num}: more values than columns", path)
            rows.append((reader.line_num, row))
        return rows
    except csv.Error as exc:
        raise SemgenError(f"line {reader.line_num}: not valid CSV ({exc})", path) from None


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
    records: dict[str, CohortRecord] = {}
    for line, row in read_csv_lines(path, COHORT_COLUMNS):
        rec = CohortRecord.from_row(row, path, line)
        if rec.id in records:
            raise SemgenError(f"line {line}, field 'id': {rec.id!r} appears twice", path)
        records[rec.id] = rec
    return list(records.values())


def open_volume(cohort_dir: str | Path, record: CohortRecord) -> np.ndarray:
    """Memory-map a prepared volume (read-only, axis order x, y, z, values in [0, 1]).

    Raises:
        SemgenError: the file is missing or unreadable, or is not a 3D float array of the
            shape ``cohort.csv`` gives (a volume replaced after ``semgen prepare``).
    """
    path = Path(cohort_dir) / record.file
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise SemgenError("volume listed in cohort.csv is missing", path) from None
    except (ValueError, OSError, EOFError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise SemgenError(f"not a readable .npy volume ({reason})", path) from None
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f" \
            or tuple(array.shape) != tuple(record.shape):
        got = getattr(array, "shape", "?"), getattr(array, "dtype", "?")
        raise SemgenError(f"volume of patient {record.id} is {got[1]} of shape {got[0]}, but "
                          f"cohort.csv says float of shape {record.shape}; it was changed after "
                          "`semgen prepare`: prepare the cohort again", path)
    return array


def check_finite(array: np.ndarray, cohort_dir: str | Path, record: CohortRecord) -> None:
    """Refuse a volume holding NaN or infinite values (naming the patient and its file): NaNs
    pass every threshold test as air and spread through any network that sees them."""
    if not np.isfinite(np.sum(array, dtype=np.float64)):  # no copy of the volume
        raise SemgenError(f"volume of patient {record.id} contains NaN or infinite values; "
                          "prepare the cohort again (or remove this patient)",
                          Path(cohort_dir) / record.file)


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
    return [PatternRecord.from_row(r, path, line)
            for line, r in read_csv_lines(path, PATTERN_COLUMNS)]


def write_classes(patterns_dir: str | Path, records: Iterable[ClassRecord]) -> Path:
    """Write ``classes.csv`` sorted by class atomically."""
    records = sorted(records, key=lambda r: r.cls)
    return write_csv(Path(patterns_dir) / CLASSES_CSV, CLASS_COLUMNS, (r.row() for r in records))


def read_classes(patterns_dir: str | Path) -> list[ClassRecord]:
    """Read ``classes.csv`` of a discovered patterns folder."""
    path = Path(patterns_dir) / CLASSES_CSV
    return [ClassRecord.from_row(r, path, line) for line, r in read_csv_lines(path, CLASS_COLUMNS)]


def read_discover_info(patterns_dir: str | Path) -> dict[str, Any]:
    """Read ``discover.json``; it holds at least ``cohort`` (absolute path of the cohort folder),
    ``cohort_fingerprint``, ``n_classes`` and ``patch`` ([x, y, z])."""
    path = Path(patterns_dir) / DISCOVER_JSON
    try:
        info = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise SemgenError("not a patterns folder (no discover.json)", patterns_dir) from None
    except UnicodeDecodeError:
        raise SemgenError("not UTF-8 text; is this the right file?", path) from None
    except json.JSONDecodeError as exc:
        raise SemgenError(f"corrupt JSON ({exc.msg}, line {exc.lineno})", path) from None
    except OSError as exc:
        raise SemgenError(f"cannot read ({exc.strerror})", path) from None
    if not isinstance(info, dict):
        raise SemgenError("expected a JSON object", path)
    for key in ("cohort", "cohort_fingerprint", "n_classes", "patch"):
        if key not in info:
            raise SemgenError(f"missing key '{key}'", path)
    for key in ("cohort", "cohort_fingerprint"):
        if not isinstance(info[key], str) or not info[key]:
            raise SemgenError(f"key '{key}': {info[key]!r} must be non-empty text", path)
    if not _whole(info["n_classes"], 1):
        raise SemgenError(f"key 'n_classes': {info['n_classes']!r} must be a whole number >= 1",
                          path)
    patch = info["patch"]
    if not isinstance(patch, list) or len(patch) != 3 or not all(_whole(s, 1) for s in patch):
        raise SemgenError(f"key 'patch': {patch!r} must be three whole numbers >= 1", path)
    return info


def _whole(value: Any, ge: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= ge


def as_dict(record: Any) -> dict[str, Any]:
    """A record as a plain dict (for JSON reports)."""
    return dataclasses.asdict(record)
