"""Tiny synthetic cohorts and pattern manifests written straight to the file contracts.

These are for tests of later stages that must not wait for earlier ones: a body ellipse at soft
tissue, two air-filled "lungs" (value 0.07, about -860 HU) and air outside the body. They are not
the realistic phantoms of ``semantic_genesis.data.phantoms``; they only satisfy the contracts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semantic_genesis.io.manifests import (
    DISCOVER_JSON,
    ClassRecord,
    CohortRecord,
    PatternRecord,
    cohort_fingerprint,
    write_classes,
    write_cohort,
    write_patterns,
)
from semantic_genesis.utils.atomic import save_npy_atomic, write_json


def synthetic_volume(shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """A float16 chest-like volume in [0, 1] (x, y, z)."""
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, s) for s in shape), indexing="ij")
    vol = np.zeros(shape, np.float32)  # air
    body = (x / 0.9) ** 2 + (y / 0.7) ** 2 < 1
    vol[body] = 0.52  # soft tissue, about 40 HU
    for cx in (-0.4, 0.4):
        c = cx + rng.uniform(-0.05, 0.05)
        lung = ((x - c) / 0.3) ** 2 + (y / 0.45) ** 2 + (z / 0.9) ** 2 < 1
        vol[lung] = 0.07
    vol += rng.normal(0, 0.01, shape).astype(np.float32)
    return np.clip(vol, 0, 1).astype(np.float16)


def make_cohort(cohort_dir: Path, n: int = 6, shape: tuple[int, int, int] = (96, 96, 64),
                n_val: int = 2, seed: int = 0) -> list[CohortRecord]:
    """Write ``n`` synthetic volumes and ``cohort.csv``; the last ``n_val`` are validation."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        pid = f"syn{i:03d}"
        save_npy_atomic(cohort_dir / "volumes" / f"{pid}.npy", synthetic_volume(shape, rng))
        records.append(CohortRecord(
            id=pid, split="val" if i >= n - n_val else "train", source=f"synthetic:{i}",
            modality="ct", shape=shape, spacing=(2.0, 2.0, 2.0), sha256=f"{seed:08d}{i:056d}",
            file=f"volumes/{pid}.npy"))
    write_cohort(cohort_dir, records)
    return records


def make_patterns(patterns_dir: Path, cohort_dir: Path, records: list[CohortRecord],
                  n_classes: int = 3, patch: tuple[int, int, int] = (32, 32, 16),
                  seed: int = 0) -> list[PatternRecord]:
    """Write a valid patterns folder: every patient is an instance of every class, at a random
    corner per class that fits every volume (plus classes.csv and discover.json)."""
    rng = np.random.default_rng(seed)
    lo = np.array([10, 10, 8])
    hi = np.min([r.shape for r in records], axis=0) - np.array(patch) - 10
    rows, classes = [], []
    for c in range(n_classes):
        corner = [int(rng.integers(a, b + 1)) for a, b in zip(lo, hi, strict=True)]
        for rank, r in enumerate(records):
            rows.append(PatternRecord(cls=c, split=r.split, patient_id=r.id, rank=rank,
                                      x=corner[0], y=corner[1], z=corner[2], size=patch))
        classes.append(ClassRecord(cls=c, patient_id=records[0].id, x=corner[0], y=corner[1],
                                   z=corner[2], air_score=0.0))
    write_patterns(patterns_dir, rows)
    write_classes(patterns_dir, classes)
    write_json(patterns_dir / DISCOVER_JSON, {
        "cohort": str(Path(cohort_dir).resolve()), "cohort_fingerprint":
        cohort_fingerprint(records), "n_classes": n_classes, "patch": list(patch)})
    return rows
