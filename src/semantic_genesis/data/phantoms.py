"""`semgen phantoms`: a synthetic chest-CT cohort with nodules, the built-in data.

Real chest CT cohorts (LUNA16, LIDC) cannot be downloaded here (docs/design.md,
"Built-in data"), so the demo and the tests use phantoms realistic enough for what Semantic
Genesis assumes (method.md §1-§2): air outside the body, skin, fat, muscle, two lungs at about
-850 HU with a branching vessel tree, heart, aorta, airway, spine and ribs, scanner noise and
blur, and patients that differ in kind (docs/design.md, "Built-in data"): body-build families,
lung volume, heart size and position, vessel density, and diffuse patterns (emphysema,
consolidation, pleural effusion). Each patient has 1-3 nodules (3-30 mm; solid, part-solid,
ground-glass or calcified) with masks and 3-7 nodule mimics (small consolidations, pleural and
fissural thickenings), so the same folder serves the target tasks: nodule false-positive
reduction (``candidates.csv``, with hard negatives) and nodule segmentation (``labels/``).

Output folder (a LUNA16-style layout that ``semgen prepare`` and ``semgen finetune`` read):

- ``images/<id>.nii.gz``: int16 HU, spacing and origin in the header (ITK/LPS world);
- ``labels/<id>.nii.gz``: uint8 nodule masks (1 = nodule);
- ``annotations.csv``: ``seriesuid,coordX,coordY,coordZ,diameter_mm`` (nodules, world mm);
- ``candidates.csv``: ``seriesuid,coordX,coordY,coordZ,class`` (+ ``kind``), world mm;
- ``nodules.csv``: annotations plus kind (solid / part-solid / ground-glass / calcified) and
  mask voxels;
- ``patients.csv``: one row per patient (family, habitus, body size, lung and vessel volume,
  diffuse patterns, nodules, ...);
- ``phantoms.json``: the config, the patient ids and ``run_info``.

World millimetres are what SimpleITK reports for the NIfTI files (LPS), as LUNA16's are for its
``.mhd`` files, so ``Volume.world_to_voxel`` maps a coordinate to its voxel.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from semantic_genesis.data.anatomy import NOMINAL_FOV_MM
from semantic_genesis.data.patient import PhantomPatient, make_patient, patient_id
from semantic_genesis.data.patterns import PATTERN_RATES
from semantic_genesis.io.manifests import read_csv, write_csv
from semantic_genesis.utils.atomic import write_json
from semantic_genesis.utils.config import setting, to_dict
from semantic_genesis.utils.config import validate as check_fields
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.progress import progress, say

ANNOTATION_COLUMNS = ["seriesuid", "coordX", "coordY", "coordZ", "diameter_mm"]
CANDIDATE_COLUMNS = ["seriesuid", "coordX", "coordY", "coordZ", "class"]
#: bump when the same config would draw different patients (cached patients are then redone)
GENERATOR_VERSION = 2
PATIENT_COLUMNS = [
    "id",
    "family",
    "shape_x",
    "shape_y",
    "shape_z",
    "spacing_x",
    "spacing_y",
    "spacing_z",
    "origin_x",
    "origin_y",
    "origin_z",
    "body_width_mm",
    "body_depth_mm",
    "lung_volume_ml",
    "noise_hu",
    "n_nodules",
    "n_candidates",
    "habitus",
    "heart_volume_ml",
    "vessel_scale",
    "vessel_ml",
    "emphysema",
    "emphysema_ml",
    "consolidation",
    "consolidation_ml",
    "effusion",
    "effusion_ml",
    "n_mimics",
]


@dataclass
class PhantomConfig:
    """What to generate. ``workers`` changes only the speed, never the output.

    Attributes:
        n: number of patients.
        seed: the cohort seed; patient ``i`` depends only on ``(seed, i)``.
        spacing: voxel size (mm) along x, y, z. The default 1.5 x 1.5 x 2 mm makes the
            reference's 64 x 64 x 32 cube (method.md §2.4) 96 x 96 x 64 mm, which fits in the
            phantom lungs, and gives 150 slices (the reference needs at least 96).
        shape: grid size (x, y, z); None covers the nominal 350 x 350 x 300 mm field of view.
            Other shapes stretch the anatomy to the field of view (keeping it proportional);
            e.g. ``shape=(96, 96, 64)`` with ``spacing=(3.6, 3.6, 4.6)`` for fast tests.
        families: 0 for independent patients; F > 0 for F families of near-identical anatomy
            (patient ``i`` is in family ``i % F``), to test neighbour search.
        nodules: (min, max) nodules per patient.
        nodule_diameter_mm: (min, max) diameter, drawn log-uniformly.
        part_solid_fraction: share of nodules >= 6 mm with a ground-glass rim (of the others,
            20 % are ground-glass, 15 % calcified, the rest solid).
        negatives: false-positive candidates per patient.
        noise_hu: (min, max) noise standard deviation per patient.
        blur_mm: sigma of the scanner's point-spread function.
        pattern_rates: chance per patient of emphysema, consolidation and pleural effusion
            (0 0 0: lungs without diffuse disease).
        workers: processes (1 = in this process).
    """

    n: int = setting(32, ge=1, help="number of patients")
    seed: int = setting(0, ge=0, help="the cohort seed")
    spacing: tuple[float, float, float] = setting((1.5, 1.5, 2.0), gt=0, le=20,
                                                  help="voxel size in mm")
    shape: tuple[int, int, int] | None = setting(None, ge=16, le=2048, help=(
        "grid size in voxels; none: a 350 x 350 x 300 mm field of view (the anatomy is "
        "stretched to other fields of view)"))
    families: int = setting(0, ge=0, help=(
        "F > 0: F families of near-identical anatomy (neighbour tests); 0: independent patients"))
    nodules: tuple[int, int] = setting((1, 3), ge=0, le=50, help="nodules per patient (min, max)")
    nodule_diameter_mm: tuple[float, float] = setting((3.0, 30.0), gt=0, le=100,
                                                      help="nodule diameter in mm (min, max), drawn log-uniformly")
    part_solid_fraction: float = setting(0.35, ge=0, le=1, help=(
        "share of nodules >= 6 mm with a ground-glass rim"))
    negatives: int = setting(20, ge=0, le=10000, help="false-positive candidates per patient")
    noise_hu: tuple[float, float] = setting((12.0, 30.0), ge=0, help=(
        "noise standard deviation in HU per patient (min, max)"))
    blur_mm: float = setting(0.7, ge=0, help="sigma of the scanner's point-spread function (mm)")
    pattern_rates: tuple[float, float, float] = setting(PATTERN_RATES, ge=0, le=1, help=(
        "chance per patient of emphysema, consolidation and pleural effusion"))
    workers: int = setting(1, ge=1, help="processes (1 = in this process)")

    def __post_init__(self) -> None:
        """Check every field before any work (CLI, YAML, Python alike)."""
        self.validate()

    def grid_shape(self) -> tuple[int, int, int]:
        """``shape``, or the nominal field of view divided by ``spacing``."""
        fov = np.asarray(NOMINAL_FOV_MM)
        shape = self.shape or np.rint(fov / np.asarray(self.spacing, dtype=float))
        x, y, z = (int(v) for v in shape)
        return x, y, z

    def validate(self) -> None:
        """Types and ranges of every field, then what the fields must agree on."""
        check_fields(self)
        if min(self.grid_shape()) < 16:
            raise SemgenError(f"shape {self.grid_shape()} is too small (at least 16 voxels)")
        lo, hi = self.nodule_diameter_mm
        if not 0 < lo <= hi:
            raise SemgenError(f"nodule_diameter_mm must be 0 < min <= max, got {lo, hi}")
        if not 0 <= self.nodules[0] <= self.nodules[1]:
            raise SemgenError(f"nodules must be 0 <= min <= max, got {self.nodules}")
        if not self.noise_hu[0] <= self.noise_hu[1]:
            raise SemgenError(f"noise_hu must be min <= max, got {self.noise_hu}")

    def fingerprint(self) -> str:
        """Hash of everything that decides the output (not ``workers``)."""
        data = {k: v for k, v in to_dict(self).items() if k != "workers"}
        data.update(shape=list(self.grid_shape()), generator=GENERATOR_VERSION)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def generate_phantoms(out_dir: str | Path, config: PhantomConfig | None = None) -> list[Path]:
    """Generate the cohort into ``out_dir``; returns the image paths, in patient order.

    Re-running with the same config reuses the patients already written (each patient's rows
    are kept in ``meta/<id>.json`` next to its files, written last), so a killed run resumes;
    patients beyond ``n`` from an earlier run are removed. With ``workers`` > 1 the patients
    are made in spawned processes, so a script must call this under
    ``if __name__ == "__main__":``.
    """
    config = config or PhantomConfig()
    config.validate()
    out = Path(out_dir)
    ids = [patient_id(i, config.seed) for i in range(config.n)]
    _remove_stale(out, set(ids))
    todo = [i for i, pid in enumerate(ids) if _load_meta(out, pid, config) is None]
    if len(todo) < len(ids):
        say(f"phantoms: {len(ids) - len(todo)} of {len(ids)} patients already in {out}")
    workers = max(1, min(config.workers, len(todo)))
    bar = progress(total=len(todo), desc="phantoms", unit="patient")
    if workers == 1:
        for i in todo:
            _generate_one(out, i, config)
            bar.update()
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            for _ in pool.map(_generate_one, [out] * len(todo), todo, [config] * len(todo)):
                bar.update()
    bar.close()
    metas = [_load_meta(out, pid, config) for pid in ids]
    _write_tables(out, config, [m for m in metas if m is not None])
    return [out / "images" / f"{pid}.nii.gz" for pid in ids]


def _generate_one(out: Path, index: int, config: PhantomConfig) -> None:
    """Make one patient and write its image, label and rows (the rows last)."""
    from semantic_genesis.io import Volume, write_nifti

    patient = make_patient(
        index,
        config.seed,
        config.grid_shape(),
        config.spacing,
        config.families,
        config.nodules,
        config.nodule_diameter_mm,
        config.part_solid_fraction,
        config.negatives,
        config.noise_hu,
        config.blur_mm,
        config.pattern_rates,
    )
    for folder, array in (("images", patient.image), ("labels", patient.label)):
        write_nifti(
            Volume(array, patient.spacing, patient.origin), out / folder / f"{patient.id}.nii.gz"
        )
    write_json(
        out / "meta" / f"{patient.id}.json", {"fingerprint": config.fingerprint(), **_rows(patient)}
    )


def _rows(p: PhantomPatient) -> dict[str, Any]:
    """The table rows of one patient (floats rounded to 0.01 mm / 0.1 ml)."""

    def xyz(v: Any) -> dict[str, float]:
        return {"coordX": round(v[0], 2), "coordY": round(v[1], 2), "coordZ": round(v[2], 2)}

    nodules = [
        {
            "seriesuid": p.id,
            **xyz(n.centre),
            "diameter_mm": round(n.diameter, 2),
            "kind": n.kind,
            "mask_voxels": v,
            "juxtapleural": int(n.juxtapleural),
        }
        for n, v in zip(p.nodules, p.mask_voxels, strict=True)
    ]
    candidates = [
        {"seriesuid": p.id, **xyz(c.world), "class": c.label, "kind": c.kind} for c in p.candidates
    ]
    a = p.anatomy
    patient = {
        "id": p.id,
        "family": "" if p.family is None else p.family,
        "shape_x": p.image.shape[0],
        "shape_y": p.image.shape[1],
        "shape_z": p.image.shape[2],
        "spacing_x": p.spacing[0],
        "spacing_y": p.spacing[1],
        "spacing_z": p.spacing[2],
        "origin_x": round(p.origin[0], 3),
        "origin_y": round(p.origin[1], 3),
        "origin_z": round(p.origin[2], 3),
        "body_width_mm": round(2 * a.body_half_width * a.scale[0], 1),
        "body_depth_mm": round(2 * a.body_half_depth * a.scale[1], 1),
        "lung_volume_ml": round(p.lung_volume_ml, 1),
        "noise_hu": round(a.noise_hu, 1),
        "n_nodules": len(p.nodules),
        "n_candidates": len(p.candidates),
        **_variety(p),
    }
    return {"patient": patient, "nodules": nodules, "candidates": candidates}


def _variety(p: PhantomPatient) -> dict[str, Any]:
    """What makes the patient differ in kind: habitus, heart, vessels, diffuse patterns."""
    a, pat, ml = p.anatomy, p.patterns, p.pattern_ml or {}
    heart = 4.0 / 3.0 * np.pi * float(np.prod(a.heart_radii) * np.prod(a.scale)) / 1000.0
    effusion = "" if pat is None else "+".join(
        side for side, share in zip(("right", "left"), pat.effusion, strict=True) if share > 0)
    return {
        "habitus": a.habitus,
        "heart_volume_ml": round(heart, 1),
        "vessel_scale": round(a.vessel_scale, 3),
        "vessel_ml": round(p.vessel_ml, 1),
        "emphysema": "" if pat is None else pat.emphysema,
        "emphysema_ml": round(ml.get("emphysema", 0.0), 1),
        "consolidation": int(pat is not None and len(pat.consolidation) > 0),
        "consolidation_ml": round(ml.get("consolidation", 0.0), 1),
        "effusion": effusion,
        "effusion_ml": round(ml.get("effusion", 0.0), 1),
        "n_mimics": len(p.mimics or []),
    }


def _load_meta(out: Path, pid: str, config: PhantomConfig) -> dict[str, Any] | None:
    """A finished patient's rows, if it was made with this config and its files exist."""
    path = out / "meta" / f"{pid}.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if meta.get("fingerprint") != config.fingerprint():
        return None
    if not all((out / d / f"{pid}.nii.gz").is_file() for d in ("images", "labels")):
        return None
    return meta


def _remove_stale(out: Path, keep: set[str]) -> None:
    """Delete what a killed run left half-way (``.tmp-*`` files) and the patients of an
    earlier, larger run, so the folder holds this cohort only."""
    for folder, suffix in (("images", ".nii.gz"), ("labels", ".nii.gz"), ("meta", ".json")):
        for path in (out / folder).glob(".tmp-*"):
            path.unlink(missing_ok=True)
        for path in (out / folder).glob(f"phantom-*{suffix}"):
            if path.name[: -len(suffix)] not in keep:
                path.unlink()


def _write_tables(out: Path, config: PhantomConfig, metas: list[dict[str, Any]]) -> None:
    from semantic_genesis.utils.provenance import run_info

    nodules = [r for m in metas for r in m["nodules"]]
    write_csv(
        out / "annotations.csv",
        ANNOTATION_COLUMNS,
        [{k: r[k] for k in ANNOTATION_COLUMNS} for r in nodules],
    )
    write_csv(out / "nodules.csv", ANNOTATION_COLUMNS, nodules)
    write_csv(
        out / "candidates.csv", CANDIDATE_COLUMNS, [r for m in metas for r in m["candidates"]]
    )
    write_csv(out / "patients.csv", PATIENT_COLUMNS, [m["patient"] for m in metas])
    write_json(
        out / "phantoms.json",
        {
            "config": to_dict(config),
            "fingerprint": config.fingerprint(),
            "shape": list(config.grid_shape()),
            "ids": [m["patient"]["id"] for m in metas],
            "labels": {"0": "background", "1": "nodule"},
            "world": "ITK/LPS millimetres, as SimpleITK reads the NIfTI headers",
            "run_info": run_info(),
        },
    )


def read_annotations(folder: str | Path) -> list[dict[str, str]]:
    """The ``annotations.csv`` rows of a phantom (or LUNA16) folder."""
    return read_csv(Path(folder) / "annotations.csv", ANNOTATION_COLUMNS)
