"""Volumes of different shapes and anatomy (issue 14: two chest CTs, a head CT and a head atlas
gave 1 of 3 classes without saying why, and a montage that cut its own title off)."""

from __future__ import annotations

from pathlib import Path

import pytest

from semantic_genesis.cli import main
from semantic_genesis.discovery.patterns import DiscoveredClass, instances, montage_figure
from semantic_genesis.io.manifests import read_cohort, read_discover_info, read_patterns
from tests.discovery.conftest import write_cohort_of, write_features

MIXED = [("chest-a", "chest", (96, 96, 48), "train", "ct"),
         ("chest-b", "chest", (80, 72, 40), "train", "ct"),
         ("head-ct", "head", (64, 64, 48), "train", "ct"),
         ("atlas", "head", (40, 48, 32), "val", "ct")]


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    write_cohort_of(tmp_path / "cohort", MIXED)
    return tmp_path / "cohort"


def test_fewer_classes_than_asked_say_why(mixed, tmp_path, capsys) -> None:
    """Three training patients, three classes asked: the head has no air to pass the air test
    (the reference's lung test), and some neighbours are too small for the class's corner;
    both are counted, printed and recorded."""
    feats = write_features(tmp_path / "f.npz", {p[0]: [i, 0] for i, p in enumerate(MIXED)})
    out = tmp_path / "p"
    assert main(["discover", str(mixed), "--out", str(out), "--classes", "3", "--patch", "16",
                 "16", "8", "--features", str(feats), "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "found 2 of 3 classes: 1 x no corner passed the air test" in err
    assert "chest CT" in err  # what the air test wants
    info = read_discover_info(out)
    assert info["n_classes"] == 2 and info["n_classes_requested"] == 3
    assert info["fewer_classes"]["reasons"] == {"no corner passed the air test in 200 trials": 1}
    assert [s["patient_id"] for s in info["skipped_references"]] == ["head-ct"]
    assert {r.cls for r in read_patterns(out)} == {0, 1}


def _classes(records, n: int) -> list[DiscoveredClass]:
    ids = tuple(r.id for r in records if r.split == "train")
    return [DiscoveredClass(cls=c, unit=c, patient_id=ids[0], corner=(4 + 2 * c, 4, 4),
                            score=0.0, train=ids, val=()) for c in range(n)]


@pytest.mark.parametrize(("n_classes", "n_train"), [(1, 1), (1, 2), (3, 6)])
def test_the_montage_title_is_never_cut_off(tmp_path, n_classes, n_train) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    cohort = tmp_path / "cohort"
    write_cohort_of(cohort, [(f"c{i}", "chest", (64, 64, 32), "train", "ct")
                             for i in range(n_train)])
    records = {r.id: r for r in read_cohort(cohort)}
    rows, _, _ = instances(_classes(records.values(), n_classes), records, (16, 16, 8))
    fig = montage_figure(cohort, records, rows, n_neighbours=5)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    title = fig._suptitle.get_window_extent(canvas.get_renderer())
    box = fig.bbox
    assert box.x0 <= title.x0 and title.x1 <= box.x1 and box.y0 <= title.y0
    assert title.y1 <= box.y1
    axes = fig.axes[0].get_window_extent(canvas.get_renderer())
    assert title.y0 >= axes.y1 - 1  # the title does not cover the tiles either
