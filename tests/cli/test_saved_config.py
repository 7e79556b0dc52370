"""Every output folder's saved config re-runs its stage: `semgen VERB ... --config A/<config>
--out B` gives what `--out A` gave (issue 15, "One configuration mechanism")."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import yaml

from semantic_genesis.cli import main
from semantic_genesis.io.manifests import read_cohort
from tests.discovery.conftest import CHESTS, write_cohort_of
from tests.helpers import make_cohort
from tests.io.scans import ct_volume, write_nifti_nib
from tests.pretrain.conftest import write_engine_patterns

#: metrics.csv columns that measure the machine, not the training
TIMING = ("seconds", "time", "throughput", "per_s", "/s", "wall", "elapsed")


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [{k: v for k, v in r.items() if not any(t in k for t in TIMING)} for r in rows]


def test_prepare_reruns_from_its_saved_config(tmp_path: Path) -> None:
    scans = tmp_path / "scans"
    for i in range(4):
        write_nifti_nib(scans / f"ct{i}.nii.gz", ct_volume(seed=i), (0.7, 0.8, 2.5))
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["prepare", str(scans), "--out", str(a), "--min-shape", "8", "8", "4",
                 "--seed", "7", "--val-fraction", "0.4", "--dtype", "float32", "--spacing",
                 "1", "1", "3", "--window", "-900", "900"]) == 0
    assert main(["prepare", str(scans), "--out", str(b), "--config",
                 str(a / "prepare-config.yaml")]) == 0
    saved = [yaml.safe_load((d / "prepare-config.yaml").read_text()) for d in (a, b)]
    assert saved[0] == saved[1] and saved[0]["seed"] == 7 and saved[0]["dtype"] == "float32"
    ra, rb = read_cohort(a), read_cohort(b)
    assert [(r.id, r.split, r.shape) for r in ra] == [(r.id, r.split, r.shape) for r in rb]
    for r in ra:
        va, vb = np.load(a / r.file), np.load(b / r.file)
        assert va.dtype == np.float32 and np.array_equal(va, vb)
    c = tmp_path / "c"  # the file, then an option, then --set: the later wins
    assert main(["prepare", str(scans), "--out", str(c), "--config", str(a / "prepare-config.yaml"),
                 "--seed", "8", "--set", "dtype=float16", "--set", "seed=9"]) == 0
    got = yaml.safe_load((c / "prepare-config.yaml").read_text())
    assert got == {**saved[0], "seed": 9, "dtype": "float16"}


def test_discover_reruns_from_its_saved_config(tmp_path: Path) -> None:
    cohort = tmp_path / "cohort"
    write_cohort_of(cohort, CHESTS)
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["discover", str(cohort), "--out", str(a), "--classes", "2", "--instances", "3",
                 "--val-instances", "1", "--patch", "16", "16", "8", "--min-distance", "4",
                 "--seed", "3", "--ae-epochs", "1", "--ae-width", "2", "--ae-shape", "16", "16",
                 "8", "--device", "cpu", "--montage-classes", "2"]) == 0
    assert main(["discover", str(cohort), "--out", str(b), "--config",
                 str(a / "discover-config.yaml")]) == 0
    for name in ("patterns.csv", "classes.csv", "discover-config.yaml"):
        assert (a / name).read_text() == (b / name).read_text(), name
    assert yaml.safe_load((b / "discover-config.yaml").read_text())["seed"] == 3


def test_pretrain_reruns_from_its_saved_config(tmp_path: Path) -> None:
    """Also when the saved config says it was resumed: resume/overwrite describe how a run was
    started, so a --config file never passes them on."""
    cohort_dir = tmp_path / "cohort"
    records = make_cohort(cohort_dir, n=6, shape=(64, 64, 40), n_val=2, seed=1)
    patterns = write_engine_patterns(tmp_path / "patterns", cohort_dir, records)
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert main(["pretrain", str(patterns), "--out", str(a), "--width", "4", "--epochs", "2",
                 "--batch-size", "6", "--no-figures", "--no-multires", "--seed", "5",
                 "--lr", "0.01", "--device", "cpu"]) == 0
    assert main(["pretrain", str(patterns), "--config", str(a / "pretrain-config.yaml"),
                 "--out", str(b)]) == 0
    first, again = _rows(a / "metrics.csv"), _rows(b / "metrics.csv")
    assert len(first) == 2 and first == again
    saved = yaml.safe_load((a / "pretrain-config.yaml").read_text())
    assert saved == yaml.safe_load((b / "pretrain-config.yaml").read_text())
    resumed = tmp_path / "resumed.yaml"
    resumed.write_text(yaml.safe_dump({**saved, "resume": True, "epochs": 1}))
    assert main(["pretrain", str(patterns), "--config", str(resumed), "--out", str(c)]) == 0
    assert _rows(c / "metrics.csv") == first[:1]


def test_finetune_reruns_from_its_saved_config(tiny_data: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["finetune", "--task", "classify", "--data", str(tiny_data), "--out", str(a),
                 "--width", "4", "--epochs", "2", "--patch", "16", "16", "16", "--batch-size",
                 "4", "--steps-per-epoch", "2", "--patience", "5", "--seed", "2", "--device",
                 "cpu", "--no-augment"]) == 0
    assert main(["finetune", "--data", str(tiny_data), "--out", str(b), "--config",
                 str(a / "config.yaml")]) == 0
    first, again = _rows(a / "metrics.csv"), _rows(b / "metrics.csv")
    assert len(first) == 2 and first == again
    saved = yaml.safe_load((a / "config.yaml").read_text())
    assert saved == yaml.safe_load((b / "config.yaml").read_text()) and saved["augment"] is False


def test_phantoms_rerun_from_their_saved_config(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["phantoms", "--out", str(a), "--n", "2", "--seed", "4", "--shape", "32", "32",
                 "24", "--nodules", "1", "1", "--negatives", "2", "--workers", "1"]) == 0
    assert main(["phantoms", "--out", str(b), "--config", str(a / "phantoms-config.yaml")]) == 0
    for name in ("candidates.csv", "annotations.csv", "patients.csv", "phantoms-config.yaml"):
        assert (a / name).read_text() == (b / name).read_text(), name
    assert yaml.safe_load((b / "phantoms-config.yaml").read_text())["seed"] == 4
