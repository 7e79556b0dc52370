"""Frozen-encoder features for the probe protocol (method.md §7.3): cut once, encode once, cache.

A probe asks what a pre-trained encoder already knows, without training it: every candidate cube
of a classification task goes through the frozen encoder once per initialisation, and each
encoder level's map is global-average-pooled into one vector per cube. The pooled vectors of all
levels are stored side by side (``features``, with the channel count of each level in
``levels``, shallow to deep), so a probe may use all of them (the default) or the deepest level
(where the fine-tuned classification head sits) without encoding again.

Decisions (method.md §7.3):

- the encoder runs in **eval mode**: BatchNorm uses its running statistics, so a cube's feature
  does not depend on which other cubes share its batch (train-mode features would, and they would
  change with the batch size). A ``batch_always`` network (the reference's ContBatchNorm) always
  uses batch statistics; it is encoded in batches of the whole set's order, as fine-tuning does.
- a ``scratch`` encoder is a freshly initialised one, seeded (``derive_seed(seed, "scratch")``),
  so the same benchmark always compares against the same random encoder(s);
- the cache (``<out>/features/<task>__<init>.npz``, written atomically) is keyed by the
  checkpoint file (path, size, time), the data, the patch and the network settings; anything else
  re-encodes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semantic_genesis.utils.atomic import atomic_path
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.seed import derive_rng, derive_seed

#: what a probe reads from the pooled maps: the deepest level only, or every level concatenated
LEVELS = ("deepest", "all")


@dataclass
class Features:
    """Pooled encoder features of a set of cubes.

    Attributes:
        features: (N, sum(levels)) float32, the pooled maps of every level, shallow to deep.
        levels: channels of each level, shallow to deep (the last is the bottleneck).
        labels: (N,) int64 class of each cube.
        groups: (N,) patient (series) id of each cube, for per-patient splits.
    """

    features: np.ndarray
    levels: tuple[int, ...]
    labels: np.ndarray
    groups: np.ndarray
    #: segmentation: True for voxels drawn uniformly (the Dice is measured on these only)
    uniform: np.ndarray | None = None

    def select(self, levels: str) -> np.ndarray:
        """The columns of the ``deepest`` level or of ``all`` levels."""
        if levels not in LEVELS:
            raise SemgenError(f"probe levels {levels!r}: use one of {', '.join(LEVELS)}")
        if levels == "all":
            return self.features
        return self.features[:, self.features.shape[1] - self.levels[-1]:]


def build_encoder(
    init: str,
    patch: Sequence[int],
    width: int | None = None,
    norm: str | None = None,
    backbone: str | None = None,
    seed: int = 0,
) -> torch.nn.Module:
    """The classification network of ``init`` (its encoder is what is probed), in eval mode.

    ``scratch`` builds a random one from ``derive_seed(seed, "scratch")`` without touching the
    global torch generator; a checkpoint is loaded as fine-tuning loads it (every encoder
    weight must come from it, finetune/backbone.py)."""
    from semantic_genesis.finetune.backbone import build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "scratch"))
        model, _ = build_model("classify", 1, init, width, norm, backbone=backbone,
                               patches={"patch": tuple(patch)})
    return model.eval()


@torch.no_grad()
def pooled_features(
    model: torch.nn.Module, cubes: np.ndarray, batch_size: int = 16,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Global-average-pooled maps of every encoder level for each cube (model in eval mode).

    Args:
        model: an :class:`~semantic_genesis.models.backbone.Encoder` (has ``encode``).
        cubes: (N, X, Y, Z) inputs in [0, 1].

    Returns:
        (N, sum of channels) float32 features, shallow level first, and each level's channels.
    """
    from semantic_genesis.finetune.tasks.common import batches, to_tensor

    was_training = model.training
    model.eval()
    model.to(device)
    out, levels = [], ()
    try:
        for s in batches(len(cubes), batch_size):
            bottleneck, skips = model.encode(to_tensor(cubes[s], torch.device(device)))
            maps = [*skips, bottleneck]
            levels = tuple(int(m.shape[1]) for m in maps)
            out.append(torch.cat([m.float().flatten(2).mean(2) for m in maps], 1).cpu())
    finally:
        model.train(was_training)
    if not out:
        raise SemgenError("no cubes to encode")
    return torch.cat(out).numpy().astype(np.float32), levels


def file_signature(path: str | Path) -> str:
    """``scratch``, or a checkpoint's resolved path, size and modification time."""
    if str(path) == "scratch":
        return "scratch"
    p = Path(path)
    st = p.stat()
    return f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def signature(parts: dict[str, Any]) -> str:
    """A short hash of the settings that decide a feature file's content."""
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def save_features(path: Path, feats: Features, sig: str) -> Path:
    """Write ``feats`` to ``path`` (.npz) atomically, with the signature that made them."""
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, features=feats.features, levels=np.asarray(feats.levels, np.int64),
                 labels=feats.labels, groups=feats.groups.astype(str),
                 signature=np.asarray(sig),
                 **({} if feats.uniform is None else {"uniform": feats.uniform}))
    return path


def load_features(path: Path, sig: str) -> Features | None:
    """The features cached at ``path`` when made with signature ``sig``, else None."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["signature"]) != sig:
                return None
            return Features(z["features"], tuple(int(v) for v in z["levels"]), z["labels"],
                            z["groups"], z["uniform"] if "uniform" in z.files else None)
    except (OSError, ValueError, KeyError):
        return None


def cap_negatives(labels: np.ndarray, per_positive: float, seed: int) -> np.ndarray:
    """Indices kept when the negatives are capped at ``per_positive`` per positive (a seeded
    draw; ``per_positive`` <= 0 keeps all), as fine-tuning caps each split."""
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    cap = int(round(per_positive * len(pos)))
    if per_positive > 0 and len(neg) > cap:
        neg = np.sort(derive_rng(seed, "probe-negatives").choice(neg, cap, replace=False))
    return np.sort(np.concatenate([pos, neg]))


@torch.no_grad()
def voxel_features(
    model: torch.nn.Module, patch: np.ndarray, points: np.ndarray, device: torch.device | str = "cpu"
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Encoder features at chosen voxels of one (X, Y, Z) patch (model in eval mode).

    Each level's map is read at the voxel's position scaled to that level (nearest cell, i.e.
    nearest-neighbour up-sampling of every map to the input grid), and the levels are
    concatenated, shallow first: (len(points), sum of channels) float32. Indexing the sampled
    voxels avoids up-sampling whole maps (960 channels x a 64 x 64 x 32 patch is 0.5 GB)."""
    from semantic_genesis.finetune.tasks.common import to_tensor

    was_training = model.training
    model.eval()
    try:
        bottleneck, skips = model.encode(to_tensor(patch[None], torch.device(device)))
    finally:
        model.train(was_training)
    size = np.asarray(patch.shape)
    cols, levels = [], []
    for m in (*skips, bottleneck):
        grid = np.asarray(m.shape[2:])
        idx = np.minimum((points * grid) // size, grid - 1)
        cols.append(m[0][:, idx[:, 0], idx[:, 1], idx[:, 2]].float().T.cpu().numpy())
        levels.append(int(m.shape[1]))
    return np.concatenate(cols, 1).astype(np.float32), tuple(levels)
