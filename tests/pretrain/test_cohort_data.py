"""Cohort data and the real Models Genesis: random air-test cubes cut straight from the cohort
(ModelsGenesis ``infinite_generator_3D.py``), MG's optimiser recipe, source groups."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from semantic_genesis.discovery.coordinates import CoordinateRules, corner_bounds, cube_scores
from semantic_genesis.io.manifests import open_volume, read_cohort, write_cohort
from semantic_genesis.models import ModelCard
from semantic_genesis.prepare.groups import cohort_case_hashes
from semantic_genesis.pretrain import PretrainConfig, pretrain
from semantic_genesis.pretrain.cohort_data import (
    CUBE_COLUMNS,
    TRY_CHUNK,
    cube_split,
    draw_cubes,
    is_luna,
    scan_cubes,
)
from semantic_genesis.pretrain.data import check_source
from semantic_genesis.utils import SemgenError
from tests.helpers import make_cohort

CUBE = (16, 16, 16)  # a patch that fits the 64 x 64 x 40 test volumes inside their borders


@pytest.fixture(scope="module")
def two_scans(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """One training and one validation scan (32 cubes each: a 1-epoch run stays cheap)."""
    path = tmp_path_factory.mktemp("two_scans")
    return path, make_cohort(path, n=2, shape=(64, 64, 40), n_val=1, seed=5)


def test_models_genesis_trains_one_epoch_with_its_own_recipe(two_scans, tmp_path: Path):
    """The run folder of models-genesis shows MG's numbers: SGD lr 1 momentum 0.9, batch 6,
    StepLR 40 x 0.5, patience 50, 32 air-test cubes per scan from the cohort; the checkpoint is
    a plain UNet3D without classes that records the scans it saw."""
    cohort_dir, records = two_scans
    out = tmp_path / "mg"
    config = PretrainConfig(method="models-genesis", width=8, epochs=1, patch=CUBE,
                            figures=False)
    result = pretrain(cohort_dir, out, config)
    saved = yaml.safe_load((out / "pretrain-config.yaml").read_text())
    print({k: saved[k] for k in ("optimizer", "lr", "momentum", "batch_size", "lr_step",
                                 "lr_gamma", "patience", "cubes_per_scan", "cube_tries")})
    assert (saved["optimizer"], saved["lr"], saved["momentum"]) == ("sgd", 1.0, 0.9)
    assert (saved["batch_size"], saved["lr_step"], saved["lr_gamma"], saved["patience"]) == (
        6, 40, 0.5, 50)
    assert (saved["cubes_per_scan"], saved["cube_tries"], saved["method"]) == (
        32, 50, "models-genesis")
    run = json.loads((out / "run.json").read_text())
    assert run["data"]["data"] == "cohort" and run["data"]["n_classes"] == 0
    assert run["config"]["optimizer"] == "sgd" and result.epochs_run == 1
    with open(out / "cubes.csv", newline="") as fh:
        cubes = list(csv.DictReader(fh))
    assert list(cubes[0]) == CUBE_COLUMNS
    per_scan = {r.id: sum(c["patient_id"] == r.id for c in cubes) for r in records}
    assert 0 < max(per_scan.values()) <= 32
    assert {c["split"] for c in cubes} == {"train", "val"}
    split = {r.id: r.split for r in records}
    assert all(c["split"] == split[c["patient_id"]] for c in cubes)
    assert all(float(c["score"]) <= 0.15 and c["class"] == "0" for c in cubes)
    ckpt = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert all("momentum_buffer" in s for s in ckpt["optimizer"]["state"].values())
    card = ModelCard.from_dict(ckpt["model_card"])
    assert (card.architecture, card.n_classes, card.method) == ("unet3d", 0, "models-genesis")
    seen = [r for r in records if per_scan[r.id]]
    assert card.seen_cases == cohort_case_hashes(seen)


def test_scan_cubes_follows_the_reference_generator() -> None:
    """Up to ``wanted`` corners inside the (scaled) borders, each passing the air test, in the
    order drawn, after at most ``tries`` draws; a solid-tissue scan gives none."""
    rules = CoordinateRules(patch=CUBE)
    air = np.zeros((64, 64, 40), np.float32)
    corners, scores = scan_cubes(air, np.random.default_rng(0), rules, wanted=32, tries=1600)
    assert len(corners) == 32 and np.all(scores == 0)
    lo, hi = corner_bounds(air.shape, rules)
    assert np.all(corners >= lo) and np.all(corners <= hi)
    again, _ = scan_cubes(air, np.random.default_rng(0), rules, wanted=32, tries=1600)
    assert np.array_equal(corners, again)  # one seed, one set of cubes
    tissue = np.ones_like(air)
    none, _ = scan_cubes(tissue, np.random.default_rng(0), rules, wanted=32, tries=1600)
    assert len(none) == 0
    half = air.copy()
    half[:32] = 1.0  # half the scan is tissue: only corners in the air half pass
    got, got_scores = scan_cubes(half, np.random.default_rng(1), rules, wanted=32,
                                 tries=TRY_CHUNK)
    assert 0 < len(got) < TRY_CHUNK and np.all(got_scores <= 0.15)
    assert np.allclose(cube_scores(half, got, rules), got_scores)


def test_luna_layout_splits_by_subset_and_keeps_7_to_9_out(tmp_path: Path) -> None:
    """Scans in subset0..9: 7-9 are excluded by default, 5-6 validate, the others train (MG's
    LUNA16 split); another cohort keeps cohort.csv's split."""
    records = make_cohort(tmp_path, n=10, shape=(64, 64, 40), n_val=0, seed=3)
    luna = [dataclasses.replace(r, group=f"subset{i}") for i, r in enumerate(records)]
    write_cohort(tmp_path, luna)
    luna = read_cohort(tmp_path)
    assert is_luna(luna) and not is_luna(records)
    info = check_source(tmp_path, "cohort", CUBE)
    assert sorted(r.group for r in info.records) == [f"subset{i}" for i in range(7)]
    assert [cube_split(r, True) for r in info.records] == ["train"] * 5 + ["val"] * 2
    assert cube_split(records[0], False) == records[0].split
    cubes = draw_cubes(tmp_path, info.records, CUBE, per_scan=2, tries_per_cube=50, seed=0)
    groups = {r.id: r.group for r in info.records}
    assert {groups[row.patient_id] for row, _ in cubes} <= {f"subset{i}" for i in range(7)}
    everything = check_source(tmp_path, "cohort", CUBE, exclude=())
    assert len(everything.records) == 10


def test_sources_a_method_cannot_use_are_refused(engine_cohort, engine_patterns,
                                                 tmp_path: Path) -> None:
    """A patterns method given a cohort folder, patterns of an excluded group, a cohort that is
    all excluded: one clear error each. A cohort method given patterns uses their cohort."""
    cohort_dir, records = engine_cohort
    with pytest.raises(SemgenError, match="trains on discovered patterns"):
        check_source(cohort_dir, "patterns", CUBE)
    via_patterns = check_source(engine_patterns, "cohort", CUBE)
    assert via_patterns.cohort_dir == cohort_dir.resolve() and via_patterns.n_classes == 0
    assert via_patterns.source == engine_patterns
    ok = check_source(engine_patterns, "patterns", CUBE)
    assert set(ok.seen) == {r.id for r in records}
    grouped = [dataclasses.replace(r, group="subset8") for r in records]
    copy = tmp_path / "cohort"
    for r in records:
        (copy / "volumes").mkdir(parents=True, exist_ok=True)
        (copy / r.file).write_bytes((cohort_dir / r.file).read_bytes())
    write_cohort(copy, grouped)
    with pytest.raises(SemgenError, match="excluded group"):
        check_source(copy, "cohort", CUBE)
    from tests.pretrain.conftest import write_engine_patterns

    patterns = write_engine_patterns(tmp_path / "patterns", copy, read_cohort(copy))
    with pytest.raises(SemgenError, match=r"excluded source group.*subset8"):
        check_source(patterns, "patterns", CUBE)
    assert check_source(patterns, "patterns", CUBE, exclude=("none",)) is not None


def test_cubes_are_cut_where_cubes_csv_says(engine_cohort, tmp_path: Path) -> None:
    """Each training item is exactly the listed window of its scan."""
    from semantic_genesis.pretrain.cohort_data import cohort_datasets, prepare_cubes

    cohort_dir, _ = engine_cohort
    info = check_source(cohort_dir, "cohort", CUBE)
    config = PretrainConfig(cubes_per_scan=3, patch=CUBE)
    info = prepare_cubes(info, tmp_path, config, main=True)
    train, val = cohort_datasets(info, seed=0)
    assert len(train) == info.train_counts[0] and len(val) == info.val_counts[0]
    with open(tmp_path / "cubes.csv", newline="") as fh:
        first = next(r for r in csv.DictReader(fh) if r["split"] == "train")
    record = next(r for r in info.records if r.id == first["patient_id"])
    x, y, z = (int(first[k]) for k in "xyz")
    volume = open_volume(cohort_dir, record)
    cube, label = train[0]
    assert label == 0 and tuple(cube.shape) == (1, *CUBE)
    expect = torch.from_numpy(np.asarray(volume[x:x + 16, y:y + 16, z:z + 16], np.float32))
    assert torch.equal(cube[0], expect)


def test_a_cohort_run_resumes_and_refuses_other_cubes_or_settings(two_scans, tmp_path: Path):
    """Resume redraws the cubes and compares them with cubes.csv; the decided settings (the
    recipe's lr 1) are compared as stored."""
    cohort_dir, _ = two_scans
    quick = {"method": "models-genesis", "width": 4, "patch": CUBE, "figures": False,
             "cubes_per_scan": 8}
    run = tmp_path / "run"
    pretrain(cohort_dir, run, PretrainConfig(epochs=1, **quick))
    assert pretrain(cohort_dir, run, PretrainConfig(epochs=2, resume=True, **quick)
                    ).epochs_run == 2
    with pytest.raises(SemgenError, match=r"lr: 1.0 -> 0.5"):
        pretrain(cohort_dir, run, PretrainConfig(epochs=3, resume=True, lr=0.5, **quick))
    path = run / "cubes.csv"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace("syn", "other", 1)  # a cube from another scan
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SemgenError, match="cubes differ"):
        pretrain(cohort_dir, run, PretrainConfig(epochs=3, resume=True, **quick))
