"""The file contracts round-trip and give clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from semantic_genesis.manifests import (
    CohortRecord,
    PatternRecord,
    cohort_fingerprint,
    read_cohort,
    read_patterns,
    write_cohort,
    write_patterns,
)
from semantic_genesis.utils import SemgenError


def _rec(i: int) -> CohortRecord:
    return CohortRecord(id=f"p{i}", split="train", source=f"/in/p{i}.nii.gz", modality="ct",
                        shape=(64, 64, 40), spacing=(0.7, 0.7, 2.5), sha256="ab" * 32,
                        file=f"volumes/p{i}.npy")


def test_cohort_round_trip(tmp_path: Path) -> None:
    recs = [_rec(2), _rec(1)]
    write_cohort(tmp_path, recs)
    back = read_cohort(tmp_path)
    assert [r.id for r in back] == ["p1", "p2"]
    assert back[0] == _rec(1)
    assert cohort_fingerprint(back) == cohort_fingerprint(recs)
    assert cohort_fingerprint(back[:1]) != cohort_fingerprint(back)


def test_missing_cohort_is_clear(tmp_path: Path) -> None:
    with pytest.raises(SemgenError, match="semgen prepare"):
        read_cohort(tmp_path)


def test_patterns_round_trip(tmp_path: Path) -> None:
    recs = [PatternRecord(cls=1, split="val", patient_id="p3", rank=0, x=1, y=2, z=3,
                          size=(64, 64, 32)),
            PatternRecord(cls=0, split="train", patient_id="p1", rank=1, x=4, y=5, z=6,
                          size=(64, 64, 32))]
    write_patterns(tmp_path, recs)
    assert read_patterns(tmp_path) == sorted(recs, key=lambda r: r.cls)
