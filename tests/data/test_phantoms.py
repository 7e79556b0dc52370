"""The phantom cohort: determinism, anatomy, nodule masks vs annotations, candidates, families,
NIfTI geometry, resuming, and the CLI. Small grids (96 x 96 x 64 at 3.6 x 3.6 x 4.6 mm cover the
same 350 x 350 x 300 mm field of view as the default) keep it fast."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from semantic_genesis.cli import main
from semantic_genesis.data.patient import make_patient
from semantic_genesis.data.phantoms import PhantomConfig, generate_phantoms
from semantic_genesis.io import read_volume
from semantic_genesis.io.manifests import read_csv
from semantic_genesis.utils.errors import SemgenError

SHAPE, SPACING = (96, 96, 64), (3.6, 3.6, 4.6)


def small(**kw) -> PhantomConfig:
    return PhantomConfig(**{"n": 4, "seed": 0, "shape": SHAPE, "spacing": SPACING, **kw})


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("phantoms")
    generate_phantoms(out, small())
    return out


def _array(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path))).transpose(2, 1, 0)


def test_layout_and_tables(cohort: Path) -> None:
    ids = [f"phantom-{i:04d}" for i in range(4)]
    for pid in ids:
        assert (cohort / "images" / f"{pid}.nii.gz").is_file()
        assert (cohort / "labels" / f"{pid}.nii.gz").is_file()
    patients = read_csv(cohort / "patients.csv", ["id", "lung_volume_ml", "n_nodules"])
    assert [p["id"] for p in patients] == ids
    assert all(1500 < float(p["lung_volume_ml"]) < 9000 for p in patients)
    meta = json.loads((cohort / "phantoms.json").read_text())
    assert meta["config"]["seed"] == 0 and meta["ids"] == ids and "run_info" in meta
    annotations = read_csv(
        cohort / "annotations.csv", ["seriesuid", "coordX", "coordY", "coordZ", "diameter_mm"]
    )
    assert len(annotations) == sum(int(p["n_nodules"]) for p in patients) >= 4
    assert all(3.0 <= float(a["diameter_mm"]) <= 30.0 for a in annotations)


def test_deterministic_per_seed_and_independent_of_n_and_workers(
    cohort: Path, tmp_path: Path
) -> None:
    generate_phantoms(tmp_path, small(n=2, workers=2))
    for pid in ("phantom-0000", "phantom-0001"):
        for folder in ("images", "labels"):
            np.testing.assert_array_equal(
                _array(tmp_path / folder / f"{pid}.nii.gz"),
                _array(cohort / folder / f"{pid}.nii.gz"),
            )
    rows = read_csv(tmp_path / "candidates.csv", ["seriesuid"])
    same = [
        r
        for r in read_csv(cohort / "candidates.csv", ["seriesuid"])
        if r["seriesuid"] in {"phantom-0000", "phantom-0001"}
    ]
    assert rows == same
    other = make_patient(0, 1, SHAPE, SPACING)
    assert not np.array_equal(other.image, _array(cohort / "images" / "phantom-0000.nii.gz"))


def test_intensities_where_they_belong() -> None:
    p = make_patient(0, 0, SHAPE, SPACING)
    hu = p.image.astype(np.float64)
    corners = np.concatenate([hu[:6, :6].ravel(), hu[-6:, -6:].ravel()])
    assert abs(corners.mean() + 1000) < 15  # air outside the body
    # lung parenchyma with its vessels: about -850 HU, denser (up to about -700) in small
    # lungs with a dense vessel tree (this patient: an obese chest, vessels 9 % of the lung)
    assert -900 < hu[p.lung].mean() < -720
    assert np.median(hu[p.lung]) < -820  # most of the lung is parenchyma
    assert p.lung.sum() * np.prod(SPACING) / 1000 == pytest.approx(p.lung_volume_ml)
    body = hu[SHAPE[0] // 2, :, SHAPE[2] // 2]  # a line from front to back through the spine
    assert body.max() > 300  # bone (vertebra)
    assert np.percentile(hu, 99.5) > 200 and hu.min() >= -1024 and hu.max() <= 3071
    soft = hu[(hu > -150) & (hu < 150)]
    assert soft.size > 0.15 * hu.size  # a body of soft tissue around the lungs
    assert p.image.dtype == np.int16 and p.label.dtype == np.uint8


def test_nodule_masks_match_annotations(cohort: Path) -> None:
    rows = read_csv(cohort / "nodules.csv", ["seriesuid", "diameter_mm", "mask_voxels"])
    big = 0
    for row in rows:
        label_path = cohort / "labels" / f"{row['seriesuid']}.nii.gz"
        image = sitk.ReadImage(str(label_path))
        world = (float(row["coordX"]), float(row["coordY"]), float(row["coordZ"]))
        index = image.TransformPhysicalPointToIndex(world)
        assert image[index] == 1, row
        volume = read_volume(label_path)  # the package's reader and Volume geometry agree
        voxel = tuple(np.rint(volume.world_to_voxel(np.array(world))[0]).astype(int))
        assert voxel == tuple(index) and volume.array[voxel] == 1
        diameter = float(row["diameter_mm"])
        if diameter >= 3 * max(SPACING):  # big enough for its voxel count to measure it
            big += 1
            measured = (6 * int(row["mask_voxels"]) * np.prod(SPACING) / np.pi) ** (1 / 3)
            assert measured == pytest.approx(diameter, rel=0.25), row
    # the 4 small patients may hold only small nodules (log-uniform 3-30 mm): add big ones
    p = make_patient(1, 0, SHAPE, SPACING, nodules=(3, 3), nodule_diameter_mm=(14.0, 30.0))
    for nod, voxels in zip(p.nodules, p.mask_voxels, strict=True):
        big += 1
        measured = (6 * voxels * np.prod(SPACING) / np.pi) ** (1 / 3)
        assert measured == pytest.approx(nod.diameter, rel=0.25), nod
    assert big >= 3
    kinds = {r["kind"] for r in rows}
    assert kinds <= {"solid", "part-solid", "ground-glass", "calcified"} and "solid" in kinds


def test_part_solid_nodule_has_ground_glass_rim() -> None:
    p = make_patient(
        0,
        0,
        (160, 160, 100),
        (2.2, 2.2, 3.0),
        nodules=(3, 3),
        nodule_diameter_mm=(20.0, 30.0),
        part_solid_fraction=1.0,
    )
    nod = next(n for n in p.nodules if n.kind == "part-solid")
    centre = np.rint((np.asarray(nod.centre) - p.origin) / p.spacing[0:3]).astype(int)
    core = p.image[tuple(centre)]
    offset = np.array([0.8 * nod.diameter / 2 / p.spacing[0], 0, 0]).round().astype(int)
    rim = [p.image[tuple(centre + s * offset)] for s in (-1, 1)]
    assert core > -200 and all(-800 < r < -300 for r in rim)


def test_candidates_have_both_classes(cohort: Path) -> None:
    rows = read_csv(
        cohort / "candidates.csv", ["seriesuid", "coordX", "coordY", "coordZ", "class", "kind"]
    )
    annotations = read_csv(cohort / "annotations.csv", ["seriesuid"])
    positives = [r for r in rows if r["class"] == "1"]
    negatives = [r for r in rows if r["class"] == "0"]
    assert len(positives) == len(annotations)
    assert len(negatives) == 4 * 20
    assert {r["kind"] for r in negatives} == {
        "vessel", "vessel-crossing", "vessel-end-on", "lung", "tissue", "consolidation",
        "pleural", "fissure",
    }
    images: dict[str, sitk.Image] = {}
    bright = 0
    for r in rows:
        pid = r["seriesuid"]
        if pid not in images:
            images[pid] = sitk.ReadImage(str(cohort / "images" / f"{pid}.nii.gz"))
            arrays = {pid: sitk.GetArrayFromImage(images[pid]).transpose(2, 1, 0)}
        world = (float(r["coordX"]), float(r["coordY"]), float(r["coordZ"]))
        index = images[pid].TransformPhysicalPointToIndex(world)
        assert all(0 <= i < n for i, n in zip(index, SHAPE, strict=True))
        if r["kind"].startswith("vessel"):
            box = tuple(slice(max(i - 1, 0), i + 2) for i in index)
            bright += arrays[pid][box].max() > -400  # a branch point sits on a vessel
    n_vessel = sum(r["kind"].startswith("vessel") for r in rows)
    assert bright >= 0.7 * n_vessel


def test_families_are_closer_within_than_across() -> None:
    images = [
        make_patient(i, 3, SHAPE, SPACING, families=2).image.astype(np.float32) for i in range(4)
    ]  # families: {0, 2} and {1, 3}

    def mse(a: int, b: int) -> float:
        return float(np.mean((images[a] - images[b]) ** 2))

    within = max(mse(0, 2), mse(1, 3))
    across = min(mse(0, 1), mse(0, 3), mse(2, 1), mse(2, 3))
    assert within < 0.5 * across


def test_nifti_geometry_reads_back(cohort: Path) -> None:
    for row in read_csv(cohort / "patients.csv", ["id", "origin_x", "spacing_x"]):
        for folder, pixel in (("images", sitk.sitkInt16), ("labels", sitk.sitkUInt8)):
            image = sitk.ReadImage(str(cohort / folder / f"{row['id']}.nii.gz"))
            assert image.GetSize() == SHAPE and image.GetPixelID() == pixel
            np.testing.assert_allclose(image.GetSpacing(), SPACING, rtol=1e-5)
            origin = [float(row[f"origin_{a}"]) for a in "xyz"]
            np.testing.assert_allclose(image.GetOrigin(), origin, atol=1e-3)
            np.testing.assert_allclose(image.GetDirection(), np.eye(3).ravel(), atol=1e-6)


def test_rerun_resumes_and_a_new_config_regenerates(tmp_path: Path) -> None:
    config = small(n=2)
    generate_phantoms(tmp_path, config)
    first = tmp_path / "images" / "phantom-0000.nii.gz"
    second = tmp_path / "images" / "phantom-0001.nii.gz"
    stamp = first.stat().st_mtime_ns
    reference = _array(second)
    second.unlink()  # as if the run had been killed before this patient finished
    generate_phantoms(tmp_path, config)
    assert first.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(_array(second), reference)
    generate_phantoms(tmp_path, small(n=2, seed=5))  # other patients, with other ids
    assert not first.exists()  # the seed-0 patients were this tool's: replaced
    assert json.loads((tmp_path / "phantoms.json").read_text())["config"]["seed"] == 5
    (tmp_path / "images" / ".tmp-phantom-5-0000.nii.gz.x.nii.gz").write_bytes(b"half")
    generate_phantoms(tmp_path, small(n=1, seed=5))  # a smaller cohort: the rest goes
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["phantom-5-0000.nii.gz"]
    assert [r["id"] for r in read_csv(tmp_path / "patients.csv", ["id"])] == ["phantom-5-0000"]


def test_cohorts_of_different_seeds_never_share_a_patient_id() -> None:
    """The leakage check compares case ids: a target drawn with another seed than the
    pre-training cohort must not share them (method.md §1.1)."""
    from semantic_genesis.data.patient import patient_id

    ids = {seed: {patient_id(i, seed) for i in range(50)} for seed in (0, 3, 100, 200)}
    assert patient_id(7) == "phantom-0007" and patient_id(7, 200) == "phantom-200-0007"
    for a in ids:
        for b in ids:
            assert a == b or not ids[a] & ids[b]


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    code = main(
        [
            "phantoms",
            "--out",
            str(out),
            "--n",
            "1",
            "--seed",
            "2",
            "--shape",
            "48",
            "48",
            "32",
            "--spacing",
            "7.2",
            "7.2",
            "9.2",
            "--workers",
            "1",
        ]
    )
    assert code == 0
    assert "1 phantom patients" in capsys.readouterr().out
    assert _array(out / "images" / "phantom-2-0000.nii.gz").shape == (48, 48, 32)
    assert main(["phantoms", "--out", str(out), "--n", "0"]) == 2
    assert "n = 0: must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--workers", "0", "workers = 0: must be at least 1"),
    ("--negatives", "-5", "negatives = -5: must be at least 0"),
    ("--seed", "-1", "seed = -1: must be at least 0"),
])
def test_nonsense_options_are_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str
) -> None:
    out = tmp_path / "o"
    assert main(["phantoms", "--out", str(out), "--n", "1", flag, value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists()


def test_a_folder_of_user_files_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mine"
    (out / "images").mkdir(parents=True)
    (out / "images" / "phantom-0007.nii.gz").write_bytes(b"the user's scan")
    args = ["phantoms", "--out", str(out), "--n", "1", "--shape", "32", "32", "24",
            "--spacing", "10", "10", "12", "--workers", "1"]
    assert main(args) == 2
    assert "did not write" in capsys.readouterr().err
    assert (out / "images" / "phantom-0007.nii.gz").read_bytes() == b"the user's scan"
    assert sorted(p.name for p in out.rglob("*")) == ["images", "phantom-0007.nii.gz"]


def test_bad_config_is_one_clear_error() -> None:
    with pytest.raises(SemgenError, match="spacing"):
        PhantomConfig(spacing=(1.0, 0.0, 1.0)).validate()
    with pytest.raises(SemgenError, match="shape = .*at least 16"):
        PhantomConfig(shape=(8, 8, 8))
    with pytest.raises(SemgenError, match="too small"):  # the default shape of a coarse grid
        PhantomConfig(spacing=(20.0, 20.0, 20.0))


@pytest.mark.slow
def test_default_geometry_holds_reference_cubes(tmp_path: Path) -> None:
    """At the default 1.5 x 1.5 x 2 mm grid the reference's 64 x 64 x 32 cube passes its air
    test (method.md §2.4: <= 15 % tissue, look-ahead of 3 slices) inside the lungs, and the
    volume has at least 96 slices."""
    p = make_patient(0, 0, PhantomConfig().grid_shape(), PhantomConfig().spacing)
    assert p.image.shape[2] >= 96
    v = (np.clip(p.image.astype(np.float32), -1000, 1000) + 1000) / 2000
    tissue = v >= 0.425
    score = tissue[:, :, :-1] + 0.5 * (~tissue[:, :, :-1] & tissue[:, :, 1:])
    c = np.pad(score.cumsum(0).cumsum(1).cumsum(2), ((1, 0), (1, 0), (1, 0)))
    x, y, z = 64, 64, 32
    total = (
        c[x:, y:, z:]
        - c[:-x, y:, z:]
        - c[x:, :-y, z:]
        - c[x:, y:, :-z]
        + c[:-x, :-y, z:]
        + c[:-x, y:, :-z]
        + c[x:, :-y, :-z]
        - c[:-x, :-y, :-z]
    )
    passes = total <= 0.15 * x * y * z
    n = passes.shape
    centre_in_lung = p.lung[x // 2 : x // 2 + n[0], y // 2 : y // 2 + n[1], z // 2 : z // 2 + n[2]]
    assert np.count_nonzero(passes & centre_in_lung) > 100
