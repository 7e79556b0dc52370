"""PatternDataset: crops, multi-resolution ranges, determinism, workers, RAM."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from semantic_genesis.io.manifests import PatternRecord, read_cohort, read_patterns, write_patterns
from semantic_genesis.pretrain.dataset import PatternDataset
from semantic_genesis.transforms import build_preset
from semantic_genesis.utils.errors import SemgenError
from tests.helpers import make_patterns

PATCH = (32, 32, 16)


def test_items_and_manifest(synthetic_patterns, synthetic_cohort):
    train = PatternDataset(synthetic_patterns, "train")
    val = PatternDataset(synthetic_patterns, "val")
    assert train.n_classes == 3 and train.patch == PATCH
    assert len(train) == 3 * 4 * 3  # classes x train patients x resolutions
    assert len(val) == 3 * 2  # validation: base crop only
    cube, label = train[0]
    assert cube.shape == (1, *PATCH) and cube.dtype == torch.float32
    assert isinstance(label, int) and 0 <= label < 3
    assert float(cube.min()) >= 0.0 and float(cube.max()) <= 1.0
    # the base crop is exactly the volume's voxels
    row = read_patterns(synthetic_patterns)[0]
    vol = np.load(synthetic_cohort / "volumes" / f"{row.patient_id}.npy")
    expect = vol[row.x : row.x + 32, row.y : row.y + 32, row.z : row.z + 16].astype(np.float32)
    assert np.array_equal(train[0][0][0].numpy(), expect)
    assert list(train.classes[:6]) == [0, 0, 0, 0, 0, 0]
    single = PatternDataset(synthetic_patterns, "train", multires=False)
    assert len(single) == 12 and single.crop(1).resolution == 0


def test_multires_crops_in_range(synthetic_patterns):
    ds = PatternDataset(synthetic_patterns, "train", seed=1)
    sides, jitters = [], []
    for epoch in range(8):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            c = ds.crop(i)
            row = read_row(ds, i)
            if c.resolution == 0:
                assert c.corner == row[0] and c.size == PATCH
                continue
            assert c.size[0] == c.size[1] and c.size[2] == 16  # depth fixed
            assert c.corner[2] == row[0][2]
            sides.append(c.size[0])
            if not c.shifted:
                jitters += [c.corner[0] - row[0][0], c.corner[1] - row[0][1]]
            assert ds[i][0].shape == (1, *PATCH)
    # [50, 79] and [-10, 9] at a 64-voxel patch, scaled by 32 / 64
    assert min(sides) >= 25 and max(sides) <= 40 and len(set(sides)) > 8
    assert min(jitters) >= -5 and max(jitters) <= 5 and len(set(jitters)) > 6


def read_row(ds: PatternDataset, index: int):
    r = index // 3
    return tuple(int(v) for v in ds._corner[r]), tuple(int(v) for v in ds._size[r])


def test_crops_near_the_border_are_shifted_inside(tmp_path, synthetic_cohort):
    records = read_cohort(synthetic_cohort)
    make_patterns(tmp_path, synthetic_cohort, records, n_classes=1)
    rows = [
        PatternRecord(
            cls=0, split=r.split, patient_id=r.id, rank=k, x=0, y=96 - 32, z=0, size=PATCH
        )
        for k, r in enumerate(records)
    ]
    write_patterns(tmp_path, rows)
    ds = PatternDataset(tmp_path, "train", seed=0)
    crops = [ds.crop(i) for i in range(len(ds))]
    assert any(c.shifted for c in crops)
    for c in crops:
        assert min(c.corner) >= 0
        assert all(a + s <= 96 for a, s in zip(c.corner[:2], c.size[:2], strict=True))
    assert all(ds[i][0].shape == (1, *PATCH) for i in range(len(ds)))


def test_determinism_across_workers_and_epochs(synthetic_patterns):
    ds = PatternDataset(synthetic_patterns, "train", seed=3)

    def run(workers: int) -> list[torch.Tensor]:
        loader = DataLoader(ds, batch_size=5, num_workers=workers)
        return [b[0] for b in loader]

    ds.set_epoch(2)
    single, multi = run(0), run(2)
    assert all(torch.equal(a, b) for a, b in zip(single, multi, strict=True))
    ds.set_epoch(3)
    other = run(2)
    assert not all(torch.equal(a, b) for a, b in zip(single, other, strict=True))
    # persistent workers see set_epoch too (the epoch lives in shared memory)
    loader = DataLoader(ds, batch_size=36, num_workers=1, persistent_workers=True)
    ds.set_epoch(2)
    first = next(iter(loader))[0]
    ds.set_epoch(3)
    second = next(iter(loader))[0]
    assert torch.equal(first, torch.cat(single)) and torch.equal(second, torch.cat(other))


def test_distributed_sampler_and_transform(synthetic_patterns):
    ds = PatternDataset(synthetic_patterns, "train", transform=build_preset("sg"))
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=0)
        seen += list(sampler)
    assert sorted(seen) == list(range(len(ds)))
    perturbed, target, label = ds[4]
    assert perturbed.shape == target.shape == (1, *PATCH)
    assert isinstance(label, int)
    again = ds[4]
    assert torch.equal(perturbed, again[0])  # per-item randomness from (seed, epoch, index)


def test_bad_manifests(tmp_path, synthetic_cohort):
    records = read_cohort(synthetic_cohort)
    make_patterns(tmp_path, synthetic_cohort, records, n_classes=1)
    good = read_patterns(tmp_path)
    outside = [
        PatternRecord(
            cls=0, split="train", patient_id=records[0].id, rank=0, x=80, y=0, z=0, size=PATCH
        )
    ]
    write_patterns(tmp_path, outside)
    with pytest.raises(SemgenError, match="leave their volume"):
        PatternDataset(tmp_path)
    unknown = [
        PatternRecord(cls=0, split="train", patient_id="nobody", rank=0, x=0, y=0, z=0, size=PATCH)
    ]
    write_patterns(tmp_path, unknown)
    with pytest.raises(SemgenError, match="not in the cohort"):
        PatternDataset(tmp_path)
    write_patterns(tmp_path, good)
    info = json.loads((tmp_path / "discover.json").read_text())
    info["cohort_fingerprint"] = "0" * 16
    (tmp_path / "discover.json").write_text(json.dumps(info))
    with pytest.raises(SemgenError, match="fingerprint"):
        PatternDataset(tmp_path)
    with pytest.raises(SemgenError):
        PatternDataset(tmp_path / "missing")


RSS_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    import torch
    from torch.utils.data import DataLoader
    from semantic_genesis.pretrain.dataset import PatternDataset
    torch.set_num_threads(1)
    ds = PatternDataset(sys.argv[1], "train", seed=0)
    loader = DataLoader(ds, batch_size=64, num_workers=1,
                        sampler=range(0, len(ds), 30))
    n = sum(len(batch[1]) for batch in loader)
    del loader
    child_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"items": n, "len": len(ds), "nbytes": ds.nbytes,
                      "worker_peak_rss_mib": child_kib / 1024}))
""")


def test_worker_memory_stays_flat_over_10000_patterns(tmp_path, synthetic_cohort):
    records = read_cohort(synthetic_cohort)
    make_patterns(tmp_path, synthetic_cohort, records, n_classes=2500)  # 15,000 rows
    rows = read_patterns(tmp_path)
    n_train = sum(r.split == "train" for r in rows)
    assert n_train == 10_000
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        timeout=300,
        env={"PYTHONPATH": str(root / "src"), "SEMGEN_QUIET": "1", "PATH": "/usr/bin:/bin"},
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["len"] == 30_000 and report["items"] == len(range(0, 30_000, 30))
    assert report["nbytes"] <= 40 * 10_000  # compact arrays, no per-row objects or cubes
    assert 0 < report["worker_peak_rss_mib"] < 1024


def test_depth_preserving_resize_equals_trilinear() -> None:
    import torch
    import torch.nn.functional as F

    from semantic_genesis.pretrain.dataset import _resize

    cube = torch.rand(1, 57, 71, 16)
    fast = _resize(cube, (32, 32, 16))
    ref = F.interpolate(cube[None], size=(32, 32, 16), mode="trilinear", align_corners=False)[0]
    assert fast.shape == (1, 32, 32, 16)
    torch.testing.assert_close(fast, ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        (lambda v: v.astype(np.float32) * 2000 - 1000, r"in \[0, 1\].*min -1000"),  # raw HU
        (lambda v: np.where(v > 0.5, np.nan, v).astype(np.float16), "min nan"),
        (lambda v: np.where(v > 0.5, np.inf, v).astype(np.float32), "max inf"),
        (lambda v: v.astype(np.float64), "dtype float64, not float16/float32"),
        (lambda v: (v * 1000).astype(np.int16), "int16"),
        (lambda v: v[:, :, :-2], "shape"),
    ],
)
def test_a_volume_breaking_the_cohort_contract_is_named(
    replace, message: str, tmp_path: Path, synthetic_cohort
) -> None:
    """A volume replaced after discover (same cohort.csv, so the fingerprint still matches)."""
    import shutil

    cohort = shutil.copytree(synthetic_cohort, tmp_path / "cohort")
    records = read_cohort(cohort)
    make_patterns(tmp_path / "patterns", cohort, records)
    target = cohort / records[0].file
    np.save(target, replace(np.load(target)))
    ds = PatternDataset(tmp_path / "patterns", "train", multires=False)
    index = next(i for i in range(len(ds)) if ds.crop(i).patient_id == records[0].id)
    with pytest.raises(SemgenError, match=message) as err:
        ds[index]
    assert str(target) in str(err.value)
    other = next(i for i in range(len(ds)) if ds.crop(i).patient_id != records[0].id)
    assert ds[other][0].shape == (1, *PATCH)  # the other volumes still pass


def test_each_volume_is_checked_once_per_process(synthetic_patterns, monkeypatch) -> None:
    import semantic_genesis.pretrain.dataset as datasets

    calls = []
    real = datasets.check_volume
    monkeypatch.setattr(datasets, "check_volume", lambda *a: calls.append(a[1]) or real(*a))
    ds = PatternDataset(synthetic_patterns, "train", max_open=1)  # every item reopens a map
    for i in range(len(ds)):
        ds[i]
    assert len(calls) == len(set(calls)) == 4  # the 4 training volumes, once each
