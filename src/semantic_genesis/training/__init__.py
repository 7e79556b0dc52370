"""The training layer both stages share (pre-training and fine-tuning).

- :mod:`~semantic_genesis.training.state`: random states captured and restored for an exact
  resume, and the early-stopping counters.
- :mod:`~semantic_genesis.training.loop`: :class:`Loop`, the epoch loop: early stopping, atomic
  ``last``/``best`` checkpoints with the model card, ``metrics.csv``, TensorBoard, progress, an
  exact ``resume``, and under DDP writes by the main process only with every process's random
  states kept. The stage keeps its own step (AMP, gradient accumulation, DDP's all-reduce).
"""

from semantic_genesis.training.loop import Loop, LoopResult, NonFiniteMetric
from semantic_genesis.training.state import EarlyStopping, capture_rng, restore_rng

__all__ = ["EarlyStopping", "Loop", "LoopResult", "NonFiniteMetric", "capture_rng", "restore_rng"]
