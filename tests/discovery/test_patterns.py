"""Pattern rows: a crop must fit each neighbour's own volume (skip or clamp, recorded)."""

from __future__ import annotations

from semantic_genesis.discovery.patterns import DiscoveredClass, instances, save_montage
from semantic_genesis.io.manifests import CohortRecord


def _rec(pid, shape, split="train"):
    return CohortRecord(id=pid, split=split, source="", modality="ct", shape=shape,
                        spacing=(1, 1, 1), sha256="", file=f"volumes/{pid}.npy")


RECORDS = {r.id: r for r in [_rec("ref", (96, 96, 64)), _rec("big", (100, 100, 70)),
                             _rec("short", (96, 96, 40)), _rec("tiny", (15, 30, 20)),
                             _rec("v", (96, 96, 64), "val")]}
CLS = DiscoveredClass(cls=0, unit=0, patient_id="ref", corner=(40, 40, 30), score=0.1,
                      train=("ref", "big", "short", "tiny"), val=("v",))


def test_skip_leaves_rank_gaps_and_reports() -> None:
    rows, skipped, clamped = instances([CLS], RECORDS, (20, 20, 16), "skip")
    assert [(r.split, r.rank, r.patient_id) for r in rows] == [
        ("train", 0, "ref"), ("train", 1, "big"), ("val", 0, "v")]
    assert {(s["rank"], s["patient_id"]) for s in skipped} == {(2, "short"), (3, "tiny")}
    assert clamped == [] and all((r.x, r.y, r.z) == (40, 40, 30) for r in rows)


def test_clamp_moves_crops_inside_when_the_volume_can_hold_one() -> None:
    rows, skipped, clamped = instances([CLS], RECORDS, (20, 20, 16), "clamp")
    short = next(r for r in rows if r.patient_id == "short")
    assert (short.x, short.y, short.z) == (40, 40, 24) and short.rank == 2
    assert [c["patient_id"] for c in clamped] == ["short"] and clamped[0]["moved_to"][2] == 24
    assert [s["patient_id"] for s in skipped] == ["tiny"]  # smaller than the patch itself


def test_no_montage_without_classes(tmp_path) -> None:
    assert save_montage(tmp_path / "p.png", tmp_path, RECORDS, []) is None
    assert not (tmp_path / "p.png").exists()
