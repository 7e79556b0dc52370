"""The epoch loop both stages share: early stopping, atomic ``last``/``best`` checkpoints with
the model card, ``metrics.csv``, progress, and an exact resume.

A stage supplies what is specific to it — one training epoch (``step_fn``), one validation
(``eval_fn``), the model, its optimiser and schedule, the model card — and :class:`Loop` does the
rest the same way for everyone. With an output folder, each epoch ends with::

    <out>/checkpoints/best.pt   lowest monitored loss so far: weights + card + epoch
    <out>/checkpoints/last.pt   weights + card + optimiser, schedule, early stopping, history,
                                every random state (so a killed run resumes exactly)
    <out>/metrics.csv           one row per epoch, rewritten from the history in last.pt

Every file is written to a temporary name and renamed, so a run killed at any instant leaves the
previous epoch's files whole. ``resume=True`` continues from ``last.pt``: the weights, optimiser,
schedule, early-stopping counters, history, random states and epoch count are put back, so the
run ends with the same weights and rows as one never interrupted.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from semantic_genesis.models.card import ModelCard
from semantic_genesis.training.state import EarlyStopping, Generator, capture_rng, restore_rng
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.progress import progress

CHECKPOINTS = "checkpoints"
LAST, BEST = "last.pt", "best.pt"
#: what the loop itself keeps in a checkpoint (``state`` objects take other keys)
RESERVED = ("state_dict", "model_card", "epoch", "config", "val_loss", "optimizer", "scheduler",
            "early_stopping", "history", "rng")
METRICS_CSV = "metrics.csv"

#: one training epoch: the 1-based epoch number -> its means (``loss`` at least)
StepFn = Callable[[int], Mapping[str, float]]
#: one validation -> its means (``loss`` at least), or None when there is no validation set
EvalFn = Callable[[], Mapping[str, float] | None]


class Stateful(Protocol):
    """Anything whose state is saved in ``last.pt`` (a GradScaler, an auxiliary head ...)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any], /) -> Any: ...


class NonFiniteMetric(Exception):
    """A training or validation loss became NaN or infinite (the stage words the error)."""

    def __init__(self, name: str, value: float, epoch: int) -> None:
        super().__init__(f"the {name} became {value} at epoch {epoch}")
        self.name, self.value, self.epoch = name, value, epoch


@dataclass
class LoopResult:
    """What :meth:`Loop.run` did; ``history`` holds every epoch's row, resumed ones included."""

    epochs_run: int
    best_epoch: int  # 1-based; 0 when no epoch ran
    best_loss: float
    stopped_early: bool
    history: list[dict[str, Any]]
    resumed_after: int = 0  # epochs already done when this process started


@dataclass
class Loop:
    """One run's epochs (see the module doc).

    Attributes:
        model: the weights the checkpoints hold (wrappers such as DDP are looked through).
        optimizer, scheduler: stepped by the stage's ``step_fn`` / once per epoch here
            (``ReduceLROnPlateau`` with the monitored loss, any other scheduler without).
        epochs: the most epochs; ``patience`` and ``min_delta`` drive early stopping on the
            monitored loss (validation ``loss``, else training ``loss``).
        out_dir: where ``checkpoints/`` and ``metrics.csv`` go; None keeps the best weights in
            memory only (no files, no resume).
        card: the model card of the weights after epoch N (None: read from the model).
        settings: the run's settings, stored in both checkpoints; a resume with other values
            (except the keys in ``resumable``) is refused.
        state: more objects saved in and restored from ``last.pt``, each under its own key
            (e.g. ``{"scaler": ..., "aux_state_dict": head}``, pre-training's layout).
        generators: the run's own random generators (torch or numpy), restored on resume.
        extras: more plain entries for both checkpoints after epoch N (e.g. the method's name).
        columns: metrics.csv's first columns (others follow in row order).
        untagged: keys of ``step_fn``'s result that are row columns as they are (e.g.
            ``cubes_per_s``, or the stage's own ``seconds``), not ``train_<key>``.
        tensorboard: also log each row to ``<out_dir>/tensorboard`` (a resumed run drops the
            events a killed epoch logged).
        after_epoch: called on every process with (row, improved) once the epoch's files are
            written (figures, a summary line).
        restore_best: end holding the best epoch's weights (else the last epoch's; under DDP
            only the main process may read best.pt before a barrier, so pass False there).
        main: this process writes the files (rank 0 under DDP; the others only compute).
        gather_rng: under DDP, a collective that returns every process's random states (called
            by all processes each epoch); ``last.pt`` then holds the list and each process
            restores its own (``rank``).
        desc: the progress bar's label.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    epochs: int
    patience: int
    min_delta: float = 0.0
    out_dir: Path | None = None
    card: Callable[[int], ModelCard] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    resumable: tuple[str, ...] = ()
    state: dict[str, Stateful] = field(default_factory=dict)
    generators: dict[str, Generator] = field(default_factory=dict)
    extras: Callable[[int], dict[str, Any]] | None = None
    columns: tuple[str, ...] = ()
    untagged: tuple[str, ...] = ()
    tensorboard: bool = False
    after_epoch: Callable[[dict[str, Any], bool], None] | None = None
    restore_best: bool = True
    main: bool = True
    gather_rng: Callable[[dict[str, Any]], list[dict[str, Any]]] | None = None
    rank: int = 0
    desc: str = "train"
    early: EarlyStopping = field(init=False)
    history: list[dict[str, Any]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        taken = set(self.state) & set(RESERVED)
        if taken:
            raise ValueError(f"state keys {sorted(taken)} are the loop's own")
        self.early = EarlyStopping(self.patience, self.min_delta)
        self._best_state: dict[str, torch.Tensor] | None = None

    @property
    def checkpoint_dir(self) -> Path | None:
        """``<out_dir>/checkpoints``, or None without an output folder."""
        return None if self.out_dir is None else Path(self.out_dir) / CHECKPOINTS

    def run(self, step_fn: StepFn, eval_fn: EvalFn, resume: bool = False) -> LoopResult:
        """Train until ``epochs`` or early stopping; leave the model holding the best weights.

        Raises:
            NonFiniteMetric: a loss became NaN or infinite (nothing of that epoch is saved).
            SemgenError: ``resume`` without a usable ``last.pt``, or with other settings.
        """
        done = self._resume() if resume else self._fresh()
        stopped = self.early.should_stop
        board = self._board(done)
        bar = progress(range(done + 1, self.epochs + 1), desc=self.desc)
        try:
            for epoch in bar:
                if stopped:
                    break
                row, improved = self._epoch(epoch, step_fn, eval_fn)
                self._save(epoch, row, improved)
                if board is not None:
                    log_row(board, row)
                if self.after_epoch is not None:
                    self.after_epoch(row, improved)
                bar.set_postfix(loss=f"{row['train_loss']:.4f}", best=self.early.best_epoch,
                                **({"val": f"{row['val_loss']:.4f}"} if "val_loss" in row else {}))
                stopped = self.early.should_stop
        finally:
            bar.close()
            if board is not None:
                board.close()
        if self.restore_best:
            self._restore_best()
        return LoopResult(len(self.history), self.early.best_epoch, self.early.best_loss,
                          stopped, list(self.history), done)

    # -----------------------------------------------------------------------------------------
    # one epoch

    def _epoch(self, epoch: int, step_fn: StepFn, eval_fn: EvalFn) -> tuple[dict[str, Any], bool]:
        """Train, validate, step the schedule and early stopping; return (row, improved)."""
        start = time.perf_counter()
        train = _floats(step_fn(epoch))
        evaluated = eval_fn()
        val = None if evaluated is None else _floats(evaluated)
        for name, stats in (("training loss", train), ("validation loss", val)):
            if stats is not None and not math.isfinite(stats["loss"]):
                raise NonFiniteMetric(name, stats["loss"], epoch)
        monitored = (val or train)["loss"]
        lr = float(self.optimizer.param_groups[0]["lr"])
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(monitored)
        elif self.scheduler is not None:
            self.scheduler.step()
        improved = self.early.step(monitored, epoch)
        row: dict[str, Any] = {"epoch": epoch}
        row.update({k if k in self.untagged else f"train_{k}": v for k, v in train.items()})
        row.update({f"val_{k}": v for k, v in (val or {}).items()})
        row["lr"] = lr
        row.setdefault("seconds", time.perf_counter() - start)  # the stage's own, if it gave one
        self.history.append(row)
        return row, improved

    # -----------------------------------------------------------------------------------------
    # files

    def _card(self, epoch: int) -> ModelCard | None:
        return None if self.card is None else self.card(epoch)

    def _board(self, done: int) -> Any:
        """A TensorBoard writer, or None (no ``tensorboard`` or no output folder)."""
        if not self.tensorboard or self.out_dir is None or not self.main:
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(log_dir=str(Path(self.out_dir) / "tensorboard"),
                             purge_step=done + 1 if done else None)

    def _save(self, epoch: int, row: dict[str, Any], improved: bool) -> None:
        """best.pt (when improved), then last.pt, then metrics.csv; each atomically."""
        from semantic_genesis.models.checkpoint import save_model, unwrap_model

        ckpt_dir = self.checkpoint_dir
        if ckpt_dir is None:
            if improved:
                self._best_state = copy.deepcopy(unwrap_model(self.model).state_dict())
            return
        resume = self._resume_state()  # every process: gathering the RNG states is collective
        if not self.main:
            return
        card = self._card(epoch)
        extras = {"epoch": epoch, "config": self.settings,
                  **(self.extras(epoch) if self.extras else {})}
        if improved:
            save_model(ckpt_dir / BEST, self.model, card, val_loss=self.early.best_loss, **extras)
        save_model(ckpt_dir / LAST, self.model, card, **{**extras, **resume})
        write_metrics(Path(self.out_dir) / METRICS_CSV, self.history,  # type: ignore[arg-type]
                      self.columns)

    def _resume_state(self) -> dict[str, Any]:
        """Everything besides the weights that the next epoch depends on."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "early_stopping": self.early.state_dict(),
            "history": list(self.history),
            "rng": (capture_rng(self.generators) if self.gather_rng is None
                    else self.gather_rng(capture_rng(self.generators))),
            **{k: obj.state_dict() for k, obj in self.state.items()},
        }

    def _fresh(self) -> int:
        """A new run: earlier checkpoints and metrics in the folder (this loop's) go."""
        if self.out_dir is not None and self.main:
            for path in (self.checkpoint_dir / LAST, self.checkpoint_dir / BEST,  # type: ignore[operator]
                         Path(self.out_dir) / METRICS_CSV):
                path.unlink(missing_ok=True)
        return 0

    def _resume(self) -> int:
        """Put back everything ``last.pt`` holds; return the epochs it had done."""
        from semantic_genesis.models.checkpoint import (
            nonfinite_tensors,
            read_checkpoint,
            unwrap_model,
        )

        if self.out_dir is None:
            raise SemgenError("cannot resume a run without an output folder")
        last = self.checkpoint_dir / LAST  # type: ignore[operator]
        if not last.is_file():
            raise SemgenError(f"nothing to resume: no {CHECKPOINTS}/{LAST} (the run stopped "
                              "before its first epoch ended, or never ran); start it without "
                              "resume", self.out_dir)
        ckpt = read_checkpoint(last)
        if "optimizer" not in ckpt or "rng" not in ckpt:
            raise SemgenError("cannot resume: not a last.pt written by a semgen training loop",
                              last)
        bad = nonfinite_tensors(ckpt.get("state_dict", {}))
        if bad:
            raise SemgenError(f"cannot resume: the weights hold NaN or infinite values "
                              f"({', '.join(bad[:3])}); start a new run", last)
        check_same_settings(ckpt.get("config", {}), self.settings, self.resumable, last)
        unwrap_model(self.model).load_state_dict(ckpt["state_dict"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        self.early.load_state_dict(ckpt["early_stopping"])
        self.history = list(ckpt["history"])
        for key, obj in self.state.items():
            obj.load_state_dict(ckpt[key])
        rng = ckpt["rng"]
        if isinstance(rng, list):  # one per process: this one's (rank 0's if there are fewer)
            rng = rng[self.rank] if self.rank < len(rng) else rng[0]
        restore_rng(rng, self.generators)
        return int(ckpt["epoch"])

    def _restore_best(self) -> None:
        """Load the weights of the best epoch (from best.pt, which a resumed run may not have
        written itself)."""
        from semantic_genesis.models.checkpoint import read_checkpoint, unwrap_model

        model = unwrap_model(self.model)
        if self.checkpoint_dir is None:
            if self._best_state is not None:
                model.load_state_dict(self._best_state)
            return
        best = self.checkpoint_dir / BEST
        if not self.early.best_epoch:
            return
        if not best.is_file():
            raise SemgenError(f"the best epoch's weights are gone (epoch {self.early.best_epoch})"
                              "; the run's results cannot be computed from them", best)
        model.load_state_dict(read_checkpoint(best)["state_dict"])


def check_same_settings(stored: Mapping[str, Any], now: Mapping[str, Any],
                        resumable: tuple[str, ...], path: Path) -> None:
    """Refuse to resume a run with settings other than those it was started with (settings
    stored by an older release and no longer known are not compared)."""
    changed = sorted(k for k in now if k not in resumable and stored.get(k) != now[k])
    if changed:
        detail = ", ".join(f"{k}: {stored.get(k)!r} -> {now.get(k)!r}" for k in changed[:4])
        raise SemgenError(f"cannot resume with different settings ({detail}); resume with the "
                          "run's own settings or start a new run", path)


def _floats(stats: Mapping[str, float | None]) -> dict[str, float | None]:
    """An epoch's means as floats; None stays None (a term the run does not have)."""
    return {k: None if v is None else float(v) for k, v in stats.items()}


def log_row(writer: Any, row: dict[str, Any]) -> None:
    """One metrics row as TensorBoard scalars: ``train_loss`` -> ``loss/train``."""
    for key, value in row.items():
        if key != "epoch" and isinstance(value, float) and math.isfinite(value):
            split, _, name = key.partition("_")
            writer.add_scalar(f"{name}/{split}" if split in ("train", "val") else key, value,
                              row["epoch"])
    writer.flush()


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else value


def write_metrics(path: Path, history: list[dict[str, Any]], columns: tuple[str, ...] = ()
                  ) -> Path:
    """Rewrite ``metrics.csv`` atomically: one row per epoch, floats to 6 significant digits,
    NaN and missing values empty. Columns: ``columns``, then any others in row order."""
    from semantic_genesis.io.manifests import write_csv

    return write_csv(path, columns, ({k: _cell(v) for k, v in r.items()} for r in history))
