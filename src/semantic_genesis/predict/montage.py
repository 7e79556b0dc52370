"""The overlay picture of one predicted case (``--montage``).

A few axial slices of the scan as the network saw it (values in [0, 1]; CT: -1000..1000 HU on a
fixed grey scale) with the predicted labels outlined. In the default LPS orientation the third
axis runs from the feet to the head, so these are true axial slices; each is drawn with the
patient's right on the left of the picture and anterior at the top (the radiological view).
Slices are those holding the most labelled voxels, in head-to-feet order; a case with no label
shows evenly spaced slices.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from semantic_genesis.utils.atomic import atomic_path  # noqa: E402

#: slices shown per case
N_SLICES = 4


def pick_slices(labels: np.ndarray, n: int = N_SLICES) -> list[int]:
    """Up to ``n`` axial (last-axis) indices: the most labelled ones, else evenly spaced."""
    counts = np.count_nonzero(labels, axis=(0, 1))
    depth = labels.shape[2]
    if counts.any():
        chosen = [int(k) for k in np.argsort(-counts, kind="stable")[:n] if counts[k] > 0]
    else:
        chosen = [int(k) for k in np.linspace(0, depth - 1, n + 2)[1:-1].round()]
    return sorted(set(chosen), reverse=True)


def save_montage(image: np.ndarray, labels: np.ndarray, path: str | Path, title: str) -> Path:
    """Write the overlay PNG of ``image`` (x, y, z in [0, 1]) and ``labels`` (same shape)."""
    slices = pick_slices(labels)
    fig, axes = plt.subplots(1, len(slices), figsize=(2.6 * len(slices), 2.9), squeeze=False)
    for ax, k in zip(axes[0], slices, strict=True):
        ax.imshow(np.asarray(image[:, :, k], dtype=np.float32).T, cmap="gray", vmin=0, vmax=1)
        mask = np.asarray(labels[:, :, k]).T
        for value in np.unique(mask[mask > 0]):
            ax.contour(mask == value, levels=[0.5], colors=[f"C{int(value) % 10}"],
                       linewidths=1.0)
        ax.set_title(f"slice {k}: {int(np.count_nonzero(mask))} voxels", fontsize=7)
        ax.axis("off")
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    return Path(path)
