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
Neighbours come only from the reference patient's own modality (:mod:`.references`).

Output folder: rank 0 claims ``out_dir`` (:func:`semantic_genesis.utils.outdir.claim_output`)
before any rank writes: it must be new, empty or made by ``discover`` before, not contain the
cohort, and it is locked for the run. ``--overwrite`` removes only discover's own part files.

Leakage (method.md §1.1): the cases of ``exclude_groups`` (LUNA16 subsets 7-9 by default) are
left out before anything else, so no feature, class or pattern comes from them; discover.json
records the groups and how many cases were left out.

Nothing is adapted silently: a smaller K, fewer classes than asked (with per-reason counts),
skipped or clamped neighbours and mixed modalities are warnings (``DiscoverWarning``, printed
by the command) and recorded in ``discover.json``; NaN volumes or features are errors.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from semantic_genesis.discovery import coordinates as coords
from semantic_genesis.discovery.config import (
    FEATURE_KINDS,
    DiscoverConfig,
    resolved,
    result_key,
)
from semantic_genesis.discovery.features import FEATURES_NPZ, Features, cached_features
from semantic_genesis.discovery.patterns import DiscoveredClass, instances, save_montage
from semantic_genesis.discovery.references import (
    PARTS,
    References,
    modality_of,
    read_part,
    reason_counts,
    shortfalls,
)
from semantic_genesis.io.manifests import (
    COHORT_CSV,
    DISCOVER_JSON,
    PATTERNS_CSV,
    ClassRecord,
    CohortRecord,
    cohort_fingerprint,
    read_cohort,
    write_classes,
    write_patterns,
)
from semantic_genesis.prepare.groups import group_counts, pretraining_records
from semantic_genesis.utils.atomic import TMP_PREFIX, write_json
from semantic_genesis.utils.config import save_config, to_dict
from semantic_genesis.utils.dist import barrier, is_main, world_size
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.outdir import claim_output
from semantic_genesis.utils.progress import say
from semantic_genesis.utils.provenance import run_info

CONFIG_YAML = "discover-config.yaml"


class DiscoverWarning(UserWarning):
    """Something was adapted to the data (smaller K, fewer classes); also in discover.json."""


@dataclass
class DiscoverResult:
    """What ``discover`` produced (the files are in ``out_dir``). ``k_train`` is the real K:
    the fewest training instances any class got from the neighbour search."""

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
    fewer_classes: dict = field(default_factory=dict)
    neighbour_shortfalls: list[dict] = field(default_factory=list)
    automatic: list[str] = field(default_factory=list)
    #: what ``exclude_groups`` left out: excluded_groups, n_excluded, excluded_per_group
    excluded: dict = field(default_factory=dict)


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
    """Remove temporaries of killed runs, and refuse (or, with ``overwrite``, remove) part
    files made with other settings or data. Only files this verb writes are touched."""
    parts = out_dir / PARTS
    if is_main():
        for folder in (out_dir, parts, out_dir / ".cache"):
            for tmp in folder.glob(TMP_PREFIX + "*") if folder.is_dir() else ():
                tmp.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # only when empty
            (out_dir / ".cache").rmdir()
    # an unreadable part is simply computed again; one made with other settings is stale
    stale = [p for p in sorted(parts.glob("ref-*.json"))
             if read_part(p).get("key", key) != key] if parts.is_dir() else []
    if stale and not overwrite:
        raise SemgenError("holds classes discovered with other settings or another cohort; "
                          "use another --out or pass --overwrite", out_dir)
    if stale and is_main():
        for p in stale:
            p.unlink(missing_ok=True)
        say(f"--overwrite: removed {len(stale)} part file(s) made with other settings")
    barrier()


def _check_patch(train: list[CohortRecord], config: DiscoverConfig, cohort_dir: Path) -> None:
    """Refuse at once a patch that no training volume can hold (before any feature work)."""
    rules = config.rules()
    if not any((np.subtract(*coords.corner_bounds(r.shape, rules)[::-1]) >= 0).all()
               for r in train):
        largest = max(train, key=lambda r: r.shape[0] * r.shape[1] * r.shape[2])
        raise SemgenError(f"{coords.too_small(largest.shape, rules, modality_of(largest))} "
                          f"(the largest training volume, patient {largest.id})",
                          cohort_dir / COHORT_CSV)


def discover(cohort_dir: str | Path, out_dir: str | Path, config: DiscoverConfig | None = None,
             overwrite: bool = False) -> DiscoverResult:
    """Discover ``config.n_classes`` anatomical classes in a prepared cohort (method.md §2).

    Writes ``patterns.csv``, ``classes.csv``, ``discover.json``, ``features.npz``,
    ``autoencoder.pt`` (features ``ae``), ``discover-config.yaml`` and ``patterns.png`` to
    ``out_dir``, which must be new, empty or made by ``discover`` before (it is locked while
    the run writes; the cohort may not lie inside it). Re-running in the same folder resumes
    (finished references are kept). The neighbours of a reference patient come only from its
    own modality.

    Raises:
        SemgenError: not a cohort (or a malformed cohort.csv), no training patients, settings
            that cannot work, a patch no volume can hold, a volume with NaNs, the folder is not
            discover's or is in use, holds results of other settings (unless ``overwrite``),
            or no reference patient has a valid coordinate.
    """
    cohort_dir, out_dir = Path(cohort_dir).resolve(), Path(out_dir).resolve()
    config = config or DiscoverConfig()
    config.check()
    every = sorted(read_cohort(cohort_dir), key=lambda r: r.id)
    records = pretraining_records(every, config.exclude_groups)
    left_out = _left_out(every, records, config)
    train = [r for r in records if r.split == "train"]
    if not train:
        held = f" outside --exclude-groups {' '.join(config.exclude_groups)}" if left_out else ""
        raise SemgenError(f"no training patients (split 'train'){held}", cohort_dir / COHORT_CSV)
    _check_patch(train, config, cohort_dir)
    inputs = [cohort_dir] + [p for p in (config.features, config.encoder_checkpoint)
                             if p and Path(p).exists()]
    claim = claim_output(out_dir, "discover", inputs=inputs,
                         legacy=(DISCOVER_JSON, PATTERNS_CSV), settings=to_dict(config)
                         ) if is_main() else contextlib.nullcontext()
    with claim:
        return _discover(cohort_dir, out_dir, config, records, overwrite,
                         {"fingerprint": cohort_fingerprint(every), **left_out})


def _left_out(every: list[CohortRecord], kept: list[CohortRecord], config: DiscoverConfig
              ) -> dict:
    """What ``exclude_groups`` left out (for discover.json), said on the console (method.md
    §1.1: the target tasks' test scans never reach pre-training)."""
    kept_ids = {r.id for r in kept}
    counts = group_counts(r for r in every if r.id not in kept_ids)
    if counts:
        say(f"discover: left out {sum(counts.values())} of {len(every)} case(s) of the excluded "
            "groups (" + ", ".join(f"{g} {n}" for g, n in counts.items()) + "); "
            "--exclude-groups '' keeps them")
    return {"excluded_groups": list(config.exclude_groups), "n_excluded": sum(counts.values()),
            "excluded_per_group": counts}


def _discover(cohort_dir: Path, out_dir: Path, config: DiscoverConfig,
              records: list[CohortRecord], overwrite: bool, cohort: dict) -> DiscoverResult:
    """Discovery on ``records`` (the cases outside the excluded groups); ``cohort`` holds the
    whole cohort's fingerprint and what was left out, for discover.json."""
    t0 = time.perf_counter()
    train = [r for r in records if r.split == "train"]
    val = [r for r in records if r.split == "val"]
    device = _device(config.device)
    config, automatic = resolved(config, device.startswith("cuda"))
    automatic = automatic if config.features in FEATURE_KINDS else []  # else unused
    for line in automatic:
        say(line)
    fingerprint = cohort_fingerprint(records)
    key = result_key(config, fingerprint)
    notes: list[str] = []
    _prepare_out(out_dir, key, overwrite)
    if is_main():
        save_config(config, out_dir / CONFIG_YAML)
    timings: dict[str, float] = {}

    feats = _shared_features(config, cohort_dir, out_dir, records, fingerprint, device, timings)

    k_train, k_val = _k_limits(config, len(train), len(val), notes)
    n_classes = min(config.n_classes, len(train))

    t = time.perf_counter()
    refs = References(config, cohort_dir, out_dir, train, val, feats, k_train, k_val, key)
    if len(refs.groups) > 1:
        _warn(notes, f"the cohort mixes modalities ({', '.join(refs.groups)}): the neighbours "
                     "of each reference come only from its own modality")
    classes, skipped_refs = refs.assemble(n_classes)
    timings["references_s"] = time.perf_counter() - t
    fewer = _fewer_classes(config, len(train), classes, skipped_refs, notes)
    if not classes:
        _refuse_no_classes(cohort_dir, fewer, skipped_refs)

    by_id = {r.id: r for r in records}
    short = shortfalls(classes, k_train, k_val, {r.id: modality_of(r) for r in records})
    if short:
        k_train, k_val = min(len(c.train) for c in classes), min(len(c.val) for c in classes)
        _warn(notes, f"{len(short)} class(es) have fewer neighbours than asked (too few "
                     f"patients of their modality): K = {k_train} train, {k_val} val for some "
                     "(see neighbour_shortfalls in discover.json)")
    rows, skipped_nb, clamped = instances(classes, by_id, tuple(config.patch),
                                          config.small_neighbours)
    if skipped_nb:
        _warn(notes, f"{len(skipped_nb)} neighbour crop(s) do not fit their volume and were "
                     "skipped (see skipped_neighbours in discover.json; --small-neighbours "
                     "clamp moves such crops inside instead)")
    result = DiscoverResult(out_dir, len(classes), len(rows), k_train, k_val,
                            feats.features.shape[1], classes, skipped_refs, skipped_nb, notes,
                            timings, fewer, short, automatic,
                            {k: v for k, v in cohort.items() if k != "fingerprint"})
    if is_main():
        _write_outputs(result, config, cohort_dir, by_id, rows, clamped, cohort, t0)
    barrier()
    say(f"discovered {len(classes)} classes, {len(rows)} patterns -> {out_dir}")
    return result


def _shared_features(config: DiscoverConfig, cohort_dir: Path, out_dir: Path,
                     records: list[CohortRecord], fingerprint: str, device: str,
                     timings: dict[str, float]) -> Features:
    """Features of every patient: the main rank computes (or reuses) the cache, then all read it."""
    t = time.perf_counter()
    if is_main():
        cached_features(config, cohort_dir, out_dir, records, fingerprint, device)
    barrier()
    feats = cached_features(config, cohort_dir, out_dir, records, fingerprint, device)
    timings["features_s"] = time.perf_counter() - t
    return feats


def _refuse_no_classes(cohort_dir: Path, fewer: dict, skipped_refs: list[dict]) -> None:
    """Raise the one-line error for a cohort where no reference patient gave a class."""
    reasons = "; ".join(f"{n} x {why}" for why, n in fewer["reasons"].items())
    detail = f" (e.g. {skipped_refs[0]['reason']})" if skipped_refs else ""
    raise SemgenError(f"no reference patient has a valid coordinate: {reasons}{detail}; "
                      "try a smaller --patch or a larger --max-tissue", cohort_dir)


def _k_limits(config: DiscoverConfig, n_train: int, n_val: int, notes: list[str]
              ) -> tuple[int, int]:
    """K (train) and the validation count the cohort allows, warned when below the asked."""
    k_train, k_val = min(config.instances, n_train), min(config.val_instances, n_val)
    if k_train < config.instances:
        _warn(notes, f"only {n_train} training patients: K = {k_train} instead of "
                     f"{config.instances} training instances per class")
    if k_val < config.val_instances:
        _warn(notes, f"only {n_val} validation patients: {k_val} instead of "
                     f"{config.val_instances} validation instances per class")
    return k_train, k_val


def _fewer_classes(config: DiscoverConfig, n_train: int, classes: list[DiscoveredClass],
                   skipped: list[dict], notes: list[str]) -> dict:
    """Why fewer classes than asked were found, as per-reason counts (warned and returned)."""
    reasons = reason_counts(skipped)
    if n_train < config.n_classes:
        reasons[f"only {n_train} training patients, each a reference once"] = (
            config.n_classes - n_train)
    if len(classes) >= config.n_classes:
        return {}
    why = "; ".join(f"{n} x {why}" for why, n in reasons.items())
    if any("air test" in r for r in reasons):
        why += (" (the air test wants air or lung in the cube, as in chest CT: other anatomy, "
                "e.g. a head, rarely passes it)")
    if classes:
        _warn(notes, f"found {len(classes)} of {config.n_classes} classes: {why} (see "
                     "fewer_classes and skipped_references in discover.json)")
    return {"requested": config.n_classes, "found": len(classes), "reasons": reasons}


def _write_outputs(result: DiscoverResult, config: DiscoverConfig, cohort_dir: Path,
                   by_id: dict[str, CohortRecord], rows: list, clamped: list[dict],
                   cohort: dict, t0: float) -> None:
    """patterns.csv, classes.csv, patterns.png and discover.json (written last; its
    ``cohort_fingerprint`` is the whole cohort's, which pre-training checks)."""
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
        "cohort": str(cohort_dir), "cohort_fingerprint": cohort["fingerprint"],
        "excluded_groups": cohort["excluded_groups"], "n_excluded": cohort["n_excluded"],
        "excluded_per_group": cohort["excluded_per_group"],
        "n_classes": result.n_classes, "patch": list(config.patch),
        "n_classes_requested": config.n_classes, "n_patterns": result.n_patterns,
        "k_train": result.k_train, "k_val": result.k_val,
        "k_train_requested": config.instances, "k_val_requested": config.val_instances,
        "features": {"source": config.features, "file": FEATURES_NPZ,
                     "dim": result.feature_dim},
        "config": to_dict(config), "automatic": result.automatic,
        "neighbours": "from the reference patient's own modality only",
        "warnings": result.warnings, "fewer_classes": result.fewer_classes,
        "neighbour_shortfalls": result.neighbour_shortfalls,
        "skipped_references": result.skipped_references,
        "skipped_neighbours": result.skipped_neighbours, "clamped_neighbours": clamped,
        "timings": result.timings, "world_size": world_size(), "run_info": run_info()})
