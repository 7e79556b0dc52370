"""The file contracts round-trip and give clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from semantic_genesis.io.manifests import (
    ClassRecord,
    CohortRecord,
    PatternRecord,
    cohort_fingerprint,
    open_volume,
    read_classes,
    read_cohort,
    read_discover_info,
    read_patterns,
    write_classes,
    write_cohort,
    write_patterns,
)
from semantic_genesis.utils import SemgenError


def _rec(i: int) -> CohortRecord:
    return CohortRecord(id=f"p{i}", split="train", source=f"/in/p{i}.nii.gz", modality="ct",
                        shape=(64, 64, 40), spacing=(0.7, 0.7, 2.5), sha256="ab" * 32,
                        file=f"volumes/p{i}.npy")


def test_cohort_round_trip(tmp_path: Path) -> None:
    recs = [_rec(2), _rec(1)]
    write_cohort(tmp_path, recs)
    back = read_cohort(tmp_path)
    assert [r.id for r in back] == ["p1", "p2"]
    assert back[0] == _rec(1)
    assert cohort_fingerprint(back) == cohort_fingerprint(recs)
    assert cohort_fingerprint(back[:1]) != cohort_fingerprint(back)


def test_missing_cohort_is_clear(tmp_path: Path) -> None:
    with pytest.raises(SemgenError, match="semgen prepare"):
        read_cohort(tmp_path)


def test_patterns_round_trip(tmp_path: Path) -> None:
    recs = [PatternRecord(cls=1, split="val", patient_id="p3", rank=0, x=1, y=2, z=3,
                          size=(64, 64, 32)),
            PatternRecord(cls=0, split="train", patient_id="p1", rank=1, x=4, y=5, z=6,
                          size=(64, 64, 32))]
    write_patterns(tmp_path, recs)
    assert read_patterns(tmp_path) == sorted(recs, key=lambda r: r.cls)


def _corrupt(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(("old", "new", "message"), [
    (",64,64,40,", ",64,sixty,40,", "line 2, field 'shape_y': 'sixty' is not a whole number"),
    (",64,64,40,", ",64,0,40,", "line 2, field 'shape_y': 0 must be at least 1"),
    (",0.7,0.7,2.5,", ",nan,0.7,2.5,", "line 2, field 'spacing_x': 'nan' is not a finite"),
    (",0.7,0.7,2.5,", ",0.7,-1,2.5,", "line 2, field 'spacing_y': -1 must be greater than 0"),
    ("p2,train,", "p2,test,", "line 3, field 'split': 'test' is not one of train, val"),
    ("volumes/p2.npy", "../../etc/p2.npy", "line 3, field 'file'.*inside the cohort folder"),
    ("p2,train,", "p1,train,", "line 3, field 'id': 'p1' appears twice"),
])
def test_a_malformed_cohort_value_names_file_line_and_field(tmp_path, old, new, message) -> None:
    write_cohort(tmp_path, [_rec(1), _rec(2)])
    _corrupt(tmp_path / "cohort.csv", old, new)
    with pytest.raises(SemgenError, match=message) as caught:
        read_cohort(tmp_path)
    assert str(tmp_path / "cohort.csv") in str(caught.value)


def test_a_missing_column_and_non_utf8_bytes_are_one_error(tmp_path) -> None:
    write_cohort(tmp_path, [_rec(1)])
    path = tmp_path / "cohort.csv"
    _corrupt(path, "spacing_z,", "")
    with pytest.raises(SemgenError, match="missing column\\(s\\) spacing_z"):
        read_cohort(tmp_path)
    write_cohort(tmp_path, [_rec(1), _rec(2)])
    path.write_bytes(path.read_bytes().replace(b"/in/p2", b"/in/p\xff\xfe2"))
    with pytest.raises(SemgenError, match="line 3: not UTF-8"):
        read_cohort(tmp_path)
    path.write_bytes(path.read_bytes().replace(b"/in/p\xff\xfe2", b"/in/p2,extra"))
    with pytest.raises(SemgenError, match="line 3: more values than columns"):
        read_cohort(tmp_path)


@pytest.mark.parametrize(("old", "new", "message"), [
    ("\n0,train,p1,1,", "\n0,train,p1,one,", "line 2, field 'rank': 'one'"),
    (",4,5,6,", ",-4,5,6,", "line 2, field 'x': -4 must be at least 0"),
    (",64,64,32", ",64,0,32", "field 'size_y': 0 must be at least 1"),
    ("\n1,val,", "\n1,holdout,", "line 3, field 'split'"),
])
def test_a_malformed_patterns_value_names_file_line_and_field(tmp_path, old, new,
                                                              message) -> None:
    write_patterns(tmp_path, [
        PatternRecord(cls=1, split="val", patient_id="p3", rank=0, x=1, y=2, z=3,
                      size=(64, 64, 32)),
        PatternRecord(cls=0, split="train", patient_id="p1", rank=1, x=4, y=5, z=6,
                      size=(64, 64, 32))])
    _corrupt(tmp_path / "patterns.csv", old, new)
    with pytest.raises(SemgenError, match=message) as caught:
        read_patterns(tmp_path)
    assert str(tmp_path / "patterns.csv") in str(caught.value)


def test_a_malformed_classes_value_is_one_error(tmp_path) -> None:
    write_classes(tmp_path, [ClassRecord(cls=0, patient_id="p1", x=1, y=2, z=3, air_score=0.1)])
    _corrupt(tmp_path / "classes.csv", ",0.1", ",inf")
    with pytest.raises(SemgenError, match="field 'air_score': 'inf' is not a finite"):
        read_classes(tmp_path)


@pytest.mark.parametrize(("text", "message"), [
    (b'{"cohort": "/c", "cohort_fingerprint": "ab", "n_classes": "3", "patch": [8, 8, 8]}',
     "key 'n_classes'"),
    (b'{"cohort": "/c", "cohort_fingerprint": "ab", "n_classes": 3, "patch": [8, 0, 8]}',
     "key 'patch'"),
    (b'{"cohort": 5, "cohort_fingerprint": "ab", "n_classes": 3, "patch": [8, 8, 8]}',
     "key 'cohort'"),
    (b'[1, 2]', "expected a JSON object"),
    (b'{"cohort": "/c\xff"}', "not UTF-8"),
    (b'{"cohort": ', "corrupt JSON"),
])
def test_a_malformed_discover_json_is_one_error(tmp_path, text, message) -> None:
    (tmp_path / "discover.json").write_bytes(text)
    with pytest.raises(SemgenError, match=message) as caught:
        read_discover_info(tmp_path)
    assert "discover.json" in str(caught.value)


def test_a_replaced_volume_is_refused_with_both_shapes(tmp_path) -> None:
    import numpy as np

    rec = _rec(1)
    (tmp_path / "volumes").mkdir()
    np.save(tmp_path / rec.file, np.zeros((32, 32, 20), np.float16))
    with pytest.raises(SemgenError, match="shape \\(32, 32, 20\\).*\\(64, 64, 40\\)"):
        open_volume(tmp_path, rec)
    np.save(tmp_path / rec.file, np.zeros((64, 64, 40), np.int16))  # raw HU, not prepared
    with pytest.raises(SemgenError, match="int16"):
        open_volume(tmp_path, rec)
    (tmp_path / rec.file).write_bytes(b"not a volume")
    with pytest.raises(SemgenError, match="not a readable .npy"):
        open_volume(tmp_path, rec)
