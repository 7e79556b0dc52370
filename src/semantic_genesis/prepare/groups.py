"""Source groups and case identities: what keeps a target's test cases out of pre-training.

- A case's **source group** is where it came from inside its dataset. For LUNA16 it is the
  subset folder (``subset0`` .. ``subset9``) that holds the scan; ``semgen prepare`` records it
  in ``cohort.csv``'s ``group`` column ("" when the input has no such structure).
- **Pre-training never sees LUNA16 subsets 7-9 unless told.** The Semantic Genesis and Models
  Genesis papers pre-train on subsets 0-4 (training) and 5-6 (validation) and keep 7-9 for the
  target tasks' tests (lung nodule false-positive reduction, NCC); :data:`DEFAULT_EXCLUDED_GROUPS`.
- A checkpoint records the **hashed ids** (:func:`case_hash`) of the cases it was pre-trained
  on (``ModelCard.seen_cases``, from :func:`cohort_case_hashes`), so ``semgen finetune`` and
  ``semgen benchmark`` can refuse a target whose test case was seen, without the checkpoint
  naming any patient (``finetune.leakage``).
- **A case's id is its file name without the format suffix** (the folder name for DICOM),
  sanitised as ``semgen prepare`` does: ``subset3/1.2.3.mhd`` is ``1.2.3`` both in a cohort
  and in a target folder (``finetune.data.case_id``), so the same scan gives the same hash.
  A cohort record is hashed under its cohort id and its source file's stem (they differ only
  when ``prepare`` had to tell clashing names apart).

method.md §1.1 gives the sources.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - types only
    from semantic_genesis.io.manifests import CohortRecord

#: LUNA16 subsets held out of pre-training by default (the NCC test scans).
DEFAULT_EXCLUDED_GROUPS: tuple[str, ...] = ("subset7", "subset8", "subset9")
_LUNA_SUBSET = re.compile(r"subset\d+")


def source_group(path: str | Path) -> str:
    """The source group of an input file or folder: the nearest enclosing ``subsetN`` folder
    (LUNA16's layout), else ""."""
    for part in reversed(Path(path).parts[:-1] if Path(path).suffix else Path(path).parts):
        if _LUNA_SUBSET.fullmatch(part.lower()):
            return part.lower()
    return ""


def normalise_groups(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Group names as configs keep them: lower case, stripped, each once; "" and "none" are
    dropped (None, "", ``[""]`` or "none": no group). A single text may list several,
    separated by commas or spaces (``"subset7,subset8"``), in a list or alone."""
    items = [value] if isinstance(value, str) else list(value or ())
    out: list[str] = []
    for name in (n.lower() for item in items for n in re.split(r"[,\s]+", str(item))):
        if name and name != "none" and name not in out:
            out.append(name)
    return tuple(out)


def record_group(record: CohortRecord) -> str:
    """The group ``cohort.csv`` gives a record ("" for cohorts prepared before groups)."""
    return (record.group or "").lower()


def group_counts(records: Iterable[CohortRecord]) -> dict[str, int]:
    """How many records each group holds (sorted by name; "" for records without a group)."""
    counts: dict[str, int] = {}
    for r in records:
        counts[record_group(r)] = counts.get(record_group(r), 0) + 1
    return dict(sorted(counts.items()))


def pretraining_records(
    records: Iterable[CohortRecord], exclude: Sequence[str] | None = DEFAULT_EXCLUDED_GROUPS
) -> list[CohortRecord]:
    """The records pre-training may use: those whose group is not in ``exclude`` (None or
    empty: all)."""
    banned = set(normalise_groups(exclude))
    return [r for r in records if record_group(r) not in banned]


def case_hash(case_id: str) -> str:
    """A short, one-way id of a case (16 hex digits of SHA-256 of its sanitised id, as
    ``semgen prepare`` names volumes): the same case gives the same hash in the pre-training
    cohort and in a target."""
    from semantic_genesis.io.formats import sanitise

    return hashlib.sha256(sanitise(str(case_id)).encode()).hexdigest()[:16]


def case_hashes(case_ids: Iterable[str]) -> list[str]:
    """Sorted, unique :func:`case_hash` of each id."""
    return sorted({case_hash(c) for c in case_ids})


def record_case_ids(record: CohortRecord) -> set[str]:
    """The ids a target may give this cohort record's case: its cohort id and its source
    file's name without the format suffix (the DICOM folder's name)."""
    from semantic_genesis.io.formats import strip_suffix

    ids = {record.id}
    if record.source:
        ids.add(strip_suffix(Path(record.source).name))
    return ids


def cohort_case_hashes(records: Iterable[CohortRecord]) -> list[str]:
    """What a checkpoint's card records as ``seen_cases`` for the records it was trained on:
    the sorted :func:`case_hash` of every id of :func:`record_case_ids`."""
    return case_hashes(i for r in records for i in record_case_ids(r))
