"""``prepare``: scans in, a cohort folder out (the contract in docs/design.md).

    cohort/
      cohort.csv              one row per usable volume (manifests.CohortRecord), + origin/direction
                              and its source group (the LUNA16 subset; prepare.groups)
      volumes/<id>.npy        float16 (or float32) in [0, 1], axis order (x, y, z), memory-mappable
      volumes/<id>.json       per-volume sidecar: source sha256, recipe, geometry, modality + why
      prepare-report.json     every skipped input with its reason, per-volume decisions, run info
      prepare-config.yaml     the PrepareConfig that made it

Steps per scan: read (``io.read_volume``), optionally resample, check (finite values, not
constant, at least ``min_shape``), choose the intensity preset (``io.detect_modality`` for
``auto``), map to [0, 1] (``io.normalize_intensity``), store.

The folder belongs to ``prepare`` (``utils.outdir.claim_output``: a new, empty or earlier
``prepare`` folder only, never one holding an input, one run at a time) and it changes only files
it can prove it wrote (``cohort_folder``). Idempotent and crash-safe: a volume's sidecar is
written (status ``writing``) before its ``.npy``, and again (status ``ok``) after it, both
atomically, so an ``ok`` sidecar means a complete volume. A re-run skips a volume whose sidecar
has the same source sha256 and recipe and whose ``.npy`` is intact, and prints what it redid or
removed; stray temporaries of a killed run are removed first. ``cohort.csv`` and the report are
rebuilt from the sidecars at the end. A full or read-only disk stops the run with one line
(``cohort_folder.OutputFault``); a bad scan only skips that scan.

Results that may be wrong are flagged, on the console and in the report: a modality that
contradicts ``--modality``, a cohort mixing CT and MR, unevenly spaced DICOM slices.

Scale: under torchrun each rank prepares its share (``utils.dist.shard``); rank 0 assembles the
cohort from the sidecars after a barrier. ``workers`` > 1 adds a process pool within each rank.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from semantic_genesis.io.formats import display_path, source_sha256
from semantic_genesis.io.inputs import Scan, find_scans
from semantic_genesis.io.intensity import detect_modality, normalize_intensity
from semantic_genesis.io.itk import resample_volume
from semantic_genesis.io.manifests import CohortRecord, write_cohort
from semantic_genesis.io.readers import read_volume
from semantic_genesis.prepare.config import PrepareConfig
from semantic_genesis.prepare.folder import (
    VOLUMES,
    OutputFault,
    check_volume_is_ours,
    read_sidecar,
    remove_earlier_volumes,
    remove_own_temporaries,
    sidecar_path,
    writing,
)
from semantic_genesis.prepare.groups import group_counts, source_group
from semantic_genesis.utils import dist
from semantic_genesis.utils.atomic import save_npy_atomic, write_json
from semantic_genesis.utils.config import save_config, to_dict
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.outdir import claim_output
from semantic_genesis.utils.progress import progress

REPORT_JSON = "prepare-report.json"
CONFIG_YAML = "prepare-config.yaml"
#: files that mark a cohort folder written before output markers existed
LEGACY = (CONFIG_YAML, REPORT_JSON)


@dataclass
class PrepareReport:
    """What ``prepare`` did (also written as ``prepare-report.json``).

    ``volumes`` has one entry per prepared volume (id, source, status ``prepared``/``reused``,
    ``replaced`` (why an earlier version was redone), modality and why, notes, warnings);
    ``skipped`` one per unusable input (input, reason); ``removed`` the files of an earlier run
    that were removed (``removed_ids`` their volumes); ``warnings`` every line a user must read
    (each names its file); ``groups`` how many volumes each source group holds ("" = none).
    """

    out_dir: Path
    records: list[CohortRecord] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    removed_ids: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    groups: dict[str, int] = field(default_factory=dict)

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


def _reusable(info: dict[str, Any] | None, out_dir: Path, sha: str, recipe: dict) -> bool:
    """True when a sidecar describes a complete volume made from the same source and recipe."""
    if not info or info.get("status") != "ok" or info.get("sha256") != sha:
        return False
    if info.get("recipe") != recipe or info.get("file") != f"{VOLUMES}/{info.get('id')}.npy":
        return False
    try:
        stored = np.load(out_dir / info["file"], mmap_mode="r")
    except (OSError, ValueError, KeyError):
        return False
    return list(stored.shape) == info.get("shape") and str(stored.dtype) == info.get("dtype")


def _why_redone(old: dict[str, Any] | None, sha: str, recipe: dict) -> str | None:
    """Why an earlier complete volume of this id is being replaced (None: there was none)."""
    if not old or old.get("status") != "ok":
        return None
    if old.get("sha256") != sha:
        return "its source changed"
    if old.get("recipe") != recipe:
        changed = sorted(k for k in recipe if old["recipe"].get(k) != recipe[k])
        return "settings changed: " + ", ".join(changed)
    return "its stored volume was damaged"


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

    Raises:
        OutputFault: writing into ``out_dir`` failed (full or read-only disk).
    """
    out_dir = Path(out_dir)
    side = sidecar_path(out_dir, scan.id)
    base = {"id": scan.id, "source": display_path(scan.path.resolve()),
            "recipe": config.recipe()}
    redone = None
    old = read_sidecar(side)
    old_file = (old or {}).get("file")
    foreign = old is None and (side.exists() or side.is_symlink())  # a file of the user's
    try:
        sha = source_sha256(scan.path, config.allow_external_data)
        if _reusable(old, out_dir, sha, base["recipe"]):
            if old["source"] != base["source"]:  # same bytes, moved: keep the sidecar true
                with writing(side):
                    write_json(side, {**old, "source": base["source"]})
            return {**old, "source": base["source"], "reused": True}
        check_volume_is_ours(out_dir, scan.id, old)
        redone = _why_redone(old, sha, base["recipe"])
        info = _convert(scan, out_dir, config, {**base, "sha256": sha})
    except OutputFault:
        raise
    except SemgenError as exc:
        info = {**base, "status": "skipped", "reason": exc.reason}
    except OSError as exc:  # reading the scan (writes raise OutputFault)
        info = {**base, "status": "skipped", "reason": f"cannot read it: {exc.strerror or exc}"}
    except Exception as exc:  # a library failure on a weird file must not stop the cohort
        info = {**base, "status": "skipped",
                "reason": f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())}"[:300]}
    if info["status"] == "skipped" and old_file:  # our earlier volume goes at the end
        info["file"] = old_file
    if not foreign:
        with writing(side):
            write_json(side, info)
    return {**info, "reused": False, "replaced": redone}


def _modality(array: np.ndarray, config: PrepareConfig) -> tuple[str, str, list[str]]:
    """The preset to use, why, and a warning when the values contradict a given modality."""
    detected, why = detect_modality(array)
    if config.modality == "auto":
        return detected, why, []
    warnings = []
    if config.modality in ("ct", "mr") and detected != config.modality:
        facts = why.split(": not Hounsfield")[0]  # the numbers, not detect's conclusion
        warnings.append(f"--modality {config.modality} was given, but the values look like "
                        f"{detected.upper()} ({facts})")
    return config.modality, f"given ({config.modality})", warnings


def _convert(scan: Scan, out_dir: Path, config: PrepareConfig, info: dict) -> dict[str, Any]:
    volume = read_volume(scan.path, spacing=config.npy_spacing,
                         allow_external_data=config.allow_external_data)
    source_shape, source_spacing = volume.shape, volume.spacing
    _check_values(volume.array, scan.path)
    if config.spacing is not None:
        volume = resample_volume(volume, config.spacing)
    _check_shape(volume.shape, config.min_shape, scan.path)
    modality, why, warnings = _modality(volume.array, config)
    if modality == "none" and (np.min(volume.array) < 0 or np.max(volume.array) > 1):
        raise SemgenError(f"values span [{float(np.min(volume.array)):g}, "
                          f"{float(np.max(volume.array)):g}], not [0, 1]; use modality ct or mr",
                          scan.path)
    array = normalize_intensity(volume.array, modality, config.window, config.percentiles)
    if warnings and modality == "ct":  # the HU window squashes values that are not HU
        warnings[-1] += (f"; its stored values span only [{float(array.min()):.2f}, "
                         f"{float(array.max()):.2f}]")
    file = f"{VOLUMES}/{scan.id}.npy"
    side = sidecar_path(out_dir, scan.id)
    with writing(side):  # first: the volume file about to appear is ours
        write_json(side, {**info, "status": "writing", "file": file})
    with writing(out_dir / file):
        save_npy_atomic(out_dir / file, array.astype(config.dtype))
    return {**info, "status": "ok", "file": file, "modality": modality, "modality_reason": why,
            "shape": list(volume.shape), "spacing": list(volume.spacing),
            "origin": list(volume.origin), "direction": list(volume.direction),
            "dtype": config.dtype, "source_shape": list(source_shape),
            "source_spacing": list(source_spacing), "notes": volume.notes,
            "warnings": [*volume.warnings, *warnings]}


def _run_share(scans: list[Scan], out_dir: Path, config: PrepareConfig
               ) -> dict[str, dict[str, Any]]:
    """Prepare this rank's scans, in this process or a pool of ``config.workers``.

    Returns:
        id -> {"reused", "replaced" (why an earlier volume was redone), "status", "reason"}.
    """
    done: dict[str, dict[str, Any]] = {}
    bar = progress(total=len(scans), desc="prepare", unit="vol")
    if config.workers == 1 or len(scans) <= 1:
        for scan in scans:
            done[scan.id] = prepare_scan(scan, out_dir, config)
            bar.update(1)
    else:
        with ProcessPoolExecutor(config.workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(prepare_scan, s, out_dir, config): s for s in scans}
            for future in as_completed(futures):
                scan = futures[future]
                try:
                    done[scan.id] = future.result()
                except OutputFault:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
                except Exception as exc:  # the worker process itself died (out of memory?)
                    with writing(sidecar_path(out_dir, scan.id)):
                        write_json(sidecar_path(out_dir, scan.id), {
                            "id": scan.id, "source": display_path(scan.path.resolve()),
                            "recipe": config.recipe(), "status": "skipped",
                            "reason": f"worker process failed ({type(exc).__name__}); re-run"})
                bar.update(1)
    bar.close()
    keep = ("reused", "replaced", "status", "reason")
    return {k: {key: v.get(key) for key in keep} for k, v in done.items()}


def _on_main_then_all(action: Callable[[], None]) -> None:
    """Run ``action`` on rank 0; when it raises a SemgenError every rank raises it (so no rank
    waits for a rank 0 that stopped)."""
    error: SemgenError | None = None
    if dist.is_main():
        try:
            action()
        except SemgenError as exc:
            error = exc
    message = str(error) if error else None
    if dist.world_size() > 1:
        import torch.distributed as tdist

        box = [message]
        tdist.broadcast_object_list(box, src=0)
        message = box[0]
    if error is not None:
        raise error
    if message is not None:
        raise SemgenError(message)


def prepare(inputs: list[str | Path], out_dir: str | Path,
            config: PrepareConfig | None = None) -> PrepareReport:
    """Prepare scans into a cohort folder (see the module docstring).

    Args:
        inputs: files and folders (see ``io.inputs`` for how folders are searched).
        out_dir: the cohort folder: new, empty, or made by ``prepare`` before (re-using it is
            idempotent); it may not be or contain an input.
        config: settings; defaults to ``PrepareConfig()``.

    Returns:
        The report; ``n_prepared`` is 0 when no input was usable (then ``cohort.csv`` is left
        as it was). On ranks other than 0 the report holds no records.

    Raises:
        SemgenError: the folder is not ``prepare``'s, holds an input, is in use by another run,
            or cannot be written (full or read-only disk: one line naming the file).
    """
    config = config or PrepareConfig()
    config.validate()
    out_dir = Path(out_dir)
    dist.init_distributed("gloo")
    with contextlib.ExitStack() as stack:

        def claim() -> None:
            stack.enter_context(claim_output(out_dir, "prepare", inputs=inputs, legacy=LEGACY,
                                             settings=to_dict(config)))
            with writing(out_dir / VOLUMES):
                (out_dir / VOLUMES).mkdir(exist_ok=True)
            remove_own_temporaries(out_dir)

        _on_main_then_all(claim)
        scans, skipped = find_scans(list(inputs), exclude=[out_dir])
        done = _run_share(dist.shard(scans), out_dir, config)
        dist.barrier()
        report = PrepareReport(out_dir=out_dir, skipped=[
            {"input": display_path(s.input), "reason": s.reason} for s in skipped])
        if not dist.is_main():
            return report
        return _assemble(scans, out_dir, config, report, done)


def _record(info: dict[str, Any], split: str) -> CohortRecord:
    """The cohort.csv row of a prepared volume; its group comes from its source path
    (``prepare.groups.source_group``: the LUNA16 subset folder holding it)."""
    origin = info["origin"]
    return CohortRecord(
        id=info["id"], split=split, source=info["source"], modality=info["modality"],
        shape=tuple(info["shape"]), spacing=tuple(info["spacing"]), sha256=info["sha256"],
        file=info["file"], group=source_group(info["source"]),
        extra={"origin_x": f"{origin[0]:.6g}", "origin_y": f"{origin[1]:.6g}",
               "origin_z": f"{origin[2]:.6g}",
               "direction": " ".join(f"{d:.6g}" for d in info["direction"])})


def _mixed_modalities(volumes: list[dict[str, Any]], out_dir: Path) -> list[str]:
    counts = Counter(v["modality"] for v in volumes)
    if len(counts) < 2:
        return []
    shown = ", ".join(f"{n} {m.upper()}" for m, n in sorted(counts.items()))
    return [f"{display_path(out_dir)}: the cohort mixes modalities ({shown} volumes); each "
            "volume's modality is in cohort.csv: check that mixing them is what you want"]


def _assemble(scans: list[Scan], out_dir: Path, config: PrepareConfig,
              report: PrepareReport, done: dict[str, dict[str, Any]]) -> PrepareReport:
    """Rank 0: cohort.csv, report and config from the sidecars of this run's scans."""
    from semantic_genesis.utils.provenance import run_info

    ok: list[dict[str, Any]] = []
    for scan in scans:
        info = read_sidecar(sidecar_path(out_dir, scan.id)) or done.get(scan.id) or {
            "status": "skipped", "reason": "no result was written (a rank failed?)"}
        if info.get("status") == "ok":
            ok.append(info)
        else:
            report.skipped.append({"input": display_path(scan.path),
                                   "reason": info.get("reason", "")})
    splits = assign_splits([i["id"] for i in ok], config.val_fraction, config.seed)
    for info in ok:
        mine = done.get(info["id"])
        status = "done by another rank" if mine is None else (
            "reused" if mine["reused"] else "prepared")
        report.records.append(_record(info, splits[info["id"]]))
        report.volumes.append({k: info.get(k) for k in (
            "id", "source", "modality", "modality_reason", "shape", "spacing", "source_shape",
            "source_spacing", "notes")} | {"split": splits[info["id"]], "status": status,
                                           "replaced": (mine or {}).get("replaced"),
                                           "warnings": info.get("warnings", [])})
        report.warnings += [f"{info['source']}: {w}" for w in info.get("warnings", [])]
    report.warnings += _mixed_modalities(report.volumes, out_dir)
    report.groups = group_counts(report.records)
    report.skipped.sort(key=lambda s: s["input"])
    if ok:
        with writing(out_dir / "cohort.csv"):
            write_cohort(out_dir, report.records)
        report.removed_ids, report.removed = remove_earlier_volumes(
            out_dir, {i["id"] for i in ok})
        with writing(out_dir / CONFIG_YAML):
            save_config(config, out_dir / CONFIG_YAML)
    with writing(out_dir / REPORT_JSON):
        write_json(out_dir / REPORT_JSON, {
            "n_prepared": len(ok), "n_skipped": len(report.skipped), "groups": report.groups,
            "volumes": report.volumes,
            "skipped": report.skipped, "removed": report.removed, "warnings": report.warnings,
            "config": to_dict(config), "run_info": run_info()})
    return report
