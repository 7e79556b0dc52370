"""``discover(cohort_dir, out_dir, config)``: self-discovery from a prepared cohort to a patterns
folder (method.md §2, docs/design.md).

Steps: patient features (:mod:`.features`) -> for each reference patient, its neighbours
(:mod:`.neighbours`) and the corners that pass the air test (:mod:`.coordinates`), written as
one part file ``classes/ref-<j>.json`` -> assembly into classes (the distance test) -> the
pattern rows (:mod:`.patterns`) and every output file.

Determinism, resume and sharding: the order in which training patients serve as references is
one permutation drawn from ``derive_rng(seed, "references")``; reference ``j``'s trial corners
come from ``derive_rng(seed, "reference", j)``. A part file therefore never depends on the
others, so a killed run keeps the parts it wrote, and under ``torchrun`` each rank computes its
share of the parts (round-robin). Assembly then walks the parts in order and keeps the first
accepted corner of each reference that is at least ``min_distance`` from every earlier class
(the reference's distance test, without its never-reset flag); a reference with none is
replaced by the next one and reported. Every rank assembles the same classes; rank 0 writes.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from semantic_genesis.discovery import coordinates as coords
from semantic_genesis.discovery.config import DiscoverConfig, resolved, result_key
from semantic_genesis.discovery.features import FEATURES_NPZ, Features, cached_features
from semantic_genesis.discovery.neighbours import build_index, find_neighbours
from semantic_genesis.discovery.patterns import DiscoveredClass, instances, save_montage
from semantic_genesis.manifests import (
    COHORT_CSV,
    DISCOVER_JSON,
    ClassRecord,
    CohortRecord,
    cohort_fingerprint,
    open_volume,
    read_cohort,
    write_classes,
    write_patterns,
)
from semantic_genesis.utils.atomic import write_json
from semantic_genesis.utils.config import save_config, to_dict
from semantic_genesis.utils.dist import barrier, is_main, rank, world_size
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.progress import progress, say
from semantic_genesis.utils.provenance import run_info
from semantic_genesis.utils.seed import derive_rng

PARTS = "classes"
CONFIG_YAML = "discover-config.yaml"


class DiscoverWarning(UserWarning):
    """Something was adapted to the data (smaller K, fewer classes); also in discover.json."""


@dataclass
class DiscoverResult:
    """What ``discover`` produced (the files are in ``out_dir``)."""

    out_dir: Path
    n_classes: int
    n_patterns: int
    k_train: int
    k_val: int
    feature_dim: int = 0
    classes: list[DiscoveredClass] = field(default_factory=list)
    skipped_references: list[dict] = field(default_factory=list)
    skipped_neighbours: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def _warn(notes: list[str], message: str) -> None:
    notes.append(message)
    warnings.warn(message, DiscoverWarning, stacklevel=3)


def _device(name: str) -> str:
    import torch

    from semantic_genesis.utils.dist import local_rank

    if name == "auto":
        return f"cuda:{local_rank()}" if torch.cuda.is_available() else "cpu"
    return name


def _prepare_out(out_dir: Path, key: str, overwrite: bool) -> None:
    """Refuse (or, with ``overwrite``, clear) part files made with other settings or data."""
    parts = out_dir / PARTS
    stale = [p for p in sorted(parts.glob("ref-*.json"))
             if _read_part(p).get("key") != key] if parts.is_dir() else []
    if stale and not overwrite:
        raise SemgenError("holds classes discovered with other settings or another cohort; "
                          "use another --out or pass --overwrite", out_dir)
    if stale and is_main():
        shutil.rmtree(parts)
    barrier()


def _read_part(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


class _References:
    """Computes and reads the part file of each reference ``j`` (module docstring)."""

    def __init__(self, config: DiscoverConfig, cohort_dir: Path, out_dir: Path,
                 train: list[CohortRecord], val: list[CohortRecord], feats: Features,
                 k_train: int, k_val: int, key: str) -> None:
        self.config, self.cohort_dir, self.dir, self.key = config, cohort_dir, out_dir / PARTS, key
        self.train, self.val, self.k_train, self.k_val = train, val, k_train, k_val
        row = {pid: i for i, pid in enumerate(feats.ids)}
        self.train_x = feats.features[[row[r.id] for r in train]]
        self.val_x = feats.features[[row[r.id] for r in val]]
        self.indexes = (build_index(self.train_x, config.index),
                        build_index(self.val_x, config.index) if len(val) else None)
        self.order = derive_rng(config.seed, "references").permutation(len(train))
        self.rules = config.rules()

    def path(self, j: int) -> Path:
        return self.dir / f"ref-{j:05d}.json"

    def get(self, j: int) -> dict:
        part = _read_part(self.path(j))
        return part if part.get("key") == self.key else self.compute(j)

    def compute(self, j: int) -> dict:
        ref_row = int(self.order[j])
        ref = self.train[ref_row]
        nb = find_neighbours(ref_row, self.train_x, self.val_x, self.k_train, self.k_val,
                             indexes=self.indexes)
        modality = "mr" if ref.modality.lower() == "mr" else "ct"
        corners, scores, reason = coords.find_candidates(
            open_volume(self.cohort_dir, ref), derive_rng(self.config.seed, "reference", j),
            self.rules, modality)
        part = {"key": self.key, "unit": j, "patient_id": ref.id, "modality": modality,
                "candidates": corners.tolist(), "scores": scores.tolist(), "reason": reason,
                "train": [[self.train[i].id, float(d)] for i, d in zip(nb.train, nb.train_dist,
                                                                      strict=True)],
                "val": [[self.val[i].id, float(d)] for i, d in zip(nb.val, nb.val_dist,
                                                                  strict=True)]}
        write_json(self.path(j), part)
        return part


def _assemble(refs: _References, n_classes: int, min_distance: float, notes: list[str]
              ) -> tuple[list[DiscoveredClass], list[dict]]:
    """Compute parts in waves (each rank its share) and walk them into classes."""
    classes: list[DiscoveredClass] = []
    skipped: list[dict] = []
    j = 0
    while len(classes) < n_classes and j < len(refs.order):
        wave = list(range(j, min(j + n_classes - len(classes), len(refs.order))))
        todo = [u for u in wave[rank()::world_size()] if not refs.path(u).is_file()
                or _read_part(refs.path(u)).get("key") != refs.key]
        for u in progress(todo, desc="references"):
            refs.compute(u)
        barrier()
        for u in wave:
            part = refs.get(u)
            taken = [c.corner for c in classes]
            pick = None if part["reason"] else coords.first_far_enough(
                part["candidates"], taken, min_distance)
            if pick is None:
                why = part["reason"] or (f"all {len(part['candidates'])} corners that passed "
                                         f"the test lie within {min_distance} voxels of earlier "
                                         "classes")
                skipped.append({"unit": u, "patient_id": part["patient_id"], "reason": why})
                continue
            classes.append(DiscoveredClass(
                cls=len(classes), unit=u, patient_id=part["patient_id"],
                corner=tuple(int(v) for v in part["candidates"][pick]),
                score=float(part["scores"][pick]), train=tuple(p for p, _ in part["train"]),
                val=tuple(p for p, _ in part["val"])))
        j = wave[-1] + 1
    if skipped:
        _warn(notes, f"{len(skipped)} reference patient(s) had no valid coordinate and were "
                     "replaced (see skipped_references in discover.json)")
    return classes, skipped


def discover(cohort_dir: str | Path, out_dir: str | Path, config: DiscoverConfig | None = None,
             overwrite: bool = False) -> DiscoverResult:
    """Discover ``config.n_classes`` anatomical classes in a prepared cohort (method.md §2).

    Writes ``patterns.csv``, ``classes.csv``, ``discover.json``, ``features.npz``,
    ``autoencoder.pt`` (features ``ae``), ``discover-config.yaml`` and ``patterns.png`` to
    ``out_dir``. Re-running in the same folder resumes (finished references are kept).

    Raises:
        SemgenError: not a cohort, no training patients, settings that cannot work, the folder
            holds results of other settings (unless ``overwrite``), or no reference patient
            has a valid coordinate.
    """
    t0 = time.perf_counter()
    cohort_dir, out_dir = Path(cohort_dir).resolve(), Path(out_dir).resolve()
    config = config or DiscoverConfig()
    config.check()
    records = sorted(read_cohort(cohort_dir), key=lambda r: r.id)
    train = [r for r in records if r.split == "train"]
    val = [r for r in records if r.split == "val"]
    if not train:
        raise SemgenError("no training patients (split 'train')", cohort_dir / COHORT_CSV)
    device = _device(config.device)
    config = resolved(config, device.startswith("cuda"))
    fingerprint = cohort_fingerprint(records)
    key = result_key(config, fingerprint)
    notes: list[str] = []
    _prepare_out(out_dir, key, overwrite)
    if is_main():
        save_config(config, out_dir / CONFIG_YAML)
    timings: dict[str, float] = {}

    t = time.perf_counter()
    if is_main():
        cached_features(config, cohort_dir, out_dir, records, fingerprint, device)
    barrier()
    feats = cached_features(config, cohort_dir, out_dir, records, fingerprint, device)
    timings["features_s"] = time.perf_counter() - t

    k_train, k_val = min(config.instances, len(train)), min(config.val_instances, len(val))
    if k_train < config.instances:
        _warn(notes, f"only {len(train)} training patients: K = {k_train} instead of "
                     f"{config.instances} training instances per class")
    if k_val < config.val_instances:
        _warn(notes, f"only {len(val)} validation patients: {k_val} instead of "
                     f"{config.val_instances} validation instances per class")
    n_classes = min(config.n_classes, len(train))
    if n_classes < config.n_classes:
        _warn(notes, f"only {len(train)} training patients, each a reference once: at most "
                     f"{n_classes} of the {config.n_classes} classes")

    t = time.perf_counter()
    refs = _References(config, cohort_dir, out_dir, train, val, feats, k_train, k_val, key)
    classes, skipped_refs = _assemble(refs, n_classes, config.min_distance, notes)
    timings["references_s"] = time.perf_counter() - t
    if not classes:
        reasons = sorted({s["reason"].split(" (")[0] for s in skipped_refs})
        raise SemgenError(f"no reference patient has a valid coordinate ({'; '.join(reasons)});"
                          " try a smaller --patch or a larger --max-tissue", cohort_dir)
    if len(classes) < config.n_classes and n_classes == config.n_classes:
        _warn(notes, f"found {len(classes)} of {config.n_classes} classes: the other "
                     "reference patients had no valid coordinate")

    by_id = {r.id: r for r in records}
    rows, skipped_nb, clamped = instances(classes, by_id, tuple(config.patch),
                                          config.small_neighbours)
    if skipped_nb:
        _warn(notes, f"{len(skipped_nb)} neighbour crop(s) do not fit their volume and were "
                     "skipped (see skipped_neighbours in discover.json)")
    result = DiscoverResult(out_dir, len(classes), len(rows), k_train, k_val,
                            feats.features.shape[1], classes, skipped_refs, skipped_nb, notes,
                            timings)
    if is_main():
        _write_outputs(result, config, cohort_dir, by_id, rows, clamped, fingerprint, t0)
    barrier()
    say(f"discovered {len(classes)} classes, {len(rows)} patterns -> {out_dir}")
    return result


def _write_outputs(result: DiscoverResult, config: DiscoverConfig, cohort_dir: Path,
                   by_id: dict[str, CohortRecord], rows: list, clamped: list[dict],
                   fingerprint: str, t0: float) -> None:
    """patterns.csv, classes.csv, patterns.png and discover.json (written last)."""
    out = result.out_dir
    write_patterns(out, rows)
    count = {}
    for r in rows:
        count[(r.cls, r.split)] = count.get((r.cls, r.split), 0) + 1
    write_classes(out, [ClassRecord(
        cls=c.cls, patient_id=c.patient_id, x=c.corner[0], y=c.corner[1], z=c.corner[2],
        air_score=c.score, extra={"reference_order": str(c.unit),
                                  "modality": by_id[c.patient_id].modality,
                                  "n_train": str(count.get((c.cls, "train"), 0)),
                                  "n_val": str(count.get((c.cls, "val"), 0))})
        for c in result.classes])
    t = time.perf_counter()
    save_montage(out / "patterns.png", cohort_dir, by_id, rows, config.montage_classes,
                 config.montage_neighbours)
    result.timings["montage_s"] = time.perf_counter() - t
    result.timings["total_s"] = time.perf_counter() - t0
    write_json(out / DISCOVER_JSON, {
        "cohort": str(cohort_dir), "cohort_fingerprint": fingerprint,
        "n_classes": result.n_classes, "patch": list(config.patch),
        "n_classes_requested": config.n_classes, "n_patterns": result.n_patterns,
        "k_train": result.k_train, "k_val": result.k_val,
        "features": {"source": config.features, "file": FEATURES_NPZ,
                     "dim": result.feature_dim},
        "config": to_dict(config), "warnings": result.warnings,
        "skipped_references": result.skipped_references,
        "skipped_neighbours": result.skipped_neighbours, "clamped_neighbours": clamped,
        "timings": result.timings, "world_size": world_size(), "run_info": run_info()})
