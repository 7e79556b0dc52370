"""Source groups and case identities: what keeps a target's test cases out of pre-training.

- A case's **source group** is where it came from inside its dataset. For LUNA16 it is the
  subset folder (``subset0`` .. ``subset9``) that holds the scan; ``semgen prepare`` records it
  in ``cohort.csv``'s ``group`` column ("" when the input has no such structure).
- **Pre-training never sees LUNA16 subsets 7-9 unless told.** The Semantic Genesis and Models
  Genesis papers pre-train on subsets 0-4 (training) and 5-6 (validation) and keep 7-9 for the
  target tasks' tests (lung nodule false-positive reduction, NCC); :data:`DEFAULT_EXCLUDED_GROUPS`.
- A checkpoint records the **hashed ids** (:func:`case_hash`) of the cases it was pre-trained
  on (``ModelCard.seen_cases``), so ``semgen finetune`` and ``semgen benchmark`` can refuse a
  target whose test case was seen, without the checkpoint naming any patient.
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


def record_group(record: CohortRecord) -> str:
    """The group ``cohort.csv`` gives a record ("" for cohorts prepared before groups)."""
    return record.extra.get("group", "") or ""


def pretraining_records(
    records: Iterable[CohortRecord], exclude: Sequence[str] | None = DEFAULT_EXCLUDED_GROUPS
) -> list[CohortRecord]:
    """The records pre-training may use: those whose group is not in ``exclude`` (None or
    empty: all)."""
    banned = {g.lower() for g in (exclude or ())}
    return [r for r in records if record_group(r).lower() not in banned]


def case_hash(case_id: str) -> str:
    """A short, one-way id of a case (16 hex digits of SHA-256 of its id): the same case
    gives the same hash in the pre-training cohort and in a target."""
    return hashlib.sha256(str(case_id).encode()).hexdigest()[:16]


def case_hashes(case_ids: Iterable[str]) -> list[str]:
    """Sorted, unique :func:`case_hash` of each id."""
    return sorted({case_hash(c) for c in case_ids})
