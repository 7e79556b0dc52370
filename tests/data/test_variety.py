"""The phantom cohort's variety: body-build families, diffuse patterns, nodule kinds and hard
negatives appear about as often as drawn, are recorded in the CSVs, have the HU they should,
and come back identical for a seed; the hard negatives pool to a nodule's mean HU."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest

from semantic_genesis.data.anatomy import HABITUS
from semantic_genesis.data.candidates import NEGATIVE_SHARES, quotas
from semantic_genesis.data.mimics import MIMIC_KINDS
from semantic_genesis.data.ncc_baseline import candidate_features, trivial_auc
from semantic_genesis.data.nodules import JUXTAPLEURAL_SHARE, NODULE_KINDS
from semantic_genesis.data.organs import lung_field_sd
from semantic_genesis.data.patient import make_patient
from semantic_genesis.data.patterns import PATTERN_RATES
from semantic_genesis.data.phantoms import PhantomConfig, generate_phantoms
from semantic_genesis.data.tubes import segment_sd
from semantic_genesis.io.manifests import read_csv
from semantic_genesis.utils.errors import SemgenError

N = 20
SHAPE, SPACING = (64, 64, 48), (5.4, 5.4, 6.2)  # the 350 x 350 x 300 mm field of view, coarse
MID_SHAPE, MID_SPACING = (128, 128, 96), (2.7, 2.7, 3.1)  # fine enough to see 5 mm structures


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("variety")
    generate_phantoms(out, PhantomConfig(n=N, seed=3, shape=SHAPE, spacing=SPACING))
    return out


def _within(count: int, rate: float, n: int = N) -> bool:
    """``count`` of ``n`` is a plausible binomial draw at ``rate`` (3 standard deviations),
    and the feature is there at all when it should be."""
    sd = np.sqrt(n * rate * (1 - rate))
    return max(1, n * rate - 3 * sd) <= count <= n * rate + 3 * sd


def test_diffuse_patterns_and_habitus_appear_as_drawn_and_are_recorded(cohort: Path) -> None:
    rows = read_csv(cohort / "patients.csv", ["id", "habitus", "emphysema", "emphysema_ml",
                                              "consolidation", "consolidation_ml", "effusion",
                                              "effusion_ml", "vessel_ml", "heart_volume_ml"])
    assert len(rows) == N
    for name, rate, has in (
        ("emphysema", PATTERN_RATES[0], lambda r: r["emphysema"] != ""),
        ("consolidation", PATTERN_RATES[1], lambda r: r["consolidation"] == "1"),
        ("effusion", PATTERN_RATES[2], lambda r: r["effusion"] != ""),
    ):
        present = [has(r) for r in rows]
        assert _within(sum(present), rate), (name, sum(present))
        volumes = [float(r[f"{name}_ml"]) for r in rows]
        assert all((v > 0) == p for v, p in zip(volumes, present, strict=True)), name
    habitus = collections.Counter(r["habitus"] for r in rows)
    assert set(habitus) <= set(HABITUS) and len(habitus) >= 3
    for name, count in habitus.items():
        assert _within(count, HABITUS[name][0]), (name, count)
    for column in ("vessel_ml", "heart_volume_ml"):  # they vary between patients
        values = np.array([float(r[column]) for r in rows])
        assert values.min() > 0 and values.max() > 1.4 * values.min(), column


def test_nodule_kinds_and_candidate_kinds_are_recorded(cohort: Path) -> None:
    nodules = read_csv(cohort / "nodules.csv", ["seriesuid", "kind", "diameter_mm"])
    kinds = collections.Counter(r["kind"] for r in nodules)
    assert set(kinds) == set(NODULE_KINDS), kinds
    assert kinds["solid"] == max(kinds.values())
    attached = sum(r["juxtapleural"] == "1" for r in nodules)
    assert _within(attached, JUXTAPLEURAL_SHARE, len(nodules)), attached
    candidates = read_csv(cohort / "candidates.csv", ["seriesuid", "class", "kind"])
    negatives = collections.Counter(r["kind"] for r in candidates if r["class"] == "0")
    assert sum(negatives.values()) == 20 * N
    hard = {"vessel", "vessel-crossing", "vessel-end-on", *MIMIC_KINDS}
    assert hard <= set(negatives)
    assert sum(negatives[k] for k in hard) >= 0.7 * sum(negatives.values())
    assert {r["kind"] for r in candidates if r["class"] == "1"} == {"nodule"}


def test_quotas_sum_to_the_negatives_and_follow_the_shares() -> None:
    for n in (0, 1, 4, 20, 101):
        q = quotas(n)
        assert sum(q.values()) == n and min(q.values()) >= 0
    q = quotas(1000)
    for kind, share in NEGATIVE_SHARES.items():
        assert q[kind] == pytest.approx(1000 * share, abs=1)


def test_patterns_have_their_densities() -> None:
    """With every pattern forced on, the HU inside each (well inside, so the blur does not
    reach the edge) is that of air holes, dense lung and fluid."""
    p = make_patient(2, 4, MID_SHAPE, MID_SPACING, pattern_rates=(1.0, 1.0, 1.0))
    pat, anat = p.patterns, p.anatomy
    assert pat.emphysema and len(pat.consolidation) and max(pat.effusion) > 0
    assert all(v > 0 for v in p.pattern_ml.values())
    hu = p.image[::2, ::2, ::2].astype(np.float32).ravel()  # every other voxel is enough
    idx = np.stack(np.meshgrid(*(np.arange(0, n, 2) for n in MID_SHAPE), indexing="ij"), -1)
    local = anat.to_local(np.asarray(p.origin) + idx.reshape(-1, 3) * np.asarray(MID_SPACING))
    in_lung = lung_field_sd(anat, local) > 6.0  # the lung's outline, effusion or not
    consolidation = segment_sd(local, pat.consolidation)
    fluid = in_lung & (pat.sd(anat, local) > 6.0) & (consolidation < -6.0)
    assert fluid.sum() > 20 and -30 < np.median(hu[fluid]) < 50
    dense = (consolidation > 6.0) & p.lung[::2, ::2, ::2].ravel()
    assert dense.sum() > 20 and -120 < np.median(hu[dense]) < 80
    holes = pat.holes.subset(pat.holes.ra >= 4.0)
    centres = np.rint((anat.to_world(holes.a) - p.origin) / MID_SPACING).astype(int)
    ok = np.all((centres >= 0) & (centres < MID_SHAPE), axis=1)
    in_lung = p.lung[tuple(centres[ok].T)]
    values = p.image[tuple(centres[ok][in_lung].T)]
    assert len(values) >= 5 and np.median(values) < -900  # parenchyma is about -870


def test_nodule_kinds_have_their_densities() -> None:
    """Ground-glass nodules stay well below soft tissue, calcified ones well above it."""
    centre_hu: dict[str, list[float]] = collections.defaultdict(list)
    for i in range(6):
        p = make_patient(i, 9, MID_SHAPE, MID_SPACING, nodules=(3, 3),
                         nodule_diameter_mm=(16.0, 30.0), part_solid_fraction=0.0)
        for nod in p.nodules:
            index = np.rint((np.asarray(nod.centre) - p.origin) / MID_SPACING).astype(int)
            centre_hu[nod.kind].append(float(p.image[tuple(index)]))
    assert {"solid", "ground-glass", "calcified"} <= set(centre_hu)
    assert all(-850 < v < -300 for v in centre_hu["ground-glass"])
    assert all(-60 < v < 130 for v in centre_hu["solid"])
    assert all(v > 150 for v in centre_hu["calcified"])


def test_same_seed_same_patient_and_rates_switch_patterns_off() -> None:
    a = make_patient(5, 8, SHAPE, SPACING, pattern_rates=(1.0, 1.0, 1.0))
    b = make_patient(5, 8, SHAPE, SPACING, pattern_rates=(1.0, 1.0, 1.0))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.label, b.label)
    assert a.candidates == b.candidates and len(a.mimics) == len(b.mimics)
    healthy = make_patient(5, 8, SHAPE, SPACING, pattern_rates=(0.0, 0.0, 0.0))
    assert healthy.patterns.emphysema == "" and not len(healthy.patterns.consolidation)
    assert max(healthy.patterns.effusion) == 0 and sum(healthy.pattern_ml.values()) == 0
    assert healthy.anatomy == a.anatomy  # the rates change the lungs, not the body
    with pytest.raises(SemgenError, match="pattern_rates"):
        PhantomConfig(pattern_rates=(0.5, 1.5, 0.0))


def test_hard_negatives_pool_to_a_nodule_mean_hu(cohort: Path) -> None:
    """The mean HU of the cube around a hard negative overlaps the nodules' range, so mean
    intensity and size alone separate them only weakly (the old look-alikes gave 0.76)."""
    rows = candidate_features(cohort, cube=(12, 12, 8))  # 65 x 65 x 50 mm at this spacing
    nodule = np.array([r["mean_hu"] for r in rows if r["class"] == 1])
    hard = np.array([r["mean_hu"] for r in rows
                     if r["kind"] in {"vessel-crossing", "vessel-end-on", *MIMIC_KINDS}])
    lo, hi = np.percentile(nodule, [10, 90])
    assert np.mean((hard >= lo) & (hard <= hi)) > 0.5
    auc, _ = trivial_auc(rows, splits=10)
    assert 0.3 < auc < 0.7
