"""Source groups and case hashes (prepare.groups, method.md §1.1): cohort.csv's group column,
``semgen prepare`` on a LUNA16-layout folder, and the ids a target shares with a cohort."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semantic_genesis.cli import main
from semantic_genesis.io.manifests import COHORT_CSV, CohortRecord, read_cohort, write_cohort
from semantic_genesis.prepare.groups import (
    case_hash,
    cohort_case_hashes,
    group_counts,
    normalise_groups,
    pretraining_records,
    record_group,
    source_group,
)
from tests.luna import ALLOWED, HELD_OUT, IDS, prepare_luna, write_luna


def _record(pid: str, group: str = "", source: str = "") -> CohortRecord:
    return CohortRecord(id=pid, split="train", source=source, modality="ct", shape=(8, 8, 8),
                        spacing=(1.0, 1.0, 1.0), sha256="x", file=f"volumes/{pid}.npy",
                        group=group)


@pytest.fixture(scope="module")
def luna(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_luna(tmp_path_factory.mktemp("luna"))


def test_source_group_is_the_nearest_subset_folder() -> None:
    assert source_group("/d/LUNA16/subset7/1.2.3.mhd") == "subset7"
    assert source_group("/d/Subset2/x/subset5/a.nii.gz") == "subset5"
    assert source_group("/d/subset3") == "subset3"  # a DICOM folder named like a subset
    assert source_group("/d/images/ct.nii.gz") == "" and source_group("subsets/x.mhd") == ""


def test_group_names_have_one_spelling() -> None:
    assert normalise_groups(None) == normalise_groups("") == normalise_groups([""]) == ()
    assert normalise_groups("none") == ()
    assert normalise_groups("Subset7, subset8 subset7") == ("subset7", "subset8")
    assert normalise_groups(["subset9,SUBSET8"]) == ("subset9", "subset8")


def test_pretraining_records_leave_out_the_excluded_groups() -> None:
    records = [_record(f"p{i}", f"subset{i}") for i in range(10)] + [_record("q")]
    kept = [r.id for r in pretraining_records(records)]
    assert kept == [f"p{i}" for i in range(7)] + ["q"]  # default: subsets 7-9 out
    assert len(pretraining_records(records, "")) == 11
    assert [r.id for r in pretraining_records(records, ["subset0"])][0] == "p1"
    assert group_counts(records)[""] == 1 and group_counts(records)["subset9"] == 1


def test_a_case_hashes_alike_in_a_cohort_and_a_target() -> None:
    assert case_hash("1.2.3") == case_hash("1.2.3") != case_hash("1.2.4")
    assert len(case_hash("x")) == 16 and "x" not in case_hash("x")
    assert case_hash("scan 1") == case_hash("scan_1")  # prepare sanitises ids so
    clashed = _record("subset1_ct", "subset1", "/d/subset1/ct.nii.gz")  # prepare renamed it
    assert set(cohort_case_hashes([clashed])) == {case_hash("ct"), case_hash("subset1_ct")}


def test_the_group_column_is_optional(tmp_path: Path) -> None:
    write_cohort(tmp_path, [_record("a", "subset4"), _record("b")])
    header = (tmp_path / COHORT_CSV).read_text().splitlines()[0].split(",")
    assert "group" in header
    assert {r.id: r.group for r in read_cohort(tmp_path)} == {"a": "subset4", "b": ""}
    old = [",".join(c for c in line.split(",")[:header.index("group")])
           for line in (tmp_path / COHORT_CSV).read_text().splitlines()]  # an older cohort.csv
    (tmp_path / COHORT_CSV).write_text("\n".join(old) + "\n")
    assert [record_group(r) for r in read_cohort(tmp_path)] == ["", ""]


def test_prepare_records_the_luna16_subsets(luna: Path, tmp_path: Path, capsys) -> None:
    assert sorted(p.parent.name for p in luna.glob("subset*/*.mhd")) == [
        f"subset{i}" for i in range(10)]
    assert main(["prepare", str(luna), "--out", str(tmp_path / "cohort"), "--modality", "ct",
                 "--val-fraction", "0.3"]) == 0
    records = {r.id: r for r in read_cohort(tmp_path / "cohort")}
    assert sorted(records) == IDS  # each scan once: the hidden .phantoms folder is not read
    assert {pid: r.group for pid, r in records.items()} == {
        pid: f"subset{i}" for i, pid in enumerate(IDS)}
    report = json.loads((tmp_path / "cohort" / "prepare-report.json").read_text())
    assert report["groups"] == {f"subset{i}": 1 for i in range(10)}
    assert "volumes per source group: subset0 1" in capsys.readouterr().err
    kept = {r.id for r in pretraining_records(records.values())}
    assert kept == set(ALLOWED) and not kept & set(HELD_OUT)


def test_the_library_call_gives_the_same_groups(luna: Path, tmp_path: Path) -> None:
    report = prepare_luna(luna, tmp_path / "cohort")
    assert [record_group(r) for r in read_cohort(report)] == [f"subset{i}" for i in range(10)]
