"""The real sample scans (pyradiomics 3.0.1 source archive, fetched through pip once and cached
in the default cache, so CI downloads it once), the MNI152 template, and the real-CT prepare.

These tests need the package registry the first time (as ``.ci/run`` has it); afterwards they
run from the cache.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from semantic_genesis.cli import main
from semantic_genesis.data.samples import (
    ARCHIVE_SHA256,
    SAMPLES,
    copy_samples,
    fetch_samples,
    mni152,
    sha256_file,
)
from semantic_genesis.io.manifests import read_cohort
from semantic_genesis.utils.errors import SemgenError


@pytest.fixture(scope="session")
def samples() -> dict[str, Path]:
    return fetch_samples()  # the default cache: fetched once per machine


def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point pip at an index that cannot answer and switch off every other source."""
    for key in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")


def test_every_file_is_cached_with_its_checksum(samples: dict[str, Path]) -> None:
    assert set(samples) == set(SAMPLES)
    for name, path in samples.items():
        assert sha256_file(path) == SAMPLES[name]
    notice = (next(iter(samples.values())).parent / "NOTICE.txt").read_text()
    assert "pyradiomics 3.0.1" in notice and ARCHIVE_SHA256 in notice
    assert "Redistribution and use in source and binary forms" in notice


def test_lung1_is_the_documented_chest_ct(samples: dict[str, Path]) -> None:
    image = sitk.ReadImage(str(samples["lung1_image"]))
    assert image.GetSize() == (512, 512, 48)
    np.testing.assert_allclose(image.GetSpacing(), (0.57, 0.57, 5.0), atol=0.01)
    values = sitk.GetArrayViewFromImage(image)
    assert values.min() <= -1000 and values.max() >= 1000  # HU
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(samples["lung1_label"])))
    assert np.count_nonzero(label) == 837
    brain = sitk.ReadImage(str(samples["brain1_image"]))
    assert brain.GetSize() == (256, 256, 25)


def test_a_rerun_downloads_nothing(
    samples: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _offline(monkeypatch)  # any download attempt would now fail
    assert fetch_samples() == samples


def test_offline_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _offline(monkeypatch)
    with pytest.raises(
        SemgenError,
        match="could not download pyradiomics 3.0.1 from the package registry: .*; are you offline",
    ):
        fetch_samples(tmp_path / "cache")
    assert not list(tmp_path.rglob("*.nrrd"))


def test_a_corrupted_cache_file_is_not_trusted(
    samples: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    copy_samples(cache)  # a private cache, filled from the shared one
    assert fetch_samples(cache)["brain2_label"] == cache / "brain2_label.nrrd"
    (cache / "brain2_label.nrrd").unlink()
    (cache / "brain2_label.nrrd").write_bytes(b"not nrrd")
    _offline(monkeypatch)  # so the attempt to fetch it again shows
    with pytest.raises(SemgenError, match="are you offline"):
        fetch_samples(cache)


def test_cli_copies_to_out(
    samples: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "samples"
    assert main(["samples", "--out", str(out)]) == 0
    listed = capsys.readouterr().out
    assert "lung1_image" in listed
    for name in SAMPLES:
        assert sha256_file(out / f"{name}.nrrd") == SAMPLES[name]
    assert "pyradiomics" in (out / "NOTICE.txt").read_text()


def test_mni152_template() -> None:
    pytest.importorskip("nilearn", reason="the optional 'brain' extra")
    paths = mni152()  # the default cache, like the samples: nilearn is imported once
    assert set(paths) == {"t1", "gm", "wm"}
    for path in paths.values():
        image = sitk.ReadImage(str(path))
        assert image.GetSize() == (197, 233, 189)
        np.testing.assert_allclose(image.GetSpacing(), (1.0, 1.0, 1.0))
        values = sitk.GetArrayViewFromImage(image)
        assert values.min() >= 0.0 and values.max() <= 1.0
    assert "McGill" in (paths["t1"].parent / "NOTICE.txt").read_text()


def test_real_ct_prepares_to_its_native_geometry(samples: dict[str, Path], tmp_path: Path) -> None:
    from semantic_genesis.prepare.cohort import PrepareConfig, prepare

    prepare([samples["lung1_image"]], tmp_path / "cohort", PrepareConfig())
    records = read_cohort(tmp_path / "cohort")
    assert len(records) == 1
    record = records[0]
    assert record.shape == (512, 512, 48)
    np.testing.assert_allclose(record.spacing, (0.57, 0.57, 5.0), atol=0.01)
    assert record.modality == "ct"
    volume = np.load(tmp_path / "cohort" / record.file, mmap_mode="r")
    assert volume.shape == (512, 512, 48) and volume.min() >= 0.0 and volume.max() <= 1.0


def test_out_holding_user_files_is_refused_before_any_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Copying into a folder of the user's files would replace a file named like a sample."""
    _offline(monkeypatch)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "lung1_image.nrrd").write_bytes(b"the user's own scan")
    assert main(["samples", "--out", str(out), "--cache", str(tmp_path / "cache")]) == 2
    assert "did not write" in capsys.readouterr().err
    assert (out / "lung1_image.nrrd").read_bytes() == b"the user's own scan"
    assert sorted(p.name for p in out.iterdir()) == ["lung1_image.nrrd"]
