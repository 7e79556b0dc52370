"""The probe protocol (method.md §7.3): splits, probes on known features, the grid end to end."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from semantic_genesis.benchmark import load_benchmark_config, run_benchmark
from semantic_genesis.benchmark.features import Features, build_encoder, pooled_features
from semantic_genesis.benchmark.probe import (
    ProbeSettings,
    best_threshold,
    classify_probe,
    dice,
    patient_split,
    reduce_labels,
    segment_probe,
)
from semantic_genesis.models import ModelCard, create_model
from semantic_genesis.models.checkpoint import save_checkpoint
from semantic_genesis.utils.errors import SemgenError


def _features(separation: float, n_patients: int = 10, per: int = 8, seed: int = 0) -> Features:
    """Cubes of ``n_patients`` patients, half positive; positives shifted by ``separation``
    along the first of 6 deepest-level dimensions (plus 4 shallow ones of noise)."""
    rng = np.random.default_rng(seed)
    labels = np.tile(np.r_[np.ones(per // 2), np.zeros(per - per // 2)], n_patients).astype(int)
    x = rng.normal(size=(len(labels), 10))
    x[:, 4] += separation * labels
    groups = np.repeat([f"p{i}" for i in range(n_patients)], per)
    return Features(x.astype(np.float32), (4, 6), labels, groups)


def test_patient_split_keeps_patients_whole_and_both_classes_on_both_sides() -> None:
    f = _features(1.0)
    train, test = patient_split(f.groups, f.labels, seed=3, test_fraction=0.3)
    assert not (train & test).any() and (train | test).all()
    assert not set(f.groups[train]) & set(f.groups[test])
    assert len(set(f.groups[test])) == 3
    assert set(f.labels[train]) == set(f.labels[test]) == {0, 1}
    again = patient_split(f.groups, f.labels, seed=3, test_fraction=0.3)
    assert (again[0] == train).all()  # seeded: the same split for every initialisation
    other = patient_split(f.groups, f.labels, seed=4, test_fraction=0.3)
    assert not (other[0] == train).all()
    with pytest.raises(SemgenError, match="both classes"):  # one class only: no split
        patient_split(f.groups, np.zeros_like(f.labels), 0)
    keep = reduce_labels(train, f.labels, 0.5, seed=0)
    assert keep.sum() == train.sum() // 2 and not (keep & ~train).any()
    assert set(f.labels[keep]) == {0, 1}


def test_probes_separate_separable_features_and_not_noise() -> None:
    good = [classify_probe(_features(6.0), s, 1.0) for s in range(3)]
    assert all(r["logreg"] > 0.97 and r["knn"] > 0.9 for r in good)
    noise = np.mean([classify_probe(_features(0.0, seed=s), s, 1.0)["logreg"]
                     for s in range(6)])
    assert 0.3 < noise < 0.7
    # the signal sits in the deepest level: a probe of every level (the default) finds it, and
    # so does one of the deepest level alone
    f = _features(6.0)
    assert f.select("deepest").shape[1] == 6 and f.select("all").shape[1] == 10
    assert classify_probe(f, 0, 1.0, ProbeSettings(levels="deepest"))["logreg"] > 0.97
    # a signal in a shallow level only: the deepest-level probe cannot see it
    f.features[:, 4] -= 6.0 * f.labels
    f.features[:, 0] += 6.0 * f.labels
    assert classify_probe(f, 0, 1.0)["logreg"] > 0.97
    assert classify_probe(f, 0, 1.0, ProbeSettings(levels="deepest"))["logreg"] < 0.8


def test_dice_and_the_voxel_probe() -> None:
    t = np.array([1, 1, 0, 0], bool)
    assert dice(np.array([1, 0, 1, 0], bool), t) == pytest.approx(0.5)
    assert math.isnan(dice(np.zeros(4, bool), np.zeros(4, bool)))
    # a cut chosen on training scores: the best Dice of the cuts tried
    score = np.r_[np.linspace(0, 1, 90), np.linspace(2, 3, 10)]
    truth = np.r_[np.zeros(90, bool), np.ones(10, bool)]
    assert dice(score >= best_threshold(score, truth), truth) == 1.0
    rng = np.random.default_rng(0)
    n = 2000
    labels = (rng.random(n) < 0.1).astype(int)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    x[:, -1] += 4 * labels
    feats = Features(x, (4, 4), labels, np.repeat([f"c{i}" for i in range(10)], n // 10),
                     rng.random(n) < 0.5)
    assert segment_probe(feats, 0, 1.0)["voxel"] > 0.8


def test_eval_mode_features_do_not_depend_on_the_batch() -> None:
    model = build_encoder("scratch", (16, 16, 16), width=4, seed=1)
    cubes = np.random.default_rng(0).random((5, 16, 16, 16)).astype(np.float16)
    together, levels = pooled_features(model, cubes, batch_size=5)
    alone, _ = pooled_features(model, cubes[:1], batch_size=1)
    assert levels == (8, 16, 32, 64) and together.shape == (5, sum(levels))
    np.testing.assert_allclose(alone[0], together[0], rtol=1e-4, atol=1e-5)
    other = build_encoder("scratch", (16, 16, 16), width=4, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 other.state_dict().values(), strict=True))


def _grid(tmp_path: Path, data: Path) -> Path:
    torch.manual_seed(0)
    model = create_model("ynet3d", width=4, n_classes=3)
    save_checkpoint({"state_dict": model.state_dict(),
                     "model_card": ModelCard(architecture="ynet3d", width=4,
                                             n_classes=3).to_dict()}, tmp_path / "mg.pt")
    cfg = {"inits": {"scratch": "scratch", "mg": "mg.pt"}, "protocols": ["probe"],
           "probe_seeds": [0, 1, 2], "label_fractions": [0.5, 1.0],
           "settings": {"patch": [16, 16, 16], "batch_size": 4},
           "tasks": [{"name": "ncc", "data": str(data), "task": "classify"},
                     {"name": "ncs", "data": str(data), "task": "segment"}]}
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path / "b.yaml"


def test_probe_grid_rows_table_and_cached_features(tiny_data: Path, tmp_path: Path) -> None:
    config = load_benchmark_config(_grid(tmp_path, tiny_data))
    out = tmp_path / "out"
    first = run_benchmark(config, out)
    assert first.ran == 0 and not (out / "runs").exists()  # no fine-tuning cell
    with open(out / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    protocols = {r["protocol"] for r in rows}
    assert protocols == {"probe-logreg", "probe-knn", "probe-voxel"}
    # 2 inits x (3 seeds at 50 % + the seeds with a split of their own at 100 %) per probe
    for p in protocols:
        mine = [r for r in rows if r["protocol"] == p]
        at_all = {r["seed"] for r in mine if float(r["label_fraction"]) == 1.0}
        assert len(mine) == 2 * (3 + len(at_all)) and 1 <= len(at_all) <= 3
    for r in rows:
        assert 0.0 <= float(r["score"]) <= 1.0
        assert r["metric"] == ("dice" if r["protocol"] == "probe-voxel" else "auc")
    md = (out / "results.md").read_text()
    assert "## ncc (test AUC, probe-logreg)" in md and "## ncs (test Dice, probe-voxel)" in md
    assert "Paired over shared seeds" in md and "| mg | scratch | 50 % | 3 |" in md
    files = sorted((out / "features").glob("*.npz"))
    assert [f.name for f in files] == ["ncc__mg.npz", "ncc__scratch.npz", "ncs__mg.npz",
                                       "ncs__scratch.npz"]
    stamps = [f.stat().st_mtime_ns for f in files]
    again = run_benchmark(config, out)  # features read back, not extracted again
    assert [f.stat().st_mtime_ns for f in files] == stamps
    assert [r["score"] for r in again.rows] == [r["score"] for r in first.rows]


def test_a_checkpoint_pretrained_on_a_probed_case_is_refused(tiny_data: Path,
                                                             tmp_path: Path) -> None:
    from semantic_genesis.benchmark.probe_run import ProbeTask, check_probe_leakage
    from semantic_genesis.finetune.config import FinetuneConfig
    from semantic_genesis.prepare.groups import case_hash

    model = create_model("unet3d", width=4)
    card = ModelCard(architecture="unet3d", width=4, seen_cases=[case_hash("case03")])
    save_checkpoint({"state_dict": model.state_dict(), "model_card": card.to_dict()},
                    tmp_path / "seen.pt")
    task = ProbeTask("ncc", str(tiny_data), FinetuneConfig(task="classify"))
    with pytest.raises(SemgenError, match="1 of its 6 case"):
        check_probe_leakage(task, str(tmp_path / "seen.pt"))
    allowed = ProbeTask("ncc", str(tiny_data),
                        FinetuneConfig(task="classify", allow_seen_test_cases=True))
    check_probe_leakage(allowed, str(tmp_path / "seen.pt"))  # the override: runs, warned
    check_probe_leakage(task, "scratch")


def test_experiment_online_probe_reads_the_target_phantoms(monkeypatch, tmp_path: Path) -> None:
    import semantic_genesis.pretrain as pretrain_module
    from semantic_genesis.benchmark.experiment import (
        TARGET_PROBE,
        ExperimentConfig,
        _pretrain_stages,
    )

    seen = {}
    monkeypatch.setattr(pretrain_module, "pretrain",
                        lambda patterns, run, cfg: seen.setdefault(run.name, cfg))
    config = ExperimentConfig(pretrain={"width": 4, "probe": TARGET_PROBE},
                              methods={"sg": {}, "other": {"probe": str(tmp_path)}})
    _pretrain_stages(config, tmp_path, {}, tmp_path / "phantoms-target")
    assert seen["sg"].probe == str((tmp_path / "phantoms-target").resolve())
    assert seen["other"].probe == str(tmp_path)


def test_a_failing_probe_task_is_listed_not_fatal(tmp_path: Path) -> None:
    from semantic_genesis.benchmark.config import BenchmarkConfig, TaskSpec
    from semantic_genesis.benchmark.probe_run import run_probes

    config = BenchmarkConfig(protocols=["probe"], probe_seeds=[0])
    resolved = [(TaskSpec(name="bad", data="x", task="classify"), str(tmp_path / "missing"),
                 {"task": "classify"})]
    failed: dict[str, str] = {}
    assert run_probes(config, tmp_path, resolved, None, failed) == []
    assert "data folder not found" in failed["bad__probe"]
    with pytest.raises(SemgenError, match="data folder not found"):
        run_probes(config, tmp_path, resolved, None)


def test_seeds_that_repeat_a_split_are_scored_once() -> None:
    """Two patients give two per-patient splits whatever the number of seeds: the paired
    statistics must rest on two pairs, not ten."""
    from semantic_genesis.benchmark.probe import distinct_seeds, patient_split

    groups = np.repeat(np.array(["a", "b"]), 20)
    labels = np.tile(np.array([0, 1]), 20)
    kept = distinct_seeds(groups, labels, list(range(10)))
    tested = {tuple(np.unique(groups[patient_split(groups, labels, s)[1]])) for s in kept}
    assert len(kept) == 2 and tested == {("a",), ("b",)}
    many = np.repeat(np.arange(12).astype(str), 4)
    assert len(distinct_seeds(many, np.tile([0, 1], 24), list(range(10)))) == 10
