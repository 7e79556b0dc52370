"""Per-epoch records: ``metrics.csv`` (rewritten atomically each epoch) and TensorBoard events.

One row per epoch: training and validation total loss, MSE, CE, pseudo-class accuracy (and the
rotation terms for that pretext), learning rate, training cubes/s and seconds. Terms a method
does not have are left empty. Only rank 0 creates a :class:`MetricsLog`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from semantic_genesis.io.manifests import write_csv
from semantic_genesis.pretrain.losses import STATS

METRICS_CSV = "metrics.csv"
COLUMNS = (
    ["epoch"]
    + [f"train_{s}" for s in STATS]
    + [f"val_{s}" for s in STATS]
    + ["lr", "cubes_per_s", "seconds"]
)


def epoch_row(
    epoch: int,
    train: dict[str, float],
    val: dict[str, float],
    lr: float,
    cubes_per_s: float,
    seconds: float,
    terms: set[str],
) -> dict[str, Any]:
    """One metrics row; statistics outside ``terms`` (the method's) are None."""
    row: dict[str, Any] = {"epoch": epoch}
    for prefix, stats in (("train", train), ("val", val)):
        for s in STATS:
            row[f"{prefix}_{s}"] = stats.get(s) if s in terms else None
    row.update(lr=lr, cubes_per_s=cubes_per_s, seconds=seconds)
    return row


def _fmt(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else value


class MetricsLog:
    """Writes the history to ``metrics.csv`` and each new row to TensorBoard."""

    def __init__(self, out_dir: Path, start_epoch: int = 0, tensorboard: bool = True) -> None:
        self.path = Path(out_dir) / METRICS_CSV
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # a resumed run drops events logged after its checkpoint (a killed epoch's)
            self.writer = SummaryWriter(
                log_dir=str(Path(out_dir) / "tensorboard"),
                purge_step=start_epoch + 1 if start_epoch else None,
            )

    def update(self, history: list[dict[str, Any]]) -> None:
        """Rewrite the CSV with every epoch so far; log the newest row to TensorBoard."""
        write_csv(self.path, COLUMNS, ({k: _fmt(v) for k, v in r.items()} for r in history))
        if self.writer is not None and history:
            row = history[-1]
            for key, value in row.items():
                if key != "epoch" and value is not None:
                    split, _, name = key.partition("_")
                    tag = f"{name}/{split}" if split in ("train", "val") else key
                    self.writer.add_scalar(tag, value, row["epoch"])
            self.writer.flush()

    def close(self) -> None:
        """Close the TensorBoard writer."""
        if self.writer is not None:
            self.writer.close()
