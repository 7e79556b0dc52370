"""Per-epoch records: ``metrics.csv`` (rewritten atomically each epoch) and TensorBoard events.

One row per epoch: training and validation total loss and each statistic the method declares
(``Method.metric_names``: its loss terms and their metrics, e.g. ``mse``, ``ce``, ``acc`` for
Semantic Genesis), learning rate, training cubes/s and seconds. Only rank 0 creates a
:class:`MetricsLog`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from semantic_genesis.io.manifests import write_csv

METRICS_CSV = "metrics.csv"


def columns(metric_names: list[str]) -> list[str]:
    """The ``metrics.csv`` header of a method with these statistics."""
    return (
        ["epoch"]
        + [f"train_{s}" for s in metric_names]
        + [f"val_{s}" for s in metric_names]
        + ["lr", "cubes_per_s", "seconds"]
    )


def epoch_row(
    epoch: int,
    train: dict[str, float],
    val: dict[str, float],
    lr: float,
    cubes_per_s: float,
    seconds: float,
    metric_names: list[str],
) -> dict[str, Any]:
    """One metrics row (validation statistics are None without validation)."""
    row: dict[str, Any] = {"epoch": epoch}
    for prefix, stats in (("train", train), ("val", val)):
        for s in metric_names:
            row[f"{prefix}_{s}"] = stats.get(s)
    row.update(lr=lr, cubes_per_s=cubes_per_s, seconds=seconds)
    return row


def _fmt(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else value


class MetricsLog:
    """Writes the history to ``metrics.csv`` and each new row to TensorBoard."""

    def __init__(
        self,
        out_dir: Path,
        metric_names: list[str],
        start_epoch: int = 0,
        tensorboard: bool = True,
    ) -> None:
        self.path = Path(out_dir) / METRICS_CSV
        self.columns = columns(metric_names)
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
        # rows resumed from an earlier release may hold other (empty) statistics: dropped
        rows = ({k: _fmt(r.get(k)) for k in self.columns} for r in history)
        write_csv(self.path, self.columns, rows)
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
