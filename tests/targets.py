"""Tiny target-task data in the layouts ``semgen finetune`` reads, written with the io writers.

Each "patient" is a small CT-like volume (HU): soft tissue around an air-filled lung, with two
spherical "nodules" (+60 HU) inside the lung; the label map marks the nodules. The LUNA16-style
``candidates.csv`` lists the nodule centres (class 1) and lung points without a nodule (class 0)
in world millimetres; the geometry has a non-identity direction and origin, so a wrong
world-to-voxel conversion would cut the cubes in the wrong place.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHAPE = (40, 40, 24)
SPACING = (1.5, 1.25, 2.0)
# a rotation about z by 90 degrees plus a flip of z: non-identity, still orthonormal
DIRECTION = (0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -1.0)


def make_patient(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list, list]:
    """HU volume, nodule mask, nodule centres and negative points (voxel indices)."""
    x, y, z = np.meshgrid(*(np.arange(s) for s in SHAPE), indexing="ij")
    vol = np.full(SHAPE, 40.0, np.float32)
    vol[4:-4, 4:-4, 2:-2] = -850.0
    mask = np.zeros(SHAPE, np.uint8)
    centres = []
    for _ in range(2):
        c = np.array([rng.integers(10, 30), rng.integers(10, 30), rng.integers(7, 17)])
        r = rng.uniform(2.5, 4.0)
        ball = ((x - c[0]) ** 2 + (y - c[1]) ** 2 + ((z - c[2]) * 1.6) ** 2) <= r * r
        vol[ball], mask[ball] = 60.0, 1
        centres.append(c)
    negatives = []
    while len(negatives) < 3:
        c = np.array([rng.integers(8, 32), rng.integers(8, 32), rng.integers(5, 19)])
        if all(np.linalg.norm(c - n) > 8 for n in centres):
            negatives.append(c)
    vol += rng.normal(0, 15, SHAPE).astype(np.float32)
    return vol.astype(np.int16), mask, centres, negatives


def write_tiny_data(root: Path, n: int = 6, seed: int = 0) -> Path:
    """images/, labels/, candidates.csv for ``n`` patients; returns ``root``."""
    from semantic_genesis.io import Volume, write_nifti

    rng = np.random.default_rng(seed)
    rows = ["seriesuid,coordX,coordY,coordZ,class"]
    for i in range(n):
        pid = f"case{i:02d}"
        vol, mask, centres, negatives = make_patient(rng)
        origin = tuple(float(v) for v in rng.uniform(-200, 200, 3))
        image = Volume(vol, SPACING, origin, DIRECTION)
        write_nifti(image, root / "images" / f"{pid}.nii.gz")
        write_nifti(Volume(mask, SPACING, origin, DIRECTION), root / "labels" / f"{pid}.nii.gz")
        for label, points in ((1, centres), (0, negatives)):
            for w in image.voxel_to_world(np.array(points, dtype=float)):
                rows.append(f"{pid},{w[0]:.4f},{w[1]:.4f},{w[2]:.4f},{label}")
    (root / "candidates.csv").write_text("\n".join(rows) + "\n")
    return root
