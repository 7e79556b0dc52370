"""Tubes (vessels, aorta, airways, ribs' cousins): polylines with a radius, drawn soft.

A tube is a set of straight segments ``a -> b`` whose radius runs linearly from ``ra`` to ``rb``.
Drawing is vectorised over all segments at once: points are sampled along every segment, a
stencil of voxel offsets is placed on each, and each voxel gets the occupancy of its distance to
the segment, ``clip(0.5 + (r - d) / h, 0, 1)``; overlapping tubes keep the maximum. The cost
grows with the tubes' length, not with the volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semantic_genesis.data.frame import Frame

_CHUNK = 1 << 21  # (sample, offset) pairs evaluated at once


@dataclass(frozen=True)
class Segments:
    """Straight tube pieces in local mm: ``a``, ``b`` (S, 3), radii ``ra``, ``rb`` (S,)."""

    a: np.ndarray
    b: np.ndarray
    ra: np.ndarray
    rb: np.ndarray

    def __len__(self) -> int:
        return len(self.a)

    @classmethod
    def polyline(cls, points: np.ndarray, radii: np.ndarray) -> Segments:
        """Consecutive points joined, radius interpolated between them."""
        p, r = np.asarray(points, float), np.asarray(radii, float)
        return cls(p[:-1], p[1:], r[:-1], r[1:])

    @classmethod
    def concat(cls, parts: list[Segments]) -> Segments:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), np.zeros(0))
        return cls(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in ("a", "b", "ra", "rb"))
        )

    def subset(self, keep: np.ndarray) -> Segments:
        return Segments(self.a[keep], self.b[keep], self.ra[keep], self.rb[keep])


def segment_sd(points: np.ndarray, seg: Segments, index: np.ndarray | None = None) -> np.ndarray:
    """Signed distance (positive inside) from points to tubes.

    With ``index`` (one segment per point) the distance is to that segment only, shape (N,);
    without, it is the largest over all segments, shape (N,).
    """
    points = np.asarray(points, dtype=np.float32)
    if index is not None:
        return _sd_pairs(points, seg.a[index], seg.b[index], seg.ra[index], seg.rb[index])
    if not len(seg):
        return np.full(len(points), -np.inf, dtype=np.float32)
    best = np.full(len(points), -np.inf, dtype=np.float32)
    for j in range(len(seg)):  # few segments (aorta, airways): a loop over them is cheap
        best = np.maximum(best, _sd_pairs(points, seg.a[j], seg.b[j], seg.ra[j], seg.rb[j]))
    return best


def _sd_pairs(
    p: np.ndarray, a: np.ndarray, b: np.ndarray, ra: np.ndarray, rb: np.ndarray
) -> np.ndarray:
    a = np.asarray(a, np.float32)
    ab = np.asarray(b, np.float32) - a
    denom = np.maximum(np.sum(ab * ab, axis=-1), 1e-12)
    t = np.clip(np.sum((p - a) * ab, axis=-1) / denom, 0.0, 1.0)
    d = np.linalg.norm(p - a - t[..., None] * ab, axis=-1)
    return (np.asarray(ra, np.float32) + t * (np.asarray(rb, np.float32) - ra)) - d


def render_tubes(frame: Frame, seg: Segments) -> tuple[tuple[slice, ...], np.ndarray]:
    """Occupancy (float32) of the union of the tubes ``seg`` (local mm), over their bounding
    box within the frame: returns the box's slices into the frame and the occupancy inside it.

    Tubes thinner than a voxel are deposited as their volume (partial volume) along the
    centre line; thicker ones get the exact distance-based occupancy. The work is done on a
    grid around the tubes (which may extend past the frame), so no index needs a bounds check.
    """
    if not len(seg):
        return (slice(0, 0),) * 3, np.zeros((0, 0, 0), dtype=np.float32)
    step = frame.step
    rmax = np.maximum(seg.ra, seg.rb)
    margin = 1.5 * rmax.max() + frame.h + 2 * float(np.linalg.norm(step))  # > any stencil
    first, grid = frame.around(
        np.minimum(seg.a, seg.b).min(0) - margin, np.maximum(seg.a, seg.b).max(0) + margin
    )
    out = np.zeros(grid.shape, dtype=np.float32)
    thin = rmax < 0.75 * step.min()
    if thin.any():
        out += _deposit(grid, seg.subset(thin))
    if not thin.all():
        _render_thick(grid, seg.subset(~thin), out.reshape(-1))
    mine, theirs = frame.overlap(first, grid.shape)
    return mine, np.minimum(out[theirs], 1.0)


def _render_thick(frame: Frame, seg: Segments, flat: np.ndarray) -> None:
    """Exact occupancy of tubes at least a voxel thick, by stencils around centre-line samples,
    max-blended into ``flat`` (the frame's voxels); samples are grouped by stencil size."""
    step, h = frame.step, frame.h
    rmax = np.maximum(seg.ra, seg.rb)
    # Sample spacing: about a voxel for thin tubes, most of the radius for thick ones.
    ds = np.maximum(step.min(), 0.75 * np.minimum(seg.ra, seg.rb))
    # farthest voxel centre a sample must reach: occupancy > 0 needs d < r + h / 2
    reach = rmax + h / 2 + ds / 2 + 0.5 * float(np.linalg.norm(step))
    bins = np.ceil(reach / step.min()).astype(int)
    for radius in np.unique(bins):
        sel = np.flatnonzero(bins == radius)
        _render_group(frame, seg.subset(sel), ds[sel], float(radius) * step.min(), flat)


def _samples(seg: Segments, ds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points every ``ds`` (per segment) along each segment: (points, segment ids, t)."""
    length = np.linalg.norm(seg.b - seg.a, axis=1)
    n = np.maximum(2, np.ceil(length / ds).astype(int) + 1)
    seg_id = np.repeat(np.arange(len(seg)), n)
    t = (np.arange(len(seg_id)) - np.repeat(np.cumsum(n) - n, n)) / np.repeat(n - 1, n)
    return seg.a[seg_id] + t[:, None] * (seg.b - seg.a)[seg_id], seg_id, t


def _deposit(frame: Frame, seg: Segments) -> np.ndarray:
    """Partial volume of sub-voxel tubes: each sample along the centre line carries the tube
    volume ``pi r^2 ds`` and shares it among its 8 neighbouring voxels (trilinear weights)."""
    step = frame.step
    ds = np.full(len(seg), 0.5 * step.min())
    points, seg_id, t = _samples(seg, ds)
    length = np.linalg.norm(seg.b - seg.a, axis=1)[seg_id]
    n_per = np.bincount(seg_id)[seg_id]
    r = seg.ra[seg_id] + t * (seg.rb - seg.ra)[seg_id]
    mass = np.pi * r * r * length / n_per / float(np.prod(step))  # fraction of a voxel
    idx = (points - frame.local_origin) / step
    base = np.floor(idx).astype(np.int64)
    frac = idx - base
    shape = np.asarray(frame.shape)
    flat, weight = [], []
    for corner in np.ndindex(2, 2, 2):
        c = np.asarray(corner)
        vox = base + c
        inside = np.all((vox >= 0) & (vox < shape), axis=1)
        flat.append(np.ravel_multi_index(vox[inside].T, frame.shape))
        weight.append(np.prod(np.where(c == 1, frac, 1.0 - frac), axis=1)[inside] * mass[inside])
    total = np.bincount(
        np.concatenate(flat), weights=np.concatenate(weight), minlength=int(np.prod(shape))
    )
    return total.reshape(frame.shape).astype(np.float32)


def _stencil(step: np.ndarray, reach: float) -> np.ndarray:
    """Integer voxel offsets within ``reach`` mm of the centre (an ellipsoid in voxels)."""
    n = np.ceil(reach / step).astype(int)
    grids = np.meshgrid(*(np.arange(-k, k + 1) for k in n), indexing="ij")
    off = np.stack([g.ravel() for g in grids], axis=1)
    keep = np.sum((off * step) ** 2, axis=1) <= reach**2
    return off[keep]


def _render_group(
    frame: Frame, seg: Segments, ds: np.ndarray, reach: float, flat: np.ndarray
) -> None:
    """Max-blend the occupancy of ``seg`` into ``flat`` with one stencil of radius ``reach``.

    For a sample ``p`` on segment ``a -> b`` (unit direction ``u``, length ``L``, at arc length
    ``s_p``) and a voxel ``v = c + k`` near it (``c`` the voxel nearest ``p``), the distance to
    the segment follows from ``w = v - p``: along = ``w.u``, perpendicular^2 = ``|w|^2 -
    along^2``, and the part of ``s_p + along`` beyond [0, L]. The products with the fixed
    stencil ``k`` are two small matrix products, so no per-voxel gathers are needed.
    """
    step = frame.step.astype(np.float32)
    h = np.float32(frame.h)
    samples, seg_id, t = _samples(seg, ds)
    centre = np.rint((samples - frame.local_origin) / frame.step).astype(np.int64)
    delta = (frame.local_origin + centre * frame.step - samples).astype(np.float32)  # c - p
    ab = seg.b - seg.a
    length = np.maximum(np.linalg.norm(ab, axis=1), 1e-6)
    u = (ab / length[:, None]).astype(np.float32)[seg_id]
    length = length.astype(np.float32)[seg_id]
    s_p = (t * length).astype(np.float32)
    ra = seg.ra.astype(np.float32)[seg_id]
    dr = (seg.rb - seg.ra).astype(np.float32)[seg_id]
    offsets = _stencil(frame.step, reach)
    k_mm = (offsets * step).astype(np.float32)
    k2 = np.sum(k_mm * k_mm, axis=1)[:, None]
    strides = np.array([frame.shape[1] * frame.shape[2], frame.shape[2], 1])
    k_flat = (offsets @ strides)[:, None]
    base = centre @ strides
    per_chunk = max(1, _CHUNK // len(offsets))
    for start in range(0, len(samples), per_chunk):
        sl = slice(start, start + per_chunk)
        du = np.sum(delta[sl] * u[sl], axis=1)
        along = k_mm @ u[sl].T + du  # (M, n)
        w2 = k2 + 2.0 * (k_mm @ delta[sl].T) + np.sum(delta[sl] ** 2, axis=1)
        perp2 = np.maximum(w2 - along * along, 0.0)
        s = s_p[sl] + along
        excess = np.maximum(np.maximum(-s, s - length[sl]), 0.0)
        frac = np.clip(s / length[sl], 0.0, 1.0)
        occ = 0.5 + (ra[sl] + dr[sl] * frac - np.sqrt(perp2 + excess * excess)) / h
        hit = occ > 0
        index = (base[sl] + k_flat)[hit]
        np.maximum.at(flat, index, np.minimum(occ[hit], 1.0))
