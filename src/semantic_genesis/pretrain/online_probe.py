"""The online probe: does the representation get better while the pretext loss falls?

With ``PretrainConfig.probe`` set (a built-in classification target such as ``phantom-ncc``, or
a data folder with ``images/`` and ``candidates.csv``), a small labelled set is cut once, at the
pre-training patch: at most :data:`MAX_CUBES` candidate cubes (every positive up to half of
them, negatives drawn to fill, seeded). After every ``probe_every``-th epoch the current encoder
encodes them in eval mode (running BatchNorm statistics; no gradient, no random draw, and the
network's training mode restored after, so the run trains exactly as without the probe), every
encoder level's map is global-average-pooled and concatenated (the deepest map alone hides what a
restoration-trained U-Net keeps in its skips: docs/investigation-probe.md), and a logistic
regression fitted on a fixed per-patient
split gives the test AUC: ``probe_auc`` in ``metrics.csv`` and a panel of ``curves.png``
(method.md §7.3). Only the main process probes.

Built-in phantom targets are generated small (:data:`PHANTOM_OPTIONS`, under
``<run>/probe-data/``, once) so the probe costs seconds per epoch on a CPU.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.progress import say
from semantic_genesis.utils.seed import derive_rng

#: most cubes the probe encodes each time
MAX_CUBES = 200
#: the probe's per-patient split: share of patients tested, and its seed
TEST_FRACTION = 0.3
SPLIT_SEED = 0
#: the phantoms a built-in phantom target generates for the probe (small and fast; another
#: seed than the demo's pre-training cohort, so the probe's patients are not pre-trained on)
PHANTOM_OPTIONS = {"n": 12, "seed": 900, "shape": [96, 96, 64], "spacing": [3.6, 3.6, 4.6],
                   "negatives": 10}
#: the folder of the run where a built-in target's data and the volume cache go
PROBE_DATA = "probe-data"


def check_probe(probe: str | None) -> None:
    """Refuse a ``--probe`` that names neither a built-in classification target nor a data
    folder with ``candidates.csv`` (before the run writes anything)."""
    from semantic_genesis.data.targets import TARGET_TASKS

    if probe is None:
        return
    if probe in TARGET_TASKS:
        if TARGET_TASKS[probe] != "classify":
            raise SemgenError(f"--probe {probe}: a {TARGET_TASKS[probe]} target; the online "
                              "probe needs a classification target (e.g. phantom-ncc)")
    elif not (Path(probe) / "candidates.csv").is_file():
        raise SemgenError("--probe: neither a built-in classification target "
                          f"({', '.join(k for k, v in TARGET_TASKS.items() if v == 'classify')}) "
                          "nor a data folder with candidates.csv", probe)


def resolve_probe_data(probe: str, out_dir: Path) -> tuple[Path, str]:
    """The probe's data folder and modality: a built-in classification target (prepared
    under ``<out_dir>/probe-data``) or a folder with ``images/`` and ``candidates.csv``."""
    from semantic_genesis.data.targets import TARGET_TASKS, prepare_target

    check_probe(probe)
    if probe in TARGET_TASKS:
        options = PHANTOM_OPTIONS if probe.startswith("phantom-") else {}
        target = prepare_target(probe, out_dir / PROBE_DATA, **options)
        return Path(target.data_dir), str(target.settings.get("modality", "auto"))
    return Path(probe), "auto"


def _pick(labels: np.ndarray, cap: int) -> np.ndarray:
    """Indices of at most ``cap`` cubes: positives up to half, negatives to fill (seeded)."""
    rng = derive_rng(SPLIT_SEED, "online-probe-cubes")
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    pos = rng.permutation(pos)[: cap // 2]
    neg = rng.permutation(neg)[: cap - len(pos)]
    return np.sort(np.concatenate([pos, neg]))


class OnlineProbe:
    """The labelled cubes and the fixed split; :meth:`score` probes an encoder."""

    def __init__(self, probe: str, patch: tuple[int, int, int], out_dir: Path,
                 every: int = 1, max_cubes: int = MAX_CUBES) -> None:
        from semantic_genesis.benchmark.probe import patient_split
        from semantic_genesis.finetune.data import VolumeCache, find_images, read_candidates
        from semantic_genesis.finetune.tasks.classify import cut_cubes

        data, modality = resolve_probe_data(probe, Path(out_dir))
        images = find_images(data)
        cands = [c for c in read_candidates(data / "candidates.csv") if c.seriesuid in images]
        keep = _pick(np.array([c.label for c in cands]), max_cubes)
        cache = VolumeCache(Path(out_dir) / PROBE_DATA / "cache", modality)
        cubes = cut_cubes([cands[i] for i in keep], images, cache, tuple(patch))
        if set(cubes.labels.tolist()) != {0, 1}:
            raise SemgenError("--probe: the probe's candidates need both classes", data)
        self.cubes, self.labels, self.every = cubes.cubes, cubes.labels, every
        groups = np.array([c.seriesuid for c in cubes.candidates])
        self.train, self.test = patient_split(groups, self.labels, SPLIT_SEED, TEST_FRACTION)
        say(f"online probe: {len(self.labels)} cubes ({int(self.labels.sum())} positive) of "
            f"{len(set(groups.tolist()))} patients from {data}, every {every} epoch(s)")

    def score(self, encoder: Any, device: Any = "cpu") -> float:
        """Test AUC of a logistic regression on the pooled maps of every level of
        ``encoder``."""
        from semantic_genesis.benchmark.features import pooled_features
        from semantic_genesis.benchmark.probe import logreg_scores
        from semantic_genesis.finetune.metrics import roc_auc

        x, _ = pooled_features(encoder, self.cubes, 16, device)
        prob = logreg_scores(x[self.train], self.labels[self.train], x[self.test])
        return roc_auc(prob, self.labels[self.test])

    def columns(self, epoch: int, encoder: Any, device: Any = "cpu") -> dict[str, float]:
        """``{"probe_auc": AUC}`` on the epochs it probes, NaN (an empty cell) between."""
        if epoch % self.every:
            return {"probe_auc": math.nan}
        return {"probe_auc": self.score(encoder, device)}


def make_online_probe(config: Any, patch: tuple[int, int, int], out_dir: Path,
                      main: bool = True) -> OnlineProbe | None:
    """The run's probe: None when ``config.probe`` is unset or on processes other than the
    main one."""
    if not getattr(config, "probe", None) or not main:
        return None
    return OnlineProbe(config.probe, patch, Path(out_dir), config.probe_every)
