"""From discovered classes to the ``patterns.csv`` rows and the ``patterns.png`` montage.

Every instance of a class is the base crop at the class's corner in one neighbour (method.md
§2.5). Unlike the reference, which crops neighbours without any bounds check (§9.6), a crop must
fit the *neighbour's* volume: a neighbour that cannot hold it is skipped (``skip``, its rank
stays as a gap in ``patterns.csv``) or its crop is moved the least needed to fit (``clamp``);
either way it is recorded in ``discover.json``.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semantic_genesis.discovery.coordinates import fit_corner
from semantic_genesis.io.manifests import CohortRecord, PatternRecord, open_volume
from semantic_genesis.utils.atomic import atomic_path


@dataclass(frozen=True)
class DiscoveredClass:
    """One class: its reference patient (``unit`` = position in the reference order), corner,
    air score, and neighbour patient ids (nearest first; train starts with the reference)."""

    cls: int
    unit: int
    patient_id: str
    corner: tuple[int, int, int]
    score: float
    train: tuple[str, ...]
    val: tuple[str, ...]


def instances(classes: list[DiscoveredClass], records: dict[str, CohortRecord],
              patch: tuple[int, int, int], mode: str = "skip"
              ) -> tuple[list[PatternRecord], list[dict], list[dict]]:
    """The pattern rows of every class, plus the neighbours skipped and the crops clamped.

    Returns:
        ``(rows, skipped, clamped)``; ``skipped``/``clamped`` hold one dict per neighbour
        (class, split, rank, patient id, its shape, and the corner used or refused).
    """
    rows: list[PatternRecord] = []
    skipped: list[dict] = []
    clamped: list[dict] = []
    for c in classes:
        for split, ids in (("train", c.train), ("val", c.val)):
            for rank, pid in enumerate(ids):
                shape = records[pid].shape
                corner = fit_corner(c.corner, shape, patch, mode)
                info = {"class": c.cls, "split": split, "rank": rank, "patient_id": pid,
                        "shape": list(shape), "corner": list(c.corner)}
                if corner is None:
                    skipped.append({**info, "reason": "the crop does not fit this volume"})
                    continue
                if corner != c.corner:
                    clamped.append({**info, "moved_to": list(corner)})
                rows.append(PatternRecord(cls=c.cls, split=split, patient_id=pid, rank=rank,
                                          x=corner[0], y=corner[1], z=corner[2], size=patch))
    return rows, skipped, clamped


def _central_slice(cohort_dir: str | Path, record: CohortRecord, r: PatternRecord) -> np.ndarray:
    vol = open_volume(cohort_dir, record)
    return np.asarray(vol[r.x:r.x + r.size[0], r.y:r.y + r.size[1], r.z + r.size[2] // 2],
                      dtype=np.float32)


TITLE = ("Discovered classes, one per row: central slice of the reference crop (ref), its "
         "nearest training (t<rank>) and validation (v<rank>) neighbours")
TITLE_PT = 7


def _title(fig_w: float) -> tuple[str, float]:
    """The montage title wrapped to a figure ``fig_w`` inches wide (a montage of one or two
    narrow tiles must not cut its title off), and the height in inches its band needs."""
    char_in = 0.62 * TITLE_PT / 72  # a generous average glyph width of the default font
    lines = textwrap.wrap(TITLE, width=max(12, int((fig_w - 0.1) / char_in)))
    return "\n".join(lines), 0.1 + len(lines) * 1.2 * TITLE_PT / 72 + 0.1


def save_montage(path: str | Path, cohort_dir: str | Path, records: dict[str, CohortRecord],
                 rows: list[PatternRecord], max_classes: int = 12, n_neighbours: int = 5
                 ) -> Path | None:
    """``patterns.png``: a row per class (the first ``max_classes``), showing the central
    axial slice of the reference crop and of its ``n_neighbours`` nearest training neighbours
    and nearest validation neighbour, so a person can see that a class is one pattern
    (:func:`montage_figure`); None when there is nothing to show."""
    fig = montage_figure(cohort_dir, records, rows, max_classes, n_neighbours)
    if fig is None:
        return None
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=fig.dpi)
    return Path(path)


def montage_figure(cohort_dir: str | Path, records: dict[str, CohortRecord],
                   rows: list[PatternRecord], max_classes: int = 12, n_neighbours: int = 5):
    """The montage as a matplotlib ``Figure`` (see :func:`save_montage`): the tiles are laid
    out in one mosaic image (one axes, fast to draw), one mosaic pixel per image pixel."""
    by_class: dict[int, list[PatternRecord]] = {}
    for r in rows:
        by_class.setdefault(r.cls, []).append(r)
    shown = sorted(by_class)[:max(0, max_classes)]
    if not shown:
        return None
    panels = []
    for c in shown:
        train = sorted((r for r in by_class[c] if r.split == "train"), key=lambda r: r.rank)
        val = sorted((r for r in by_class[c] if r.split == "val"), key=lambda r: r.rank)
        panels.append(train[:n_neighbours + 1] + val[:1])
    # tiles are enlarged to at least 96 px so that their two-line labels fit above them;
    # one mosaic pixel is one image pixel (dpi below), and the title gets its own band,
    # wrapped to the figure's width
    dpi, min_tile, label = 120, 96, 26
    zoom = max(1, -(-min_tile // max(rows[0].size[0], rows[0].size[1])))
    tile_w, tile_h = rows[0].size[0] * zoom, rows[0].size[1] * zoom
    gap = max(4, tile_w // 16)
    ncols = max(len(p) for p in panels)
    mosaic = np.ones(((tile_h + label + gap) * len(shown), (tile_w + gap) * ncols), np.float32)
    texts = []
    for i, panel in enumerate(panels):
        top = i * (tile_h + label + gap) + label
        for j, r in enumerate(panel):
            left = j * (tile_w + gap)
            tile = _central_slice(cohort_dir, records[r.patient_id], r).T[::-1]
            mosaic[top:top + tile_h, left:left + tile_w] = np.kron(tile, np.ones((zoom, zoom)))
            tag = "ref" if r.rank == 0 and r.split == "train" else f"{r.split[0]}{r.rank}"
            texts.append((left, top - 2, f"{tag}\n{r.patient_id}"))
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    height, width = mosaic.shape
    side_in = 0.3  # the "class c" labels left of the rows
    fig_w = width / dpi + side_in
    title, title_in = _title(fig_w)
    fig_h = height / dpi + title_in
    fig = Figure(figsize=(fig_w, fig_h), dpi=dpi)
    ax = fig.add_axes((side_in / fig_w, 0.0, width / dpi / fig_w, height / dpi / fig_h))
    ax.imshow(mosaic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    for x, y, text in texts:
        ax.text(x, y, text, fontsize=5, va="bottom", ha="left", linespacing=1.1)
    for i, c in enumerate(shown):
        ax.text(-gap, i * (tile_h + label + gap) + label + tile_h / 2, f"class {c}",
                rotation=90, va="center", ha="right", fontsize=7)
    fig.suptitle(title, fontsize=TITLE_PT, y=1 - 0.05 / fig_h, va="top", linespacing=1.2)
    return fig
