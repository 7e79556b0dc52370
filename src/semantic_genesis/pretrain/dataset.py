"""``PatternDataset``: training cubes cut on the fly from the cohort's memory-mapped volumes
(its engine, ``CubeDataset``, also cuts the cohort cubes of ``cohort_data.CohortCubes``).

The reference holds every training cube in RAM as float64 (about 26 GiB for 44 classes,
method.md §9 item 18). Here ``patterns.csv`` is kept as a handful of small numpy arrays (32
bytes per row) and each item is cropped when asked for, so RAM does not grow with the number
of patterns; volumes are opened memory-mapped, lazily, in the process that reads them (a
DataLoader worker), through a small LRU of open maps.

Items (design.md, method.md §2.5):

- validation, or ``multires=False``: one item per row, the base crop
  ``[x : x + size_x, y : y + size_y, z : z + size_z]``;
- training with ``multires=True``: three items per row, as the reference stores three cubes per
  instance: resolution 1 (the base crop) and two multi-resolution crops, each with in-plane side
  ``s`` uniform in [50, 79] and a jitter uniform in [-10, 9] per in-plane axis, depth fixed
  (the base z range), resized to the patch size with trilinear interpolation. These numbers are
  for a 64-voxel patch; other patch sizes scale them by ``patch / 64``. A crop that would leave
  the volume is shifted inside it (and shrunk if the volume is smaller than the crop);
  :meth:`PatternDataset.crop` reports ``shifted`` for such items.

Every volume is checked against the cohort contract the first time a process opens it (one
pass over its memory map, remembered): a float16/float32 array of the shape ``cohort.csv``
gives (``open_volume`` checks the shape), with every value finite and in [0, 1]. A volume replaced after ``discover`` (by raw HU,
say) is one error naming the file instead of a run that trains at loss 2.5e4.

Randomness (the multi-resolution draw, and the ``transform``'s generator) comes from
``(seed, epoch, index)`` only, so items are the same whatever the number of DataLoader workers,
and differ between epochs once :meth:`PatternDataset.set_epoch` is called (the epoch lives in
shared memory, so persistent workers see it too). Never calling ``set_epoch`` keeps the
multi-resolution crops fixed for the whole training, as the reference (which stored them once)
does; for validation leave the epoch alone so every pass sees the same items.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from semantic_genesis.io.manifests import (
    PATTERNS_CSV,
    cohort_fingerprint,
    open_volume,
    read_cohort,
    read_discover_info,
    read_patterns,
)
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.seed import derive_rng, derive_seed

REFERENCE_PATCH = 64  # the multi-resolution numbers below are for a 64-voxel in-plane patch
MULTIRES_SIDE = (50, 79)  # method.md §2.5, inclusive
MULTIRES_JITTER = (-10, 9)  # inclusive
SPLITS = {"train": "train", "val": "val", "validation": "val"}
#: dtypes `semgen prepare` writes volumes in
VOLUME_DTYPES = (np.dtype(np.float16), np.dtype(np.float32))


@dataclass(frozen=True)
class Crop:
    """Where an item comes from: ``volume[corner : corner + size]`` of ``patient_id``, resized
    to the patch size; ``resolution`` 0 is the base crop, 1 and 2 the multi-resolution ones."""

    patient_id: str
    corner: tuple[int, int, int]
    size: tuple[int, int, int]
    resolution: int
    shifted: bool


class CubeDataset(Dataset):
    """Cubes cut from a cohort's memory-mapped volumes at listed corners, with a class.

    The engine of :class:`PatternDataset` (rows of ``patterns.csv``) and of
    :class:`~semantic_genesis.pretrain.cohort_data.CohortCubes` (rows of a run's ``cubes.csv``,
    class 0): ``rows`` are objects with ``patient_id``, ``x``, ``y``, ``z``, ``size`` and ``cls``,
    checked against ``cohort`` (``manifest`` names their file in errors).
    """

    def __init__(
        self,
        cohort_dir: Path,
        cohort: list,
        rows: list,
        manifest: Path,
        patch: tuple[int, int, int],
        n_classes: int,
        split: str = "train",
        multires: bool = True,
        seed: int = 0,
        transform: Any = None,
        max_open: int = 32,
    ) -> None:
        self.split = SPLITS[split]
        self.seed = int(seed)
        self.transform = transform
        self.max_open = max_open
        self.patch = tuple(int(v) for v in patch)
        self.n_classes = int(n_classes)
        self.cohort_dir = Path(cohort_dir)
        self._records = cohort  # one per patient, not per cube
        self._patients = np.array([r.id for r in cohort])
        self._shapes = np.array([r.shape for r in cohort], dtype=np.int64)
        self._load_rows(cohort, rows, manifest)
        self.multires = bool(multires) and self.split == "train"
        self._per_row = 3 if self.multires else 1
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_pid = os.getpid()
        self._checked: set[int] = set()  # patients whose volume passed check_volume

    def _load_rows(self, cohort: list, rows: list, path: Path) -> None:
        """Keep ``rows`` as compact arrays, checked against the cohort."""
        index = {r.id: i for i, r in enumerate(cohort)}
        if not rows:
            raise SemgenError(f"no rows with split '{self.split}'", path)
        missing = sorted({r.patient_id for r in rows} - index.keys())
        if missing:
            raise SemgenError(f"patient(s) not in the cohort: {', '.join(missing[:5])}", path)
        self._cls = np.array([r.cls for r in rows], dtype=np.int32)
        self._patient = np.array([index[r.patient_id] for r in rows], dtype=np.int32)
        self._corner = np.array([(r.x, r.y, r.z) for r in rows], dtype=np.int32)
        self._size = np.array([r.size for r in rows], dtype=np.int32)
        end = self._corner + self._size
        bad = ((self._corner < 0) | (end > self._shapes[self._patient])).any(1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise SemgenError(
                f"{int(bad.sum())} crop(s) leave their volume, e.g. class {self._cls[i]} in "
                f"{self._patients[self._patient[i]]} at {tuple(self._corner[i])} size "
                f"{tuple(self._size[i])} (volume {tuple(self._shapes[self._patient[i]])})",
                path,
            )
        if (self._cls < 0).any() or (self._cls >= max(self.n_classes, 1)).any():
            raise SemgenError(f"class outside 0..{max(self.n_classes, 1) - 1}", path)

    @property
    def patient_ids(self) -> list[str]:
        """The ids of the patients this split's cubes come from (sorted)."""
        return sorted({str(self._patients[i]) for i in np.unique(self._patient)})

    @property
    def nbytes(self) -> int:
        """Bytes held by the per-row manifest arrays (about 32 per row)."""
        return sum(a.nbytes for a in (self._cls, self._patient, self._corner, self._size))

    @property
    def classes(self) -> np.ndarray:
        """The class of every item, in item order."""
        return np.repeat(self._cls, self._per_row)

    def __len__(self) -> int:
        return len(self._cls) * self._per_row

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose random draws items use (call before iterating the loader)."""
        self._epoch.fill_(int(epoch))

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def crop(self, index: int) -> Crop:
        """Where item ``index`` is cut from (for the current epoch)."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        row, res = divmod(index, self._per_row)
        patient = int(self._patient[row])
        corner = [int(v) for v in self._corner[row]]
        size = [int(v) for v in self._size[row]]
        shifted = False
        if res:  # plain Python ints: numpy on 3-element arrays costs more than the crop itself
            rng = derive_rng(self.seed, self.epoch, index)
            side = int(rng.integers(MULTIRES_SIDE[0], MULTIRES_SIDE[1] + 1))
            jitter = rng.integers(MULTIRES_JITTER[0], MULTIRES_JITTER[1] + 1, size=2).tolist()
            shape = [int(v) for v in self._shapes[patient]]
            want = list(corner)
            for axis in (0, 1):
                factor = self.patch[axis] / REFERENCE_PATCH
                size[axis] = min(round(side * factor), shape[axis])
                want[axis] = corner[axis] + round(jitter[axis] * factor)
            size[2] = min(size[2], shape[2])
            corner = [min(max(w, 0), s - n) for w, s, n in zip(want, shape, size, strict=True)]
            shifted = corner != want
        return Crop(
            str(self._patients[patient]),
            tuple(int(v) for v in corner),
            tuple(int(v) for v in size),
            res,
            shifted,
        )

    def _volume(self, patient: int) -> np.ndarray:
        if self._cache_pid != os.getpid():  # a forked worker: do not reuse the parent's maps
            self._cache, self._cache_pid = OrderedDict(), os.getpid()
        vol = self._cache.pop(patient, None)
        if vol is None:
            record = self._records[patient]
            vol = open_volume(self.cohort_dir, record)
            if patient not in self._checked:
                check_volume(vol, self.cohort_dir / record.file)
                self._checked.add(patient)
            while len(self._cache) >= self.max_open:
                self._cache.popitem(last=False)
        self._cache[patient] = vol
        return vol

    def cube(self, index: int) -> torch.Tensor:
        """Item ``index``'s cube, ``(1, X, Y, Z)`` float32, resized to the patch size."""
        c = self.crop(index)
        (x, y, z), (sx, sy, sz) = c.corner, c.size
        patient = int(self._patient[index // self._per_row])
        block = self._volume(patient)[x : x + sx, y : y + sy, z : z + sz]
        # copy the (float16) block out of the memory map, then convert in torch (4x faster
        # than numpy's half-to-float loop)
        cube = torch.from_numpy(np.ascontiguousarray(block)).float()[None]
        if tuple(cube.shape[1:]) != self.patch:
            cube = _resize(cube, self.patch)
        return cube

    def __getitem__(self, index: int):
        cube = self.cube(index)
        label = int(self._cls[index // self._per_row])
        if self.transform is None:
            return cube, label
        gen = torch.Generator().manual_seed(derive_seed(self.seed, "transform", self.epoch, index))
        out = self.transform(cube[None], gen)
        return out.input[0], out.target[0], label

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()  # memory maps are reopened in each process
        return state


class PatternDataset(CubeDataset):
    """Cubes of the discovered patterns, with their class.

    Args:
        patterns_dir: a ``semgen discover`` output folder (patterns.csv, discover.json).
        split: ``"train"`` or ``"val"``.
        multires: in training, add the two multi-resolution crops per instance (3 items per row).
        seed: seed of the per-item randomness.
        transform: optional per-sample perturbation, called as ``transform(cube[None], generator)``
            and returning a :class:`~semantic_genesis.transforms.Perturbed`; items then are
            ``(input, target, class)``. The engine normally perturbs whole batches on the device
            instead.
        max_open: volumes kept memory-mapped at once per process.

    Items: ``(cube float32 (1, X, Y, Z) in [0, 1], class int)``.
    """

    def __init__(
        self,
        patterns_dir: str | Path,
        split: str = "train",
        multires: bool = True,
        seed: int = 0,
        transform: Any = None,
        max_open: int = 32,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        self.patterns_dir = Path(patterns_dir)
        info = read_discover_info(self.patterns_dir)
        cohort_dir = Path(info["cohort"])
        cohort = read_cohort(cohort_dir)
        if cohort_fingerprint(cohort) != info["cohort_fingerprint"]:
            raise SemgenError(
                "the cohort changed since these patterns were discovered "
                "(fingerprint mismatch); run `semgen discover` again",
                self.patterns_dir / "discover.json",
            )
        rows = [r for r in read_patterns(self.patterns_dir) if r.split == SPLITS[split]]
        super().__init__(cohort_dir, cohort, rows, self.patterns_dir / PATTERNS_CSV,
                         tuple(int(v) for v in info["patch"]), int(info["n_classes"]), split,
                         multires, seed, transform, max_open)


def check_volume(vol: np.ndarray, path: Path) -> None:
    """Refuse a volume that breaks the cohort contract beyond what ``open_volume`` checks (a
    float array of the listed shape): dtype float16/float32, every value finite and in [0, 1]
    (one pass over the array)."""
    if vol.dtype not in VOLUME_DTYPES:
        raise SemgenError(
            f"volume has dtype {vol.dtype}, not float16/float32 as `semgen prepare` writes; "
            "was it replaced after `semgen discover`? Run `semgen prepare` again",
            path,
        )
    low, high = float(np.min(vol)), float(np.max(vol))  # NaN anywhere makes both NaN
    if not (low >= 0.0 and high <= 1.0):
        raise SemgenError(
            f"volume values must be finite and in [0, 1] (the cohort contract), found min "
            f"{low:.6g}, max {high:.6g}: was it replaced after `semgen discover` (raw HU?)? "
            "Run `semgen prepare` again",
            path,
        )


def _resize(cube: torch.Tensor, size: tuple[int, int, int]) -> torch.Tensor:
    """Resize a (1, X, Y, Z) cube to ``size`` (linear interpolation).

    Multi-resolution crops keep their depth (method.md §2.5), and then trilinear interpolation
    equals a bilinear in-plane resize with the slices as channels, which is about 10x cheaper.
    """
    if cube.shape[-1] == size[2]:
        # (1, X, Y, Z) contiguous viewed as (1, Z, X, Y) is exactly the channels-last layout,
        # which interpolate vectorises over the channels; the result permutes back contiguous.
        planes = cube.permute(0, 3, 1, 2)
        out = F.interpolate(planes, size=size[:2], mode="bilinear", align_corners=False)
        return out.permute(0, 2, 3, 1).contiguous()
    return F.interpolate(cube[None], size=size, mode="trilinear", align_corners=False)[0]
