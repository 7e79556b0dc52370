"""Session fixtures: a small phantom cohort with families, and one tiny auto-encoder run on it.

The cohort is 9 chest phantoms of 96 x 96 x 64 voxels (3.6 x 3.6 x 4.6 mm) in 3 families of
near-identical anatomy (patient ``i`` is in family ``i % 3``), prepared by ``semgen prepare``'s
library call. Tests cut 16 x 16 x 8 cubes, the reference 64 x 64 x 32 at about 1 mm scaled to
this grid, which the phantoms' lungs can hold.

Tests that need no prepared phantoms write tiny cohorts straight to the contract
(:func:`write_cohort_of`: chest-like and head-like volumes of any shape) and bring features as a
file (:func:`fast_config`), so they run in a second.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

PATCH = (16, 16, 8)
FAMILIES = 3


def family(patient_id: str) -> int:
    """The phantom family of ``phantom-0007`` etc."""
    return int(patient_id.rsplit("-", 1)[1]) % FAMILIES


@pytest.fixture(scope="session")
def phantom_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from semantic_genesis.data.phantoms import PhantomConfig, generate_phantoms
    from semantic_genesis.prepare.cohort import PrepareConfig, prepare

    root = tmp_path_factory.mktemp("phantoms")
    generate_phantoms(root / "raw", PhantomConfig(
        n=9, seed=0, shape=(96, 96, 64), spacing=(3.6, 3.6, 4.6), families=FAMILIES,
        nodules=(0, 1), negatives=0))
    prepare([root / "raw" / "images"], root / "cohort",
            PrepareConfig(modality="ct", val_fraction=0.25, seed=0))
    return root / "cohort"


def small_config(**kw):
    """Discover settings for the test cohort: tiny auto-encoder, small cubes."""
    from semantic_genesis.discovery import DiscoverConfig

    base = dict(n_classes=5, instances=5, val_instances=2, patch=PATCH, ae_width=4,
                ae_shape=(32, 32, 16), ae_epochs=2, ae_patience=2, device="cpu",
                montage_classes=0, montage_neighbours=2)
    return DiscoverConfig(**{**base, **kw})


@pytest.fixture(scope="session")
def ae_run(phantom_cohort: Path, tmp_path_factory: pytest.TempPathFactory):
    """One full discover with the auto-encoder (features ``ae``); its features.npz then serves
    as a features FILE for the faster tests."""
    import warnings

    from semantic_genesis.discovery import discover

    out = tmp_path_factory.mktemp("ae_run")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = discover(phantom_cohort, out, small_config(montage_classes=3))
    return out, result


def head_volume(shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """A head-like float16 volume in [0, 1]: a skull shell around brain-like tissue, air only
    outside (no lungs), so no cube inside it passes the CT air test."""
    import numpy as np

    x, y, z = np.meshgrid(*(np.linspace(-1, 1, s) for s in shape), indexing="ij")
    r = (x / 0.85) ** 2 + (y / 0.95) ** 2 + (z / 0.95) ** 2
    vol = np.where(r < 1, 0.9, 0.0).astype(np.float32)
    vol[r < 0.8] = 0.53
    vol += rng.normal(0, 0.01, shape).astype(np.float32)
    return np.clip(vol, 0, 1).astype(np.float16)


def write_cohort_of(root: Path, specs, seed: int = 0) -> list:
    """A prepared cohort written straight to the contract: ``specs`` is a list of
    ``(id, kind, shape, split, modality)`` with kind ``chest`` (body and air-filled lungs,
    :func:`tests.helpers.synthetic_volume`) or ``head`` (:func:`head_volume`)."""
    from semantic_genesis.io.manifests import CohortRecord, write_cohort
    from semantic_genesis.utils.atomic import save_npy_atomic
    from tests.helpers import synthetic_volume

    rng = np.random.default_rng(seed)
    records = []
    for pid, kind, shape, split, modality in specs:
        vol = synthetic_volume(shape, rng) if kind == "chest" else head_volume(shape, rng)
        save_npy_atomic(root / "volumes" / f"{pid}.npy", vol)
        records.append(CohortRecord(id=pid, split=split, source=f"synthetic:{pid}",
                                    modality=modality, shape=shape, spacing=(1.0, 1.0, 1.0),
                                    sha256=f"{seed}-{pid}", file=f"volumes/{pid}.npy"))
    write_cohort(root, records)
    return records


def write_features(path: Path, features: dict) -> Path:
    """A features FILE (``.npz`` with ``ids`` and ``features``) for ``--features``."""
    ids = sorted(features)
    np.savez(path, ids=np.array(ids), features=np.array([features[i] for i in ids], np.float32))
    return path


#: four small chest volumes (three train, one val), patch 16 x 16 x 8 fits all
CHESTS = [(f"c{i}", "chest", (64, 64, 32), "val" if i == 3 else "train", "ct") for i in range(4)]


@pytest.fixture
def chests(tmp_path: Path) -> Path:
    """A tiny cohort of :data:`CHESTS` at ``tmp_path / "cohort"``."""
    write_cohort_of(tmp_path / "cohort", CHESTS)
    return tmp_path / "cohort"


def fast_config(cohort: Path, **kw):
    """Settings for the tiny cohorts: features from a file of random rows (no auto-encoder)."""
    from semantic_genesis.io.manifests import read_cohort

    ids = [r.id for r in read_cohort(cohort)]
    rng = np.random.default_rng(0)
    feats = write_features(cohort.parent / "feats.npz", {i: rng.normal(size=4) for i in ids})
    base = dict(features=str(feats), patch=(16, 16, 8), n_classes=2, instances=3,
                val_instances=1, device="cpu", montage_classes=2, min_distance=4)
    return small_config(**{**base, **kw})
