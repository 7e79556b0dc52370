"""Reference patients, one part file each, and their assembly into classes (method.md §2.3-2.4).

For reference ``j`` (the ``j``-th training patient of one seeded permutation) the part file
``classes/ref-<j>.json`` holds its nearest neighbours and the corners that passed the air test
(CT) or the foreground test (MR). A part never depends on the others, so a killed run keeps the
parts it wrote and ranks under ``torchrun`` share them (see :mod:`.pipeline`).

**Modalities are never mixed inside a class.** The neighbours of a reference patient come only
from patients of its own modality (cohort.csv's ``modality``: MR, or CT for everything else):
the FAISS indexes are built per modality. A modality with fewer patients than K gives its classes
fewer instances; :func:`shortfalls` lists them so the caller can warn and record the real K.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from semantic_genesis.discovery import coordinates as coords
from semantic_genesis.discovery.config import DiscoverConfig
from semantic_genesis.discovery.features import Features
from semantic_genesis.discovery.neighbours import build_index, find_neighbours
from semantic_genesis.discovery.patterns import DiscoveredClass
from semantic_genesis.io.manifests import CohortRecord, check_finite, open_volume
from semantic_genesis.utils.atomic import write_json
from semantic_genesis.utils.dist import barrier, rank, world_size
from semantic_genesis.utils.progress import progress
from semantic_genesis.utils.seed import derive_rng

PARTS = "classes"
#: the reason recorded for a reference whose corners all lie too close to earlier classes
TOO_CLOSE = "all corners that passed the test lie too close to earlier classes"


def modality_of(record: CohortRecord) -> str:
    """``mr`` for MR volumes, ``ct`` for the rest (the air test's modality)."""
    return "mr" if record.modality.lower() == "mr" else "ct"


def read_part(path: Path) -> dict:
    """A part file, or ``{}`` when it is missing or unreadable (it is then computed again)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class References:
    """Computes and reads the part file of each reference ``j`` (module docstring)."""

    def __init__(self, config: DiscoverConfig, cohort_dir: Path, out_dir: Path,
                 train: list[CohortRecord], val: list[CohortRecord], feats: Features,
                 k_train: int, k_val: int, key: str) -> None:
        self.config, self.cohort_dir, self.dir, self.key = config, cohort_dir, out_dir / PARTS, key
        self.train, self.val, self.k_train, self.k_val = train, val, k_train, k_val
        row = {pid: i for i, pid in enumerate(feats.ids)}
        self.train_x = feats.features[[row[r.id] for r in train]]
        self.val_x = feats.features[[row[r.id] for r in val]]
        self.groups = {}  # modality -> (train rows, val rows, train index, val index)
        for m in sorted({modality_of(r) for r in train}):
            t = np.array([i for i, r in enumerate(train) if modality_of(r) == m], np.int64)
            v = np.array([i for i, r in enumerate(val) if modality_of(r) == m], np.int64)
            self.groups[m] = (t, v, build_index(self.train_x[t], config.index),
                              build_index(self.val_x[v], config.index) if len(v) else None)
        self.order = derive_rng(config.seed, "references").permutation(len(train))
        self.rules = config.rules()

    def path(self, j: int) -> Path:
        return self.dir / f"ref-{j:05d}.json"

    def get(self, j: int) -> dict:
        part = read_part(self.path(j))
        return part if part.get("key") == self.key else self.compute(j)

    def compute(self, j: int) -> dict:
        ref_row = int(self.order[j])
        ref = self.train[ref_row]
        modality = modality_of(ref)
        t, v, t_index, v_index = self.groups[modality]
        nb = find_neighbours(int(np.flatnonzero(t == ref_row)[0]), self.train_x[t],
                             self.val_x[v], self.k_train, self.k_val, indexes=(t_index, v_index))
        volume = open_volume(self.cohort_dir, ref)
        check_finite(volume, self.cohort_dir, ref)
        corners, scores, reason = coords.find_candidates(
            volume, derive_rng(self.config.seed, "reference", j), self.rules, modality)
        part = {"key": self.key, "unit": j, "patient_id": ref.id, "modality": modality,
                "candidates": corners.tolist(), "scores": scores.tolist(), "reason": reason,
                "train": [[self.train[t[i]].id, float(d)]
                          for i, d in zip(nb.train, nb.train_dist, strict=True)],
                "val": [[self.val[v[i]].id, float(d)]
                        for i, d in zip(nb.val, nb.val_dist, strict=True)]}
        write_json(self.path(j), part)
        return part

    def assemble(self, n_classes: int) -> tuple[list[DiscoveredClass], list[dict]]:
        """Compute parts in waves (each rank its share) and walk them into classes: each
        reference gives the first of its corners at least ``min_distance`` from every earlier
        class; a reference with none is skipped (and returned with its reason)."""
        classes: list[DiscoveredClass] = []
        skipped: list[dict] = []
        j = 0
        while len(classes) < n_classes and j < len(self.order):
            wave = list(range(j, min(j + n_classes - len(classes), len(self.order))))
            todo = [u for u in wave[rank()::world_size()]
                    if read_part(self.path(u)).get("key") != self.key]
            for u in progress(todo, desc="references"):
                self.compute(u)
            barrier()
            for u in wave:
                part = self.get(u)
                pick = None if part["reason"] else coords.first_far_enough(
                    part["candidates"], [c.corner for c in classes], self.config.min_distance)
                if pick is None:
                    why = part["reason"] or (f"{TOO_CLOSE}: all {len(part['candidates'])} lie "
                                             f"within {self.config.min_distance:g} voxels")
                    skipped.append({"unit": u, "patient_id": part["patient_id"], "reason": why})
                    continue
                classes.append(DiscoveredClass(
                    cls=len(classes), unit=u, patient_id=part["patient_id"],
                    corner=tuple(int(v) for v in part["candidates"][pick]),
                    score=float(part["scores"][pick]), train=tuple(p for p, _ in part["train"]),
                    val=tuple(p for p, _ in part["val"])))
            j = wave[-1] + 1
        return classes, skipped


def reason_counts(skipped: list[dict]) -> dict[str, int]:
    """How many skipped references gave each kind of reason (the text before the first ':'
    or ' ('), e.g. ``{"no corner passed the air test in 200 trials": 2}``."""
    return dict(Counter(s["reason"].split(":")[0].split(" (")[0] for s in skipped))


def shortfalls(classes: list[DiscoveredClass], k_train: int, k_val: int,
               modality: dict[str, str]) -> list[dict]:
    """Classes with fewer neighbours than K (train) or than the validation count asked for:
    their reference's modality has fewer patients, or FAISS found fewer usable neighbours."""
    short = []
    for c in classes:
        if len(c.train) < k_train or len(c.val) < k_val:
            short.append({"class": c.cls, "patient_id": c.patient_id,
                          "modality": modality[c.patient_id], "train": len(c.train),
                          "val": len(c.val)})
    return short
