"""A patterns folder made for training tests: small 16^3 cubes at three clearly different places
(inside a lung, between the lungs, outside the body), so pseudo-classes are learnable within a
few epochs at width 8."""

from __future__ import annotations

from pathlib import Path

import pytest

from semantic_genesis.io.manifests import (
    DISCOVER_JSON,
    ClassRecord,
    PatternRecord,
    cohort_fingerprint,
    write_classes,
    write_patterns,
)
from semantic_genesis.utils.atomic import write_json
from tests.helpers import make_cohort

PATCH = (16, 16, 16)
SHAPE = (64, 64, 40)
#: class corners: lung|mediastinum edge, mediastinum, air outside the body (tests.helpers).
CORNERS = ((14, 24, 12), (24, 24, 12), (0, 0, 12))


def write_engine_patterns(
    patterns_dir: Path, cohort_dir: Path, records: list, corners: tuple = CORNERS
) -> Path:
    """Every patient is an instance of every class at the class's corner."""
    rows, classes = [], []
    for c, (x, y, z) in enumerate(corners):
        for rank, r in enumerate(records):
            rows.append(
                PatternRecord(
                    cls=c, split=r.split, patient_id=r.id, rank=rank, x=x, y=y, z=z, size=PATCH
                )
            )
        classes.append(ClassRecord(cls=c, patient_id=records[0].id, x=x, y=y, z=z, air_score=0.0))
    write_patterns(patterns_dir, rows)
    write_classes(patterns_dir, classes)
    write_json(
        patterns_dir / DISCOVER_JSON,
        {
            "cohort": str(cohort_dir.resolve()),
            "cohort_fingerprint": cohort_fingerprint(records),
            "n_classes": len(corners),
            "patch": list(PATCH),
        },
    )
    return patterns_dir


@pytest.fixture(scope="session")
def engine_cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """10 synthetic patients (6 train, 4 val), 64x64x40."""
    path = tmp_path_factory.mktemp("engine_cohort")
    return path, make_cohort(path, n=10, shape=SHAPE, n_val=4, seed=1)


@pytest.fixture(scope="session")
def engine_patterns(tmp_path_factory: pytest.TempPathFactory, engine_cohort) -> Path:
    """3 classes x 6 training / 4 validation instances, patch 16^3."""
    cohort_dir, records = engine_cohort
    return write_engine_patterns(tmp_path_factory.mktemp("engine_patterns"), cohort_dir, records)
