"""What pre-training reads: a patterns folder, checked against the cohort it was discovered in.

Checks made before any training (issue 6, bad input):

- the patterns were discovered in *this* cohort: ``discover.json``'s ``cohort_fingerprint``
  must equal the fingerprint of the cohort folder it names (a re-prepared cohort silently
  shifts every crop otherwise);
- every class has at least one training instance (otherwise its logit is never trained and
  accuracy figures mislead);
- the patch fits the network (three poolings: every side a multiple of 8).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semantic_genesis.io.manifests import (
    PATTERNS_CSV,
    cohort_fingerprint,
    read_cohort,
    read_discover_info,
    read_patterns,
)
from semantic_genesis.utils.errors import SemgenError

#: a cube side must be divisible by this (three 2x poolings, method.md §4.1).
PATCH_MULTIPLE = 8


@dataclass
class PatternsInfo:
    """What the engine needs to know about a patterns folder and its cohort."""

    patterns_dir: Path
    cohort_dir: Path
    fingerprint: str
    n_classes: int
    patch: tuple[int, int, int]
    modality: str
    spacing: tuple[float, float, float] | None  # None when volumes differ in spacing
    train_counts: dict[int, int] = field(default_factory=dict)
    val_counts: dict[int, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Plain-type summary for run.json."""
        return {
            "patterns": str(self.patterns_dir),
            "cohort": str(self.cohort_dir),
            "cohort_fingerprint": self.fingerprint,
            "n_classes": self.n_classes,
            "patch": list(self.patch),
            "modality": self.modality,
            "train_instances": sum(self.train_counts.values()),
            "val_instances": sum(self.val_counts.values()),
        }


def check_patterns(patterns_dir: str | Path) -> PatternsInfo:
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
    for p in read_patterns(patterns_dir):
        counts[p.split][p.cls] += 1
    missing = [c for c in range(n_classes) if counts["train"][c] == 0]
    if missing:
        raise SemgenError(
            f"class {missing[0]} has no training instance "
            f"({len(missing)} class(es) without one: {missing[:10]}); every class "
            "needs training cubes",
            patterns_dir / PATTERNS_CSV,
        )
    modalities = collections.Counter(r.modality for r in records)
    spacings = {r.spacing for r in records}
    return PatternsInfo(
        patterns_dir=patterns_dir,
        cohort_dir=cohort_dir,
        fingerprint=actual,
        n_classes=n_classes,
        patch=patch,  # type: ignore[arg-type]
        modality=modalities.most_common(1)[0][0] if records else "ct",
        spacing=next(iter(spacings)) if len(spacings) == 1 else None,
        train_counts=dict(counts["train"]),
        val_counts=dict(counts["val"]),
    )


def make_datasets(info: PatternsInfo, multires: bool, seed: int) -> tuple[Any, Any | None]:
    """Training (multi-resolution) and validation (base crops only, method.md §2.6) datasets;
    validation is None when the patterns have no validation rows."""
    from semantic_genesis.pretrain.dataset import PatternDataset

    train = PatternDataset(info.patterns_dir, split="train", multires=multires, seed=seed)
    val = (
        PatternDataset(info.patterns_dir, split="val", multires=False, seed=seed)
        if info.val_counts
        else None
    )
    return train, val
