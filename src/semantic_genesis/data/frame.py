"""The voxel grid of a phantom, seen in the anatomy's local millimetres, and soft painting.

Structures are painted with *occupancies* in [0, 1] instead of hard masks: a voxel half inside a
vessel gets half the vessel's density. That is the partial-volume effect of a real scanner, and it
keeps thin vessels visible at 1.5-2 mm voxels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semantic_genesis.data.anatomy import PhantomAnatomy

Axes = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Frame:
    """A grid (ITK geometry, identity direction) and the anatomy placed in it."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    anatomy: PhantomAnatomy

    @property
    def step(self) -> np.ndarray:
        """Voxel size in local millimetres, per axis."""
        return np.asarray(self.spacing) / np.asarray(self.anatomy.scale)

    @property
    def h(self) -> float:
        """Width (local mm) of a soft edge: about one voxel."""
        return float(np.mean(self.step))

    @property
    def local_origin(self) -> np.ndarray:
        """Local coordinates of voxel (0, 0, 0)."""
        return self.anatomy.to_local(np.asarray(self.origin)[None])[0]

    def local_axis(self, axis: int) -> np.ndarray:
        return (self.local_origin[axis] + np.arange(self.shape[axis]) * self.step[axis]).astype(
            np.float32
        )

    def box(self, lo: np.ndarray, hi: np.ndarray) -> tuple[tuple[slice, ...], Axes]:
        """Slices of the voxels whose local coordinates lie in [lo, hi], and their coordinates
        as broadcastable arrays of shape (X, 1, 1), (1, Y, 1), (1, 1, Z)."""
        slices, axes = [], []
        for ax in range(3):
            coords = self.local_axis(ax)
            i0 = int(np.searchsorted(coords, lo[ax], side="left"))
            i1 = int(np.searchsorted(coords, hi[ax], side="right"))
            slices.append(slice(i0, max(i0, i1)))
            shape = [1, 1, 1]
            shape[ax] = -1
            axes.append(coords[i0 : max(i0, i1)].reshape(shape))
        return tuple(slices), (axes[0], axes[1], axes[2])

    def around(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, Frame]:
        """A grid aligned with this one that covers local [lo, hi], even where that lies outside
        this grid; returns its first voxel's index in this grid and the grid itself."""
        first = np.floor((lo - self.local_origin) / self.step).astype(int)
        last = np.ceil((hi - self.local_origin) / self.step).astype(int)
        origin = np.asarray(self.origin) + first * np.asarray(self.spacing)
        shape = tuple(int(n) for n in last - first + 1)
        return first, Frame(shape, self.spacing, tuple(float(o) for o in origin), self.anatomy)

    def overlap(
        self, first: np.ndarray, shape: tuple[int, ...]
    ) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
        """Slices into this grid and into a grid of ``shape`` starting at index ``first``
        (as :meth:`around` returns) that select the voxels they share."""
        lo = np.maximum(first, 0)
        hi = np.maximum(np.minimum(first + np.asarray(shape), self.shape), lo)
        mine = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
        theirs = tuple(slice(int(a - f), int(b - f)) for a, b, f in zip(lo, hi, first, strict=True))
        return mine, theirs

    def full(self) -> tuple[tuple[slice, ...], Axes]:
        """The whole grid, as :meth:`box` returns it."""
        return self.box(np.full(3, -np.inf), np.full(3, np.inf))

    def world_to_index(self, world: np.ndarray) -> np.ndarray:
        """World mm (N, 3) -> continuous voxel index (N, 3) (identity direction)."""
        return (np.atleast_2d(world) - np.asarray(self.origin)) / np.asarray(self.spacing)

    def index_to_world(self, index: np.ndarray) -> np.ndarray:
        return np.asarray(self.origin) + np.atleast_2d(index) * np.asarray(self.spacing)


def soft(sd: np.ndarray, h: float) -> np.ndarray:
    """Occupancy from a signed distance (positive inside): a linear ramp one voxel wide."""
    return np.clip(0.5 + sd / h, 0.0, 1.0).astype(np.float32, copy=False)


def paint(hu: np.ndarray, occupancy: np.ndarray, value: float | np.ndarray) -> None:
    """Blend ``value`` into ``hu`` (in place) in proportion to ``occupancy``."""
    hu += occupancy * (np.asarray(value, dtype=np.float32) - hu)


def superellipse_radius(u: np.ndarray, v: np.ndarray, power: float) -> np.ndarray:
    """Normalised radius ``(|u|^p + |v|^p)^(1/p)``: 1 on the curve, < 1 inside."""
    return (np.abs(u) ** power + np.abs(v) ** power) ** (1.0 / power)
