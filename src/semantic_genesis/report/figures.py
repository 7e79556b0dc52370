"""Figures of the report that no single stage draws (the stages draw their own)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from semantic_genesis.io.manifests import open_volume, read_cohort  # noqa: E402
from semantic_genesis.utils.atomic import atomic_path  # noqa: E402


def cohort_montage(cohort_dir: str | Path, path: str | Path, max_patients: int = 24) -> Path:
    """Save a grid with the central axial slice of each prepared volume (train and val).

    The slice is shown with x down and y across, the way the arrays are stored; values in [0, 1]
    (CT: -1000..1000 HU) are displayed on a fixed grey scale so patients compare directly.
    """
    records = read_cohort(cohort_dir)[:max_patients]
    cols = min(8, max(1, len(records)))
    rows = math.ceil(len(records) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.8 * cols, 1.9 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, rec in zip(axes.ravel(), records, strict=False):
        vol = open_volume(cohort_dir, rec)
        ax.imshow(vol[:, :, vol.shape[2] // 2].astype("float32"), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{rec.id} ({rec.split})", fontsize=7)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    return Path(path)
