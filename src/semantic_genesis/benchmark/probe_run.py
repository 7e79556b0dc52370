"""The ``probe`` protocol of ``semgen benchmark``: features once per (task, init), then probes.

For each task of the grid and each initialisation, the frozen encoder's features are extracted
once and cached (``<out>/features/<task>__<init>.npz``, :mod:`.features`); then every probe
seed (``probe_seeds``, 10 by default as the paper's runs, method.md §7.2) and label fraction is
one row per probe (:mod:`.probe`) with the protocol ``probe-logreg``, ``probe-knn`` (classify,
AUC) or ``probe-voxel`` (segment, Dice). Rows are recomputed on every run (seconds); only the
features are kept. With ``probe_scratch_encoders`` = n > 1, scratch is n seeded random encoders
and seed s uses encoder s mod n, so the spread of random initialisations enters scratch's spread.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from semantic_genesis.benchmark.features import (
    Features,
    build_encoder,
    cap_negatives,
    file_signature,
    load_features,
    pooled_features,
    save_features,
    signature,
    voxel_features,
)
from semantic_genesis.benchmark.probe import (
    ProbeSettings,
    classify_probe,
    distinct_seeds,
    segment_probe,
)
from semantic_genesis.finetune.config import FinetuneConfig
from semantic_genesis.finetune.metrics import flag
from semantic_genesis.utils.config import from_dict
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.progress import progress, say
from semantic_genesis.utils.seed import derive_rng

#: voxels drawn per segmentation patch (half uniform, half from the labelled voxels) and
#: patches per case (half centred on a labelled voxel)
VOXELS_PER_PATCH = 256
PATCHES_PER_CASE = 4


@dataclasses.dataclass
class ProbeTask:
    """One task of the grid as the probes see it."""

    name: str
    data: str
    cfg: FinetuneConfig  # its fine-tuning settings (patch, width, norm, backbone, cache, ...)
    notes: str = ""


def probe_settings(config: Any) -> ProbeSettings:
    """The probe fitting settings of a BenchmarkConfig."""
    return ProbeSettings(config.probe_levels, config.probe_c, config.probe_k,
                         config.probe_test_fraction)


def _cache(cfg: FinetuneConfig, out: Path) -> Any:
    from semantic_genesis.finetune.data import VolumeCache

    return VolumeCache(Path(cfg.cache_dir) if cfg.cache_dir else out / "cache", cfg.modality,
                       cfg.window)


def classify_inputs(task: ProbeTask, out: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cubes, labels and patient ids of every usable candidate (negatives capped per positive
    as fine-tuning caps them), cut at the task's patch."""
    from semantic_genesis.finetune.data import find_images, read_candidates
    from semantic_genesis.finetune.tasks.classify import cut_cubes

    cfg = task.cfg
    images = find_images(Path(task.data))
    cands = [c for c in read_candidates(Path(task.data) / cfg.candidates) if c.seriesuid in images]
    keep = cap_negatives(np.array([c.label for c in cands]), cfg.negatives_per_positive,
                         cfg.split_seed)
    cubes = cut_cubes([cands[i] for i in keep], images, _cache(cfg, out),
                      cfg.resolved_recipe().patch)
    groups = np.array([c.seriesuid for c in cubes.candidates])
    return cubes.cubes, cubes.labels, groups


def segment_inputs(task: ProbeTask, out: Path) -> list[tuple[str, np.ndarray, np.ndarray,
                                                             np.ndarray, np.ndarray]]:
    """Per case and patch: (case id, image patch, voxel points, their labels, uniform flags).
    Patches and voxels are seeded by the case id, the same for every initialisation."""
    from semantic_genesis.finetune.data import find_images, find_labels
    from semantic_genesis.finetune.tasks.segment import load_cases, sample_patch

    cfg = task.cfg
    images, labels = find_images(Path(task.data)), find_labels(Path(task.data))
    ids = sorted(set(images) & set(labels))
    patch = cfg.resolved_recipe().patch
    items = []
    for case in load_cases(ids, images, labels, _cache(cfg, out)):
        rng = derive_rng(cfg.split_seed, "probe-voxels", case.id)
        for p in range(PATCHES_PER_CASE):
            image, label = sample_patch(case, patch, rng, 1.0 if p % 2 == 0 else 0.0)
            half = VOXELS_PER_PATCH // 2
            uniform = np.stack([rng.integers(0, s, half) for s in patch], 1)
            fg = np.argwhere(label > 0)
            extra = fg[rng.integers(0, len(fg), half)] if len(fg) else uniform[:0]
            points = np.concatenate([uniform, extra])
            flags = np.r_[np.ones(half, bool), np.zeros(len(extra), bool)]
            items.append((case.id, image, points, label[tuple(points.T)].astype(np.int64), flags))
    return items


def _encode_classify(model: Any, inputs: Any, cfg: FinetuneConfig) -> Features:
    cubes, labels, groups = inputs
    feats, levels = pooled_features(model, cubes, cfg.resolved_recipe().batch_size)
    return Features(feats, levels, labels, groups)


def _encode_segment(model: Any, inputs: Any, cfg: FinetuneConfig) -> Features:
    rows, levels = [], ()
    for _, image, points, _, _ in inputs:
        f, levels = voxel_features(model, image, points)
        rows.append(f)
    return Features(np.concatenate(rows), levels, np.concatenate([i[3] for i in inputs]),
                    np.concatenate([[i[0]] * len(i[2]) for i in inputs]),
                    np.concatenate([i[4] for i in inputs]))


def check_probe_leakage(task: ProbeTask, init: str) -> None:
    """Refuse a checkpoint pre-trained on one of the task's cases (method.md §1.1): every
    patient is a test patient in some probe split, so any case seen is a test case seen (unless
    the task's ``allow_seen_test_cases``, as for fine-tuning, finetune/leakage.py)."""
    from semantic_genesis.finetune.leakage import find_leakage, seen_cases_of, target_split

    seen = seen_cases_of(init)
    if not seen:
        return
    cases = {case: "test" for case in target_split(task.data, task.cfg)}
    leak = find_leakage(init, cases, seen)
    if leak.count("test") and not task.cfg.allow_seen_test_cases:
        raise SemgenError(
            f"probe of task {task.name!r} refused: {leak.count('test')} of its {len(cases)} "
            f"case(s) were seen in pre-training (e.g. {leak.seen['test'][0]}); every case is "
            "tested in some probe split, so the score would measure memory, not transfer "
            "(method.md §1.1). Pass allow_seen_test_cases in the task's settings to run anyway",
            init)
    if leak.count("test"):
        say(f"warning: probe of {task.name}: {leak.count('test')} case(s) were seen in "
            "pre-training (allow_seen_test_cases): the probe does not measure transfer")


def task_features(task: ProbeTask, inits: dict[str, str], out: Path, scratch_encoders: int = 1
                  ) -> dict[str, list[Features]]:
    """Features per initialisation (a list: scratch may have several random encoders), read
    from the cache or extracted (the task's data is cut only when something is missing)."""
    cfg = task.cfg
    kind = cfg.task
    base = {"data": str(Path(task.data).resolve()), "task": kind, "version": 1,
            "settings": {k: getattr(cfg, k) for k in ("candidates", "negatives_per_positive",
                                                      "split_seed", "modality", "window", "width",
                                                      "norm", "backbone")},
            "patch": list(cfg.resolved_recipe().patch)}
    inputs: list[Any] = []
    encode: Callable[..., Features] = _encode_classify if kind == "classify" else _encode_segment
    out_feats: dict[str, list[Features]] = {}
    for name, init in inits.items():
        check_probe_leakage(task, init)
        n = scratch_encoders if init == "scratch" else 1
        out_feats[name] = []
        for r in range(n):
            sig = signature({**base, "init": file_signature(init), "encoder": r})
            path = out / "features" / f"{task.name}__{name}{f'__r{r}' if n > 1 else ''}.npz"
            feats = load_features(path, sig)
            if feats is None:
                if not inputs:
                    say(f"probe: cutting the inputs of {task.name} once for every encoder")
                    inputs.append(classify_inputs(task, out) if kind == "classify"
                                  else segment_inputs(task, out))
                model = build_encoder(init, base["patch"], cfg.width, cfg.norm, cfg.backbone,
                                      seed=r)
                feats = encode(model, inputs[0], cfg)
                save_features(path, feats, sig)
            out_feats[name].append(feats)
    return out_feats


def probe_rows(task: ProbeTask, feats: dict[str, list[Features]], seeds: list[int],
               fractions: list[float], settings: ProbeSettings) -> list[dict[str, Any]]:
    """One results row per (init, label fraction, seed, probe)."""
    kind = task.cfg.task
    fit = classify_probe if kind == "classify" else segment_probe
    metric = "auc" if kind == "classify" else "dice"
    rows = []
    first = next(iter(feats.values()))[0]
    distinct = distinct_seeds(first.groups, first.labels, seeds, settings.test_fraction)
    if len(distinct) < len(seeds):
        say(f"warning: probe of {task.name}: the {len(seeds)} seeds give only {len(distinct)} "
            f"distinct per-patient split(s) ({len(np.unique(first.groups))} patients); at 100 % "
            "of the labels each split is scored once, so its statistics rest on "
            f"{len(distinct)} pair(s), not {len(seeds)}")
    for name, encoders in feats.items():
        for frac in fractions:
            # below 100 % a seed also draws which labels are kept: a repeated split differs
            for seed in (distinct if frac >= 1.0 else seeds):
                scores = fit(encoders[seed % len(encoders)], seed, frac, settings)
                for probe, score in scores.items():
                    rows.append({
                        "task": task.name, "kind": kind, "protocol": f"probe-{probe}",
                        "init": name, "label_fraction": frac, "seed": seed, "metric": metric,
                        "score": score, metric: score, "notes": task.notes,
                    })
    return rows


def run_probes(config: Any, out: Path, resolved: list[tuple[Any, str, dict[str, Any]]],
               scratch_width: int | None, failed: dict[str, str] | None = None
               ) -> list[dict[str, Any]]:
    """Every probe row of the grid (``resolved``: the grid's (spec, data, settings) per task).
    A task whose probe fails with a user error (bad data, a refused checkpoint) does not stop
    the others: its reason goes to ``failed`` under ``<task>__probe``, as a failed fine-tuning
    cell's does."""
    rows: list[dict[str, Any]] = []
    for spec, data, settings in progress(resolved, desc="probe tasks"):
        try:
            rows += _task_rows(config, out, spec, data, settings, scratch_width)
        except SemgenError as exc:
            if failed is None:
                raise
            failed[f"{spec.name}__probe"] = str(exc)
            flag(f"benchmark: the probe of task {spec.name} FAILED: {exc}")
    return rows


def _task_rows(config: Any, out: Path, spec: Any, data: str, settings: dict[str, Any],
               scratch_width: int | None) -> list[dict[str, Any]]:
    """The probe rows of one task."""
    notes = str(settings.get("_notes", ""))
    settings = {k: v for k, v in settings.items() if not k.startswith("_")}
    width = settings.get("width") or scratch_width
    cfg = from_dict(FinetuneConfig, {**settings, "width": width},
                    source=f"task {spec.name}")
    task = ProbeTask(spec.name, data, cfg, notes)
    feats = task_features(task, config.inits, out, config.probe_scratch_encoders)
    return probe_rows(task, feats, list(config.probe_seeds), list(config.label_fractions),
                      probe_settings(config))

