"""Session fixtures: a small phantom cohort with families, and one tiny auto-encoder run on it.

The cohort is 9 chest phantoms of 96 x 96 x 64 voxels (3.6 x 3.6 x 4.6 mm) in 3 families of
near-identical anatomy (patient ``i`` is in family ``i % 3``), prepared by ``semgen prepare``'s
library call. Tests cut 20 x 20 x 10 cubes, the reference 64 x 64 x 32 at about 1 mm scaled to
this grid, which the phantoms' lungs can hold.
"""

from __future__ import annotations

from pathlib import Path

import pytest

PATCH = (20, 20, 10)
FAMILIES = 3


def family(patient_id: str) -> int:
    """The phantom family of ``phantom-0007`` etc."""
    return int(patient_id.rsplit("-", 1)[1]) % FAMILIES


@pytest.fixture(scope="session")
def phantom_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from semantic_genesis.cohort import PrepareConfig, prepare
    from semantic_genesis.data.phantoms import PhantomConfig, generate_phantoms

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
