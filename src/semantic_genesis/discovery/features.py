"""Patient features for the neighbour search (method.md §2.1-2.2), from one of three sources.

* ``ae`` (default): train the bottleneck auto-encoder (:mod:`.autoencoder`) on the cohort's
  volumes resized to ``ae_shape`` (128 x 128 x 64 as the reference with a GPU, 64 x 64 x 32 on
  a CPU by default) and pool its bottleneck;
* ``encoder``: pool the bottleneck of a pre-trained checkpoint (any model the
  ``semantic_genesis.models`` loader understands, e.g. a ``semgen pretrain`` run or the official
  Semantic Genesis / Models Genesis weights) on the same resized volumes;
* a file the user brings: ``.npz`` with ``ids`` and ``features``, ``.csv`` with an ``id`` column
  and one column per dimension, or ``.npy`` of shape (n, d) in ``cohort.csv`` order.

:func:`cached_features` picks the source, and reuses ``features.npz`` when it was made with the
same settings from the same cohort (so a resumed run does not train the auto-encoder again).

The reference resizes every volume again in every epoch (§2.1). Here each volume is resized
once, into a float16 memory map (2 MiB per patient at 128 x 128 x 64), so RAM stays flat in the
cohort size. Its disk blocks are reserved before the first write, so a full disk is a clear
error (ENOSPC), never a bus error, and the temporary file is removed.
Features are stored in ``features.npz`` with the patient ids and splits.
"""

from __future__ import annotations

import contextlib
import csv
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semantic_genesis.discovery.config import FEATURE_KINDS, DiscoverConfig, feature_key
from semantic_genesis.io.manifests import CohortRecord, check_finite, open_volume
from semantic_genesis.utils.atomic import atomic_path
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.outdir import disk_error
from semantic_genesis.utils.progress import progress, say

#: method.md §2.1: every volume is resized to this before the auto-encoder.
AE_SHAPE = (128, 128, 64)
FEATURES_NPZ = "features.npz"


@dataclass(frozen=True)
class Features:
    """One feature row per patient, aligned with ``ids`` and ``split``."""

    ids: list[str]
    features: np.ndarray  # (n, d) float32
    split: list[str]

    def rows(self, split: str) -> np.ndarray:
        """Row indices of the patients in ``split``."""
        return np.array([i for i, s in enumerate(self.split) if s == split], dtype=np.int64)


def save_features(path: str | Path, feats: Features, key: str = "") -> Path:
    """Write ``features.npz`` (ids, features, split, and the settings ``key`` it was made with)."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, ids=np.array(feats.ids), features=feats.features.astype(np.float32),
                 split=np.array(feats.split), key=np.array(key))
    return Path(path)


def load_features(path: str | Path) -> tuple[Features, str]:
    """Read a ``features.npz`` written by :func:`save_features`: ``(features, key)``."""
    with np.load(path, allow_pickle=False) as data:
        return (Features([str(i) for i in data["ids"]], data["features"].astype(np.float32),
                         [str(s) for s in data["split"]]), str(data["key"]))


def read_feature_file(path: str | Path, records: list[CohortRecord]) -> Features:
    """Features a user brings, aligned to the cohort (extra ids are ignored).

    Raises:
        SemgenError: unknown format, unreadable file, missing patients, wrong shape or
            non-finite values.
    """
    path = Path(path)
    ids = [r.id for r in records]
    if not path.is_file():
        raise SemgenError("features file not found", path)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                if "ids" not in data or "features" not in data:
                    raise SemgenError("a .npz features file needs arrays 'ids' and 'features'",
                                      path)
                table = dict(zip((str(i) for i in data["ids"]), data["features"], strict=True))
        elif path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
            if array.ndim != 2 or len(array) != len(ids):
                raise SemgenError(f"a .npy features file must be (n, d) with n = {len(ids)} "
                                  f"rows in cohort.csv order, got shape {array.shape}", path)
            table = dict(zip(ids, array, strict=True))
        elif path.suffix == ".csv":
            with open(path, newline="") as fh:
                reader = csv.reader(fh)
                header = next(reader, [])
                if not header or header[0] != "id":
                    raise SemgenError("a .csv features file needs 'id' as its first column",
                                      path)
                table = {row[0]: np.array(row[1:], dtype=np.float64) for row in reader if row}
        else:
            raise SemgenError("features file must be .npz, .npy or .csv", path)
    except (ValueError, OSError) as exc:
        raise SemgenError(f"cannot read features ({str(exc).splitlines()[0][:120]})",
                          path) from None
    missing = [i for i in ids if i not in table]
    if missing:
        raise SemgenError(f"no features for {len(missing)} cohort patient(s), e.g. "
                          f"{', '.join(missing[:5])}", path)
    try:
        array = np.stack([np.asarray(table[i], dtype=np.float32).ravel() for i in ids])
    except ValueError:
        raise SemgenError("feature rows have different lengths", path) from None
    if not np.isfinite(array).all():
        raise SemgenError("features contain NaN or infinite values", path)
    return Features(ids, array, [r.split for r in records])


def resize_volume(array: np.ndarray, shape: tuple[int, int, int] = AE_SHAPE) -> np.ndarray:
    """Resize a (x, y, z) volume to ``shape``: trilinear along axes that grow, area averaging
    (anti-aliased) along axes that shrink, like skimage's ``resize(anti_aliasing=True)`` that
    the reference uses, at a fraction of its cost."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.asarray(array, dtype=np.float32))[None, None]
    up = tuple(max(s, t) for s, t in zip(x.shape[2:], shape, strict=True))
    if up != tuple(x.shape[2:]):
        x = F.interpolate(x, size=up, mode="trilinear", align_corners=False)
    if up != tuple(shape):
        x = F.interpolate(x, size=tuple(shape), mode="area")
    return x[0, 0].numpy()


def resized_inputs(cohort_dir: str | Path, records: list[CohortRecord], path: str | Path,
                   shape: tuple[int, int, int] = AE_SHAPE) -> np.ndarray:
    """Every volume resized to ``shape``, once, in a float16 ``.npy`` memory map at ``path``
    (reused when it is already complete); returns it opened read-only, (n, x, y, z)."""
    path = Path(path)
    want = (len(records), *shape)
    if path.is_file():
        cached = np.load(path, mmap_mode="r")
        if cached.shape == want:
            return cached
    try:
        with atomic_path(path, suffix=".npy") as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=want)
            try:
                _reserve(tmp, out.nbytes)
                for i, rec in enumerate(progress(records, desc="resize for the auto-encoder")):
                    out[i] = resize_volume(open_volume(cohort_dir, rec), shape)
                    if not np.isfinite(out[i]).all():
                        check_finite(open_volume(cohort_dir, rec), cohort_dir, rec)
                        raise SemgenError(f"volume of patient {rec.id} does not fit float16 "
                                          "(values far outside [0, 1]); prepare it again",
                                          Path(cohort_dir) / rec.file)
                out.flush()
            finally:
                del out
    except OSError as exc:
        raise disk_error(exc, path) from None
    return np.load(path, mmap_mode="r")


def _reserve(path: Path, nbytes: int) -> None:
    """Give the last ``nbytes`` of the (sparse) memory-mapped file at ``path`` (its data, after
    the .npy header) their disk blocks now, so that a full disk is an ``OSError`` (ENOSPC)
    here rather than a bus error (SIGBUS) at the first write into a page with no block."""
    with open(path, "r+b") as fh:
        size = os.fstat(fh.fileno()).st_size
        os.posix_fallocate(fh.fileno(), size - nbytes, nbytes)


def pooled_features(encode, inputs: np.ndarray, batch: int = 2, device: str = "cpu",
                    desc: str = "features") -> np.ndarray:
    """Global-average-pooled bottlenecks: ``encode(x)`` must return (n, c, ...) for a batch
    ``x`` of (n, 1, X, Y, Z); returns (len(inputs), c) float32."""
    import torch

    from semantic_genesis.discovery.autoencoder import as_batch

    rows = []
    with torch.no_grad():
        for start in progress(range(0, len(inputs), batch), desc=desc):
            code = encode(as_batch(inputs[start:start + batch], device))
            rows.append(code.float().mean(dim=tuple(range(2, code.dim()))).cpu().numpy())
    return np.concatenate(rows).astype(np.float32)


def encoder_features(checkpoint: str | Path, inputs: np.ndarray, batch: int = 2,
                     device: str = "cpu") -> np.ndarray:
    """Pooled bottleneck of a pre-trained checkpoint's encoder (``model.encode``)."""
    from semantic_genesis.models import load_model

    model = load_model(checkpoint, strict=False).to(device).eval()
    if not hasattr(model, "encode"):
        raise SemgenError("this checkpoint's model has no encoder to pool features from",
                          checkpoint)
    return pooled_features(lambda x: model.encode(x)[0], inputs, batch, device,
                           desc="encoder features")


def cached_features(config: DiscoverConfig, cohort_dir: Path, out_dir: Path,
                    records: list[CohortRecord], fingerprint: str, device: str) -> Features:
    """``out_dir/features.npz`` when it was made with these settings from this cohort, else the
    features of ``config.features`` computed and saved there (and ``autoencoder.pt``)."""
    path, key = out_dir / FEATURES_NPZ, feature_key(config, fingerprint)
    cached, cached_key = _cached(path)
    if (cached is not None and cached_key == key and cached.ids == [r.id for r in records]
            and np.isfinite(cached.features).all()):
        return cached
    if config.features not in FEATURE_KINDS:
        feats = read_feature_file(config.features, records)
    else:
        shape = tuple(config.ae_shape)
        cache = out_dir / ".cache" / f"inputs-{'x'.join(map(str, shape))}.npy"
        inputs = resized_inputs(cohort_dir, records, cache, shape)
        if config.features == "ae":
            array = _train_autoencoder(config, inputs, records, out_dir, fingerprint, device)
            source = ("--features ae: the auto-encoder's features", out_dir / "autoencoder.pt")
        else:
            array = encoder_features(config.encoder_checkpoint, inputs, config.ae_batch, device)
            source = ("--features encoder: this checkpoint's features",
                      Path(config.encoder_checkpoint or ""))
        del inputs
        cache.unlink(missing_ok=True)  # only the file written above: the folder may hold more
        with contextlib.suppress(OSError):
            cache.parent.rmdir()
        if not np.isfinite(array).all():
            raise SemgenError(f"{source[0]} contain NaN or infinite values (training diverged "
                              "or the weights hold NaN); neighbours would be meaningless. Try "
                              "a lower --ae-lr or another checkpoint", source[1])
        feats = Features([r.id for r in records], array, [r.split for r in records])
    save_features(path, feats, key)
    return feats


def _cached(path: Path) -> tuple[Features | None, str]:
    """``features.npz`` of an earlier run, or ``(None, "")`` when absent or unreadable (it is
    then computed again and replaced: discover wrote it)."""
    if not path.is_file():
        return None, ""
    try:
        return load_features(path)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None, ""


def _train_autoencoder(config: DiscoverConfig, inputs: np.ndarray, records: list[CohortRecord],
                       out_dir: Path, fingerprint: str, device: str) -> np.ndarray:
    """Train the bottleneck auto-encoder, save ``autoencoder.pt``, return pooled features."""
    import torch

    from semantic_genesis.discovery.autoencoder import BottleneckAutoEncoder, train_autoencoder
    from semantic_genesis.models.card import ModelCard
    from semantic_genesis.models.checkpoint import save_checkpoint
    from semantic_genesis.utils.seed import derive_seed

    torch.manual_seed(derive_seed(config.seed, "autoencoder"))
    model = BottleneckAutoEncoder(width=config.ae_width)
    split = np.array([r.split for r in records])
    report = train_autoencoder(
        model, inputs, np.flatnonzero(split == "train"), np.flatnonzero(split == "val"),
        epochs=config.ae_epochs, patience=config.ae_patience, batch=config.ae_batch,
        lr=config.ae_lr, seed=config.seed, device=device)
    modalities = sorted({r.modality for r in records})
    card = ModelCard(architecture="autoencoder3d", width=config.ae_width, n_classes=0,
                     patch_size=tuple(config.ae_shape), modality="/".join(modalities),
                     pretext="autoencoder", semantic=False, data_fingerprint=fingerprint,
                     notes={"skip_connections": False, "depth": model.depth,
                            "feature_dim": model.bottleneck_channels})
    save_checkpoint({"state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                     "model_card": card.to_dict(),
                     "card": {"architecture": "BottleneckAutoEncoder", "width": model.width,
                              "depth": model.depth, "input_shape": list(config.ae_shape),
                              "feature_dim": model.bottleneck_channels,
                              "train_loss": report.train_loss, "val_loss": report.val_loss,
                              "best_epoch": report.best_epoch, "stopped": report.stopped,
                              "seed": config.seed}},
                    out_dir / "autoencoder.pt")
    say(f"auto-encoder: {report.stopped}; best epoch {report.best_epoch}")
    return pooled_features(model.encode, inputs, config.ae_batch, device)
