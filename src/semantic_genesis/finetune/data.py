"""Target-task data: folder layouts, LUNA16 candidates, per-patient splits, a volume cache.

Layouts read (``--data DIR``):

- LUNA16: ``DIR/subset*/<seriesuid>.mhd`` with ``DIR/candidates.csv``
  (``seriesuid,coordX,coordY,coordZ,class``, world millimetres);
- image/label folders: ``DIR/images/<id>.<ext>`` and, for segmentation, ``DIR/labels/<id>.<ext>``
  in any format ``read_volume`` reads (NIfTI, MHD, NRRD, npy, a DICOM folder). The phantoms
  (``semgen phantoms``) write this layout plus ``candidates.csv``, so they serve both tasks.

The split is per patient: ``split.csv`` (``id,split`` with train/val/test) in the data folder if
present; else the LUNA16 folds of Models Genesis (subsets 0-4 train, 5-6 val, 7-9 test,
method.md §7.2) when every split gets a patient; else a seeded random split.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semantic_genesis.io.formats import SUFFIXES as FORMAT_SUFFIXES
from semantic_genesis.io.formats import strip_suffix
from semantic_genesis.io.manifests import read_csv
from semantic_genesis.io.volume import Volume
from semantic_genesis.utils.atomic import save_npy_atomic, write_json
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.seed import derive_rng

SPLITS = ("train", "val", "test")
#: bump when a conversion gets stricter, so entries cached by an older release are redone
CACHE_VERSION = 2
_SUBSET = re.compile(r"subset(\d+)$")


def case_id(path: Path) -> str:
    """The case id of an image file (its name without the format suffix) or DICOM folder."""
    return strip_suffix(Path(path).name)


def _scan(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir() or p.name.lower().endswith(tuple(FORMAT_SUFFIXES)):
            found.setdefault(case_id(p), p)
    return found


def find_images(data_dir: Path) -> dict[str, Path]:
    """Case id -> image path, from ``images/`` and LUNA16 ``subset*/*.mhd`` folders."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise SemgenError("data folder not found", data_dir)
    images: dict[str, Path] = {}
    if (data_dir / "images").is_dir():
        images.update(_scan(data_dir / "images"))
    for sub in sorted(data_dir.glob("subset*")):
        if sub.is_dir() and _SUBSET.match(sub.name):
            images.update({case_id(p): p for p in sorted(sub.glob("*.mhd"))})
    if not images:
        raise SemgenError(
            "no images found: expected images/<id>.nii.gz (or another format) "
            "or LUNA16 subset*/<seriesuid>.mhd",
            data_dir,
        )
    return images


def find_labels(data_dir: Path) -> dict[str, Path]:
    """Case id -> label map path, from ``labels/``."""
    folder = Path(data_dir) / "labels"
    if not folder.is_dir():
        raise SemgenError("segmentation needs a labels/ folder next to images/", data_dir)
    return _scan(folder)


@dataclass(frozen=True)
class Candidate:
    """One LUNA16 candidate: a world position (mm) in a series and its class."""

    seriesuid: str
    world: tuple[float, float, float]
    label: int
    line: int = 0  # its line in candidates.csv (for messages)


def read_candidates(path: Path) -> list[Candidate]:
    """Read a LUNA16 ``candidates.csv`` (``seriesuid,coordX,coordY,coordZ,class``)."""
    rows = read_csv(path, ["seriesuid", "coordX", "coordY", "coordZ", "class"])
    out = []
    for line, row in enumerate(rows, start=2):
        try:
            world = (float(row["coordX"]), float(row["coordY"]), float(row["coordZ"]))
            label = int(float(row["class"]))
        except (TypeError, ValueError):
            raise SemgenError(f"line {line}: coordinates and class must be numbers", path) from None
        if not all(math.isfinite(v) for v in world) or label < 0:
            raise SemgenError(f"line {line}: non-finite coordinate or negative class", path)
        out.append(Candidate(row["seriesuid"], world, label, line))
    if not out:
        raise SemgenError("no candidates in the file", path)
    return out


def split_cases(
    ids: Sequence[str],
    seed: int,
    fractions: tuple[float, float] = (0.2, 0.2),
    images: dict[str, Path] | None = None,
    split_file: Path | None = None,
) -> dict[str, str]:
    """Assign every case to train, val or test (per patient, deterministic).

    Args:
        ids: the case ids.
        seed: the split seed (the random split only).
        fractions: (val, test) fractions of the random split; each gets at least one case.
        images: case -> image path, to recognise LUNA16 subset folders.
        split_file: an ``id,split`` csv that decides the split (cases it omits are dropped).
    """
    ids = sorted(ids)
    if split_file is not None and Path(split_file).is_file():
        table = {r["id"]: r["split"] for r in read_csv(split_file, ["id", "split"])}
        bad = {s for s in table.values() if s not in SPLITS}
        if bad:
            raise SemgenError(
                f"unknown split name(s) {sorted(bad)}; use train/val/test", split_file
            )
        split = {i: table[i] for i in ids if i in table}
    else:
        split = _luna16_folds(ids, images or {})
        if not split:
            split = _random_split(ids, seed, fractions)
    missing = [s for s in ("train", "test") if s not in split.values()]
    if missing:
        raise SemgenError(
            f"the split has no {' and no '.join(missing)} case "
            f"({len(split)} cases); add cases or a split.csv"
        )
    return split


def _luna16_folds(ids: Sequence[str], images: dict[str, Path]) -> dict[str, str]:
    fold = {}
    for i in ids:
        m = _SUBSET.match(images[i].parent.name) if i in images else None
        if not m:
            return {}
        n = int(m.group(1))
        fold[i] = "train" if n <= 4 else "val" if n <= 6 else "test"
    return fold if set(fold.values()) == set(SPLITS) else {}


def _random_split(ids: Sequence[str], seed: int, fractions: tuple[float, float]) -> dict[str, str]:
    n = len(ids)
    if n < 3:
        raise SemgenError(
            f"a train/val/test split needs at least 3 cases, found {n} "
            "(or give a split.csv in the data folder)"
        )
    n_val = max(1, round(n * fractions[0]))
    n_test = max(1, round(n * fractions[1]))
    if n - n_val - n_test < 1:
        n_val, n_test = 1, 1
    order = derive_rng(seed, "split").permutation(n)
    names = ["val"] * n_val + ["test"] * n_test + ["train"] * (n - n_val - n_test)
    return {ids[j]: names[k] for k, j in enumerate(order)}


def subsample(items: Sequence, fraction: float, seed: int, key: str = "labels") -> list:
    """A seeded subset of ``fraction`` of ``items`` (at least one), nested across fractions:
    for one seed, the 10 % subset lies inside the 50 % one."""
    if not 0 < fraction <= 1:
        raise SemgenError(f"label fraction must be in (0, 1], got {fraction}")
    items = list(items)
    n = max(1, round(fraction * len(items)))
    order = derive_rng(seed, key).permutation(len(items))
    return [items[j] for j in sorted(order[:n])]


def extract_cube(array: np.ndarray, center: Sequence[float], patch: Sequence[int]) -> np.ndarray:
    """The ``patch``-sized cube centred on a continuous voxel index, zero-padded outside.

    The cube spans ``[round(c) - p//2, round(c) - p//2 + p)`` on every axis.
    """
    lo = np.floor(np.asarray(center, dtype=float) + 0.5).astype(int) - np.asarray(patch) // 2
    return crop(array, lo, patch)


def crop(array: np.ndarray, corner: Sequence[int], patch: Sequence[int]) -> np.ndarray:
    """``array[corner : corner + patch]`` as a float32 copy, zero-padded where it sticks out."""
    out = np.zeros(tuple(patch), dtype=np.float32)
    src, dst = [], []
    for c, p, s in zip(corner, patch, array.shape, strict=True):
        a, b = max(int(c), 0), min(int(c) + int(p), s)
        if b <= a:
            return out
        src.append(slice(a, b))
        dst.append(slice(a - int(c), b - int(c)))
    out[tuple(dst)] = array[tuple(src)]
    return out


def check_same_grid(label: Volume, image: Volume, label_path: Path) -> None:
    """Refuse a label map whose grid (shape, spacing, origin, direction) is not its image's:
    its voxels would be scored against other places of the scan. Tolerances: 0.1 % of the
    spacing, 1 % of a voxel for the origin, 1e-4 for the direction cosines."""
    spacing = np.asarray(image.spacing, dtype=float)
    problems = []
    if tuple(label.shape) != tuple(image.shape):
        problems.append(f"shape {tuple(label.shape)} vs {tuple(image.shape)}")
    elif not np.allclose(label.spacing, spacing, rtol=1e-3, atol=0):
        problems.append(f"spacing {tuple(label.spacing)} vs {tuple(image.spacing)}")
    elif np.max(np.abs(np.subtract(label.origin, image.origin))) > 0.01 * spacing.min():
        problems.append(f"origin {tuple(label.origin)} vs {tuple(image.origin)}")
    elif not np.allclose(label.direction, image.direction, atol=1e-4):
        problems.append(f"direction {tuple(label.direction)} vs {tuple(image.direction)}")
    if problems:
        raise SemgenError(
            f"label map is not on the grid of its image {image.path}: {problems[0]}", label_path
        )


class VolumeCache:
    """Normalised images and label maps, converted once and memory-mapped afterwards.

    A benchmark runs many cells over the same scans; reading and normalising each scan once
    (float16 in [0, 1]; labels uint8) keeps every later run fast and its RAM flat. Entries are
    keyed by the file's path, size and modification time and by the normalisation settings.
    """

    def __init__(
        self,
        cache_dir: Path,
        modality: str = "auto",
        window: tuple[float, float] = (-1000.0, 1000.0),
    ) -> None:
        self.dir = Path(cache_dir)
        self.modality = modality
        self.window = tuple(window)

    def _key(self, path: Path, kind: str) -> str:
        st = path.stat() if path.is_file() else None
        sig = (
            f"{path.resolve()}|{st and st.st_size}|{st and st.st_mtime_ns}|{kind}|"
            f"{self.modality}|{self.window}|{CACHE_VERSION}"
        )
        return f"{case_id(path)}-{kind}-{hashlib.sha1(sig.encode()).hexdigest()[:12]}"

    def image(self, path: Path) -> Volume:
        """The image as a Volume whose array is a float16 [0, 1] memory map."""
        return self._get(Path(path), "image")

    def label(self, path: Path, like: Volume | None = None) -> Volume:
        """The label map as a Volume with a uint8 memory map; checked against ``like`` (its
        image), see :func:`check_same_grid`."""
        vol = self._get(Path(path), "label")
        if like is not None:
            check_same_grid(vol, like, Path(path))
        return vol

    def _get(self, path: Path, kind: str) -> Volume:
        key = self._key(path, kind)
        npy, meta = self.dir / f"{key}.npy", self.dir / f"{key}.json"
        if not (npy.is_file() and meta.is_file()):
            self._convert(path, kind, npy, meta)
        info = json.loads(meta.read_text())
        return Volume(
            np.load(npy, mmap_mode="r"),
            tuple(info["spacing"]),
            tuple(info["origin"]),
            tuple(info["direction"]),
            path,
            info.get("notes", []),
        )

    def _convert(self, path: Path, kind: str, npy: Path, meta: Path) -> None:
        from semantic_genesis.io import detect_modality, normalize_intensity, read_volume

        vol = read_volume(path)
        notes = list(vol.notes)
        if kind == "image":
            bad = int(np.size(vol.array) - np.count_nonzero(np.isfinite(vol.array)))
            if bad:
                raise SemgenError(f"the image holds {bad} NaN or infinite voxels", path)
            modality = self.modality
            if modality == "auto":
                modality, reason = detect_modality(vol.array)
                notes.append(f"modality {modality}: {reason}")
            array = normalize_intensity(vol.array, modality, window=self.window)
            array = np.asarray(array, dtype=np.float16)
        else:
            array = np.asarray(vol.array)
            if not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 255:
                raise SemgenError("label map values must be integers in 0..255", path)
            fractional = array[array != np.rint(array)]
            if fractional.size:
                raise SemgenError(
                    f"label map holds {fractional.size} non-integer values (e.g. "
                    f"{float(fractional.flat[0]):g}); labels must be whole numbers (a "
                    "probability map must be thresholded first)", path)
            array = array.astype(np.uint8)
        save_npy_atomic(npy, array)
        write_json(
            meta,
            {
                "source": str(path),
                "spacing": list(vol.spacing),
                "origin": list(vol.origin),
                "direction": list(vol.direction),
                "notes": notes,
            },
        )
