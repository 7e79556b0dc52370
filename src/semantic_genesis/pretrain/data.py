"""What pre-training reads: a patterns folder or a prepared cohort, checked before any training.

A method with ``data = "patterns"`` trains on a patterns folder; one with ``data = "cohort"``
(Models Genesis) on random cubes of a prepared cohort (:mod:`.cohort_data`): give it the cohort
folder, or a patterns folder, whose ``discover.json`` names its cohort. A patterns method given
a cohort folder is refused (run ``semgen discover`` first). Either way :class:`PatternsInfo`
describes the data, so the rest of the engine does not care (cohort data: ``n_classes`` 0,
every label 0).

Source groups (``cohort.csv``'s ``group``; ``prepare.groups``): cohort data leaves out the
scans of ``exclude_groups`` (LUNA16 subsets 7-9 by default); patterns discovered on such scans
are refused, naming one.

Checks made before any training on patterns (issue 6, bad input):

- the patterns were discovered in *this* cohort: ``discover.json``'s ``cohort_fingerprint``
  must equal the fingerprint of the cohort folder it names (a re-prepared cohort silently
  shifts every crop otherwise);
- every class has at least one training instance (otherwise its logit is never trained and
  accuracy figures mislead);
- the patch fits the network (three poolings: every side a multiple of 8).
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from semantic_genesis.io.manifests import (
    COHORT_CSV,
    PATTERNS_CSV,
    CohortRecord,
    PatternRecord,
    cohort_fingerprint,
    read_cohort,
    read_discover_info,
    read_patterns,
)
from semantic_genesis.prepare.groups import (
    DEFAULT_EXCLUDED_GROUPS,
    pretraining_records,
    record_group,
)
from semantic_genesis.utils.errors import SemgenError

#: a cube side must be divisible by this (three 2x poolings, method.md §4.1).
PATCH_MULTIPLE = 8


@dataclass
class PatternsInfo:
    """What the engine needs to know about its data: a patterns folder and its cohort, or
    (``data = "cohort"``) the cohort alone.

    ``source`` is the folder ``pretrain`` was given; ``patterns_dir`` is None for a cohort
    given directly; ``cubes`` is the run's ``cubes.csv`` once drawn (cohort data); ``seen`` the
    ids of every patient whose cubes are trained or validated on (the card's ``seen_cases``);
    ``records`` the cohort records the run may use.
    """

    patterns_dir: Path | None
    cohort_dir: Path
    fingerprint: str
    n_classes: int
    patch: tuple[int, int, int]
    modality: str
    spacing: tuple[float, float, float] | None  # None when volumes differ in spacing
    train_counts: dict[int, int] = field(default_factory=dict)
    val_counts: dict[int, int] = field(default_factory=dict)
    data: str = "patterns"
    source: Path | None = None
    cubes: Path | None = None
    seen: tuple[str, ...] = ()
    records: list[CohortRecord] = field(default_factory=list, repr=False)

    @property
    def where(self) -> Path:
        """The folder to name in messages about the data."""
        return self.source or self.patterns_dir or self.cohort_dir

    def summary(self) -> dict[str, Any]:
        """Plain-type summary for run.json."""
        return {
            "data": self.data,
            "source": str(self.where),
            "patterns": None if self.patterns_dir is None else str(self.patterns_dir),
            "cohort": str(self.cohort_dir),
            "cohort_fingerprint": self.fingerprint,
            "n_classes": self.n_classes,
            "patch": list(self.patch),
            "modality": self.modality,
            "train_instances": sum(self.train_counts.values()),
            "val_instances": sum(self.val_counts.values()),
        }


def check_source(source: str | Path, data: str, patch: tuple[int, int, int],
                 exclude: Sequence[str] = DEFAULT_EXCLUDED_GROUPS) -> PatternsInfo:
    """The data a method with ``data`` (``patterns``/``cohort``) trains on, from ``source``
    (module docstring); ``patch`` is the cube size of cohort data."""
    source = Path(source)
    if (source / COHORT_CSV).is_file():
        if data != "cohort":
            raise SemgenError(
                "a prepared cohort, but this method trains on discovered patterns: run `semgen "
                "discover` on it and give its output folder (or choose a cohort method, e.g. "
                "--method models-genesis)",
                source,
            )
        return replace(check_cohort(source, patch, exclude), source=source)
    if data == "cohort":
        cohort_dir = Path(read_discover_info(source)["cohort"])
        return replace(check_cohort(cohort_dir, patch, exclude), source=source)
    return replace(check_patterns(source, exclude), source=source)


def check_cohort(cohort_dir: Path, patch: tuple[int, int, int],
                 exclude: Sequence[str] = DEFAULT_EXCLUDED_GROUPS) -> PatternsInfo:
    """A prepared cohort as cohort data: its records outside ``exclude``, checked for cubes."""
    records = read_cohort(cohort_dir)
    usable = pretraining_records(records, exclude)
    if not usable:
        raise SemgenError(f"every scan of the cohort is in an excluded group "
                          f"({', '.join(exclude)}); change --exclude-groups", cohort_dir)
    if any(s % PATCH_MULTIPLE for s in patch):
        raise SemgenError(f"patch {list(patch)} cannot go through the network: every side must "
                          f"be a multiple of {PATCH_MULTIPLE}")
    return PatternsInfo(patterns_dir=None, cohort_dir=cohort_dir,
                        fingerprint=cohort_fingerprint(records), n_classes=0,
                        patch=tuple(patch), **_modality_spacing(usable),  # type: ignore[arg-type]
                        data="cohort", records=usable)


def _modality_spacing(records: Sequence[CohortRecord]) -> dict[str, Any]:
    """The cohort's most common modality and its one spacing (None when they differ)."""
    modalities = collections.Counter(r.modality for r in records)
    spacings = {r.spacing for r in records}
    return {"modality": modalities.most_common(1)[0][0] if records else "ct",
            "spacing": next(iter(spacings)) if len(spacings) == 1 else None}


def _refuse_excluded(rows: list[PatternRecord], records: list[CohortRecord],
                     exclude: Sequence[str], path: Path) -> None:
    """Refuse patterns cut from scans of an excluded group, naming one."""
    allowed = {r.id for r in pretraining_records(records, exclude)}
    banned = sorted({p.patient_id for p in rows} - allowed)
    if banned:
        group = next(record_group(r) for r in records if r.id == banned[0])
        raise SemgenError(
            f"{len(banned)} patient(s) of these patterns are in an excluded source group, e.g. "
            f"{banned[0]} ({group}); pre-training must not see them (the target tasks' test "
            "scans): discover on a cohort without them, or change --exclude-groups",
            path,
        )


def check_patterns(patterns_dir: str | Path,
                   exclude: Sequence[str] = DEFAULT_EXCLUDED_GROUPS) -> PatternsInfo:
    """Read ``discover.json`` and ``patterns.csv`` and refuse anything training cannot use."""
    patterns_dir = Path(patterns_dir)
    info = read_discover_info(patterns_dir)
    cohort_dir = Path(info["cohort"])
    records = read_cohort(cohort_dir)
    actual = cohort_fingerprint(records)
    if actual != info["cohort_fingerprint"]:
        raise SemgenError(
            f"patterns were discovered in another cohort: discover.json has fingerprint "
            f"{info['cohort_fingerprint']} but {cohort_dir} now has {actual}; re-run "
            "`semgen discover` on this cohort",
            patterns_dir / "discover.json",
        )
    patch = tuple(int(s) for s in info["patch"])
    if len(patch) != 3 or any(s % PATCH_MULTIPLE for s in patch):
        raise SemgenError(
            f"patch {list(patch)} cannot go through the network: every side must "
            f"be a multiple of {PATCH_MULTIPLE}",
            patterns_dir / "discover.json",
        )
    n_classes = int(info["n_classes"])
    counts: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    rows = read_patterns(patterns_dir)
    _refuse_excluded(rows, records, exclude, patterns_dir / PATTERNS_CSV)
    for p in rows:
        counts[p.split][p.cls] += 1
    missing = [c for c in range(n_classes) if counts["train"][c] == 0]
    if missing:
        raise SemgenError(
            f"class {missing[0]} has no training instance "
            f"({len(missing)} class(es) without one: {missing[:10]}); every class "
            "needs training cubes",
            patterns_dir / PATTERNS_CSV,
        )
    return PatternsInfo(
        patterns_dir=patterns_dir,
        cohort_dir=cohort_dir,
        fingerprint=actual,
        n_classes=n_classes,
        patch=patch,  # type: ignore[arg-type]
        **_modality_spacing(records),
        train_counts=dict(counts["train"]),
        val_counts=dict(counts["val"]),
        seen=tuple(sorted({p.patient_id for p in rows})),
        records=records,
    )


def make_datasets(info: PatternsInfo, multires: bool, seed: int) -> tuple[Any, Any | None]:
    """Training (multi-resolution) and validation (base crops only, method.md §2.6) datasets;
    validation is None when the patterns have no validation rows. (Cohort data:
    :func:`.cohort_data.cohort_datasets`.)"""
    from semantic_genesis.pretrain.dataset import PatternDataset

    train = PatternDataset(info.patterns_dir, split="train", multires=multires, seed=seed)
    val = (
        PatternDataset(info.patterns_dir, split="val", multires=False, seed=seed)
        if info.val_counts
        else None
    )
    return train, val
