"""A tiny LUNA16-layout phantom cohort (``subset0..9/<id>.mhd``) for the leakage tests.

Ten 96 x 96 x 64 phantoms (3.6 x 3.6 x 4.6 mm), one per subset (patient ``i`` in
``subset{i}``), each with one nodule and two false-positive candidates, so the same folder is
a pre-training input (``semgen prepare`` records the subsets as groups) and a classification
target (``semgen finetune`` splits it by the Models Genesis folds: 0-4 train, 5-6 val, 7-9
test).
"""

from __future__ import annotations

from pathlib import Path

#: the phantom ids by subset: phantom-000i is in subset i
IDS = [f"phantom-{i:04d}" for i in range(10)]
#: the cases pre-training may see by default (subsets 0-6) and the NCC test cases (7-9)
ALLOWED, HELD_OUT = IDS[:7], IDS[7:]


def write_luna(root: Path) -> Path:
    """The LUNA16-layout folder ``root`` (phantoms generated in ``root/.phantoms``)."""
    from semantic_genesis.data.luna_layout import write_luna_phantoms
    from semantic_genesis.data.phantoms import PhantomConfig

    write_luna_phantoms(root, PhantomConfig(n=10, seed=0, shape=(96, 96, 64),
                                            spacing=(3.6, 3.6, 4.6), nodules=(1, 1),
                                            negatives=2))
    return root


def prepare_luna(luna: Path, cohort: Path) -> Path:
    """``semgen prepare``'s library call on the whole LUNA16 folder."""
    from semantic_genesis.prepare import PrepareConfig, prepare

    prepare([luna], cohort, PrepareConfig(modality="ct", val_fraction=0.3, seed=0))
    return cohort
