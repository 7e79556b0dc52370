"""``prepare``: scans in, a cohort folder out (the contract in docs/design.md).

    cohort/
      cohort.csv              one row per usable volume (manifests.CohortRecord), + origin/direction
      volumes/<id>.npy        float16 (or float32) in [0, 1], axis order (x, y, z), memory-mappable
      volumes/<id>.json       per-volume sidecar: source sha256, recipe, geometry, modality + why
      prepare-report.json     every skipped input with its reason, per-volume decisions, run info
      prepare-config.yaml     the PrepareConfig that made it

Steps per scan: read (``io.read_volume``), optionally resample, check (finite values, not
constant, at least ``min_shape``), choose the intensity preset (``io.detect_modality`` for
``auto``), map to [0, 1] (``io.normalize_intensity``), store.

Idempotent and crash-safe: the ``.npy`` is written atomically first, its sidecar atomically
after it, so a sidecar means a complete volume. A re-run skips a volume whose sidecar has the same
source sha256 and recipe and whose ``.npy`` is intact; stray ``.tmp-*`` files of a killed run are
removed first. ``cohort.csv`` and the report are rebuilt from the sidecars at the end.

Scale: under torchrun each rank prepares its share (``utils.dist.shard``); rank 0 assembles the
cohort from the sidecars after a barrier. ``workers`` > 1 adds a process pool within each rank.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from semantic_genesis.io.formats import source_sha256
from semantic_genesis.io.inputs import Scan, find_scans
from semantic_genesis.io.intensity import MODALITIES, detect_modality, normalize_intensity
from semantic_genesis.io.itk import resample_volume
from semantic_genesis.io.readers import read_volume
from semantic_genesis.manifests import CohortRecord, write_cohort
from semantic_genesis.utils import dist
from semantic_genesis.utils.atomic import TMP_PREFIX, save_npy_atomic, write_json
from semantic_genesis.utils.config import save_config, to_dict
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.progress import progress

REPORT_JSON = "prepare-report.json"
CONFIG_YAML = "prepare-config.yaml"
VOLUMES = "volumes"
#: bump when the per-volume processing changes, so old volumes are redone
RECIPE_VERSION = 1


@dataclass
class PrepareConfig:
    """Settings of ``prepare`` (stored as ``prepare-config.yaml`` with the cohort).

    Attributes:
        modality: ``ct`` (HU window), ``mr`` (percentiles), ``none`` (already in [0, 1]) or
            ``auto`` (decided per volume by ``io.detect_modality``).
        spacing: resample to this voxel size (mm, x y z); None keeps native spacing, as the
            reference does (method.md §1).
        val_fraction: share of patients in the ``val`` split (at least one when >= 2 volumes).
        seed: decides the split (a hash of seed and patient id).
        workers: processes per rank.
        dtype: ``float16`` (half the disk, exact enough for [0, 1]) or ``float32``.
        min_shape: smallest usable volume (x, y, z); default one 64x64x32 training cube
            (method.md: the network input).
        npy_spacing: voxel size assumed for ``.npy`` inputs, which store none.
        window: CT HU window (method.md §1).
        percentiles: MR percentiles mapped to 0 and 1.
    """

    modality: str = "auto"
    spacing: tuple[float, float, float] | None = None
    val_fraction: float = 0.1
    seed: int = 0
    workers: int = 1
    dtype: str = "float16"
    min_shape: tuple[int, int, int] = (64, 64, 32)
    npy_spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    window: tuple[float, float] = (-1000.0, 1000.0)
    percentiles: tuple[float, float] = (0.5, 99.5)

    def validate(self) -> None:
        """Refuse impossible settings with one clear line."""
        if self.modality not in (*MODALITIES, "auto"):
            raise SemgenError(f"modality must be one of ct, mr, none, auto; got {self.modality}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise SemgenError(f"val fraction must be in [0, 1), got {self.val_fraction}")
        if self.spacing is not None and (len(self.spacing) != 3 or min(self.spacing) <= 0):
            raise SemgenError(f"spacing must be three positive numbers, got {self.spacing}")
        if self.workers < 1:
            raise SemgenError(f"workers must be at least 1, got {self.workers}")
        if self.dtype not in ("float16", "float32"):
            raise SemgenError(f"dtype must be float16 or float32, got {self.dtype}")
        if len(self.min_shape) != 3 or min(self.min_shape) < 1:
            raise SemgenError(f"min shape must be three positive sizes, got {self.min_shape}")

    def recipe(self) -> dict[str, Any]:
        """What determines a stored volume's content (a change redoes the volume)."""
        keep = ("modality", "spacing", "dtype", "min_shape", "npy_spacing", "window",
                "percentiles")
        return {"version": RECIPE_VERSION, **{k: v for k, v in to_dict(self).items() if k in keep}}


@dataclass
class PrepareReport:
    """What ``prepare`` did (also written as ``prepare-report.json``).

    ``volumes`` has one entry per prepared volume (id, source, status ``prepared``/``reused``,
    modality and why, notes); ``skipped`` one per unusable input (input, reason).
    """

    out_dir: Path
    records: list[CohortRecord] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def n_prepared(self) -> int:
        return len(self.records)


def assign_splits(ids: list[str], val_fraction: float, seed: int) -> dict[str, str]:
    """``train``/``val`` per patient id, deterministic from ``seed``.

    Patients are ordered by sha256(seed:id) and the first ``round(val_fraction * n)`` (at least
    one when n >= 2 and val_fraction > 0, never all) go to ``val``.
    """
    n = len(ids)
    n_val = min(n - 1, max(1, round(val_fraction * n))) if n >= 2 and val_fraction > 0 else 0
    order = sorted(ids, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())
    val = set(order[:n_val])
    return {i: "val" if i in val else "train" for i in ids}


def _sidecar_path(out_dir: Path, scan_id: str) -> Path:
    return out_dir / VOLUMES / f"{scan_id}.json"


def _read_sidecar(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _reusable(info: dict[str, Any] | None, out_dir: Path, sha: str, recipe: dict) -> bool:
    """True when a sidecar describes a complete volume made from the same source and recipe."""
    if not info or info.get("status") != "ok" or info.get("sha256") != sha:
        return False
    if info.get("recipe") != recipe:
        return False
    try:
        stored = np.load(out_dir / info["file"], mmap_mode="r")
    except (OSError, ValueError, KeyError):
        return False
    return list(stored.shape) == info.get("shape") and str(stored.dtype) == info.get("dtype")


def _check_values(array: np.ndarray, path: Path) -> None:
    """Refuse NaN/Inf voxels and constant volumes (no preset can map them to [0, 1])."""
    if array.dtype.kind == "f":
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise SemgenError(f"{bad} NaN/Inf voxel(s) of {array.size}; fix or mask them first",
                              path)
    lo, hi = np.min(array), np.max(array)
    if lo == hi:
        raise SemgenError(f"every voxel has the same value ({float(lo):g}); nothing to learn",
                          path)


def _check_shape(shape: tuple[int, int, int], min_shape: tuple[int, int, int], path: Path) -> None:
    """Refuse volumes smaller than one training patch."""
    if any(s < m for s, m in zip(shape, min_shape, strict=True)):
        raise SemgenError(f"volume {'x'.join(map(str, shape))} is smaller than the minimum "
                          f"patch {'x'.join(map(str, min_shape))}", path)


def prepare_scan(scan: Scan, out_dir: Path, config: PrepareConfig) -> dict[str, Any]:
    """Prepare one scan and write its ``.npy`` then its sidecar; returns the sidecar dict.

    Never raises for a bad scan: the sidecar then has ``status: skipped`` and the reason.
    """
    out_dir = Path(out_dir)
    base = {"id": scan.id, "source": str(scan.path.resolve()), "recipe": config.recipe()}
    try:
        sha = source_sha256(scan.path)
        old = _read_sidecar(_sidecar_path(out_dir, scan.id))
        if _reusable(old, out_dir, sha, base["recipe"]):
            if old["source"] != base["source"]:  # same bytes, moved: keep the sidecar true
                write_json(_sidecar_path(out_dir, scan.id), {**old, "source": base["source"]})
            return {**old, "source": base["source"], "reused": True}
        info = _convert(scan, out_dir, config, {**base, "sha256": sha})
    except SemgenError as exc:
        info = {**base, "status": "skipped", "reason": exc.reason}
    except Exception as exc:  # a library failure on a weird file must not stop the cohort
        info = {**base, "status": "skipped",
                "reason": f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())}"[:300]}
    write_json(_sidecar_path(out_dir, scan.id), info)
    return {**info, "reused": False}


def _convert(scan: Scan, out_dir: Path, config: PrepareConfig, info: dict) -> dict[str, Any]:
    volume = read_volume(scan.path, spacing=config.npy_spacing)
    source_shape, source_spacing = volume.shape, volume.spacing
    _check_values(volume.array, scan.path)
    if config.spacing is not None:
        volume = resample_volume(volume, config.spacing)
    _check_shape(volume.shape, config.min_shape, scan.path)
    if config.modality == "auto":
        modality, why = detect_modality(volume.array)
    else:
        modality, why = config.modality, f"given ({config.modality})"
    if modality == "none" and (np.min(volume.array) < 0 or np.max(volume.array) > 1):
        raise SemgenError(f"values span [{float(np.min(volume.array)):g}, "
                          f"{float(np.max(volume.array)):g}], not [0, 1]; use modality ct or mr",
                          scan.path)
    array = normalize_intensity(volume.array, modality, config.window, config.percentiles)
    file = f"{VOLUMES}/{scan.id}.npy"
    save_npy_atomic(out_dir / file, array.astype(config.dtype))
    return {**info, "status": "ok", "file": file, "modality": modality, "modality_reason": why,
            "shape": list(volume.shape), "spacing": list(volume.spacing),
            "origin": list(volume.origin), "direction": list(volume.direction),
            "dtype": config.dtype, "source_shape": list(source_shape),
            "source_spacing": list(source_spacing), "notes": volume.notes}


def _run_share(scans: list[Scan], out_dir: Path, config: PrepareConfig) -> dict[str, bool]:
    """Prepare this rank's scans, in this process or a pool of ``config.workers``.

    Returns:
        id -> True when the volume was reused from an earlier run.
    """
    reused: dict[str, bool] = {}
    bar = progress(total=len(scans), desc="prepare", unit="vol")
    if config.workers == 1 or len(scans) <= 1:
        for scan in scans:
            reused[scan.id] = prepare_scan(scan, out_dir, config)["reused"]
            bar.update(1)
    else:
        with ProcessPoolExecutor(config.workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(prepare_scan, s, out_dir, config): s for s in scans}
            for future in as_completed(futures):
                scan = futures[future]
                try:
                    reused[scan.id] = future.result()["reused"]
                except Exception as exc:  # the worker process itself died (out of memory?)
                    write_json(_sidecar_path(out_dir, scan.id), {
                        "id": scan.id, "source": str(scan.path.resolve()), "status": "skipped",
                        "reason": f"worker process failed ({type(exc).__name__}); re-run"})
                bar.update(1)
    bar.close()
    return reused


def _remove_temporaries(out_dir: Path) -> None:
    for folder in (out_dir, out_dir / VOLUMES):
        if folder.is_dir():
            for p in folder.glob(TMP_PREFIX + "*"):
                p.unlink(missing_ok=True)


def prepare(inputs: list[str | Path], out_dir: str | Path,
            config: PrepareConfig | None = None) -> PrepareReport:
    """Prepare scans into a cohort folder (see the module docstring).

    Args:
        inputs: files and folders (see ``io.inputs`` for how folders are searched).
        out_dir: the cohort folder (created; re-using it is idempotent).
        config: settings; defaults to ``PrepareConfig()``.

    Returns:
        The report; ``n_prepared`` is 0 when no input was usable (then ``cohort.csv`` is left
        as it was). On ranks other than 0 the report holds no records.
    """
    config = config or PrepareConfig()
    config.validate()
    out_dir = Path(out_dir)
    (out_dir / VOLUMES).mkdir(parents=True, exist_ok=True)
    dist.init_distributed("gloo")
    if dist.is_main():
        _remove_temporaries(out_dir)
    dist.barrier()
    scans, skipped = find_scans(list(inputs), exclude=[out_dir])
    reused = _run_share(dist.shard(scans), out_dir, config)
    dist.barrier()
    report = PrepareReport(out_dir=out_dir, skipped=[vars(s) for s in skipped])
    if not dist.is_main():
        return report
    return _assemble(scans, out_dir, config, report, reused)


def _assemble(scans: list[Scan], out_dir: Path, config: PrepareConfig,
              report: PrepareReport, reused: dict[str, bool]) -> PrepareReport:
    """Rank 0: cohort.csv, report and config from the sidecars of this run's scans."""
    from semantic_genesis.utils.provenance import run_info

    ok: list[dict[str, Any]] = []
    for scan in scans:
        info = _read_sidecar(_sidecar_path(out_dir, scan.id)) or {
            "status": "skipped", "reason": "no result was written (a rank failed?)"}
        if info.get("status") == "ok":
            ok.append(info)
        else:
            report.skipped.append({"input": str(scan.path), "reason": info.get("reason", "")})
    splits = assign_splits([i["id"] for i in ok], config.val_fraction, config.seed)
    for info in ok:
        status = {True: "reused", False: "prepared"}.get(reused.get(info["id"]),
                                                         "done by another rank")
        report.records.append(CohortRecord(
            id=info["id"], split=splits[info["id"]], source=info["source"],
            modality=info["modality"], shape=tuple(info["shape"]),
            spacing=tuple(info["spacing"]), sha256=info["sha256"], file=info["file"],
            extra={"origin_x": f"{info['origin'][0]:.6g}", "origin_y": f"{info['origin'][1]:.6g}",
                   "origin_z": f"{info['origin'][2]:.6g}",
                   "direction": " ".join(f"{d:.6g}" for d in info["direction"])}))
        report.volumes.append({k: info.get(k) for k in (
            "id", "source", "modality", "modality_reason", "shape", "spacing", "source_shape",
            "source_spacing", "notes")} | {"split": splits[info["id"]], "status": status})
    report.skipped.sort(key=lambda s: s["input"])
    if ok:
        write_cohort(out_dir, report.records)
        keep = {i["id"] for i in ok}
        for p in sorted((out_dir / VOLUMES).iterdir()):
            if p.suffix in (".npy", ".json") and p.stem not in keep:
                p.unlink(missing_ok=True)
                report.removed.append(p.name)
        save_config(config, out_dir / CONFIG_YAML)
    write_json(out_dir / REPORT_JSON, {
        "n_prepared": len(ok), "n_skipped": len(report.skipped), "volumes": report.volumes,
        "skipped": report.skipped, "removed": report.removed, "config": to_dict(config),
        "run_info": run_info()})
    return report
