"""The shared training loop (semantic_genesis.training): exact resume, early stopping, atomic
checkpoints, refused resumes."""

from __future__ import annotations

import csv
import errno
from pathlib import Path

import numpy as np
import pytest
import torch

from semantic_genesis.training import Loop, NonFiniteMetric, capture_rng
from semantic_genesis.training.loop import BEST, CHECKPOINTS, LAST, METRICS_CSV
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.seed import derive_rng, seed_everything

X = torch.linspace(-1, 1, 64).reshape(16, 4)
Y = X.sum(1, keepdim=True) * 0.5


class Killed(Exception):
    """Stands for a SIGKILL in the middle of an epoch."""


def _toy(out: Path | None, epochs: int = 5, patience: int = 10, kill_at: int = 0,
         resume: bool = False, settings: dict | None = None, **options):
    """A small network trained with every source of randomness a stage has: a numpy generator
    (batch order), torch's global RNG (dropout) and a torch generator (input noise)."""
    seed_everything(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.3), torch.nn.Linear(8, 1))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.StepLR(opt, 2, 0.5)
    order_rng = derive_rng(0, "toy")
    noise = torch.Generator().manual_seed(1)

    def step(epoch: int) -> dict[str, float]:
        model.train()
        losses = []
        for i, idx in enumerate(np.array_split(order_rng.permutation(16), 4)):
            if epoch == kill_at and i == 2:
                raise Killed
            x = X[idx] + 0.01 * torch.randn(len(idx), 4, generator=noise)
            loss = torch.nn.functional.mse_loss(model(x), Y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return {"loss": float(np.mean(losses))}

    def evaluate() -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            return {"loss": torch.nn.functional.mse_loss(model(X), Y).item(), "metric": 1.0}

    loop = Loop(model, opt, sched, epochs=epochs, patience=patience, out_dir=out,
                settings=settings or {"lr": 0.05}, generators={"order": order_rng, "noise": noise},
                **options)
    return loop.run(step, evaluate, resume=resume), model


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / METRICS_CSV, newline="") as fh:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(fh)]


def test_a_killed_run_resumed_equals_one_never_interrupted(tmp_path: Path) -> None:
    straight, model_a = _toy(tmp_path / "a")
    with pytest.raises(Killed):
        _toy(tmp_path / "b", kill_at=3)  # dies inside epoch 3, after two optimiser steps
    assert torch.load(tmp_path / "b" / CHECKPOINTS / LAST, weights_only=True)["epoch"] == 2
    assert len(_rows(tmp_path / "b")) == 2
    resumed, model_b = _toy(tmp_path / "b", resume=True)  # a fresh process: everything re-made
    assert resumed.resumed_after == 2 and resumed.epochs_run == straight.epochs_run == 5
    for a, b in zip(model_a.state_dict().values(), model_b.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    last = [torch.load(p / CHECKPOINTS / LAST, weights_only=True)["state_dict"]
            for p in (tmp_path / "a", tmp_path / "b")]
    assert all(torch.equal(last[0][k], last[1][k]) for k in last[0])
    assert _rows(tmp_path / "a") == _rows(tmp_path / "b")
    assert (resumed.best_epoch, resumed.best_loss) == (straight.best_epoch, straight.best_loss)


def test_resuming_without_a_checkpoint_or_with_other_settings_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SemgenError, match="nothing to resume") as err:
        _toy(tmp_path / "new", resume=True)
    assert err.value.path == tmp_path / "new"
    with pytest.raises(Killed):
        _toy(tmp_path / "run", kill_at=2)
    with pytest.raises(SemgenError, match=r"different settings \(lr: 0.05 -> 0.1\)"):
        _toy(tmp_path / "run", resume=True, settings={"lr": 0.1})


def test_early_stopping_keeps_the_best_epochs_weights(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    val = iter([1.0, 0.5, 0.6, 0.7, 0.8, 0.9])
    snapshots = {}

    def step(epoch: int) -> dict[str, float]:
        with torch.no_grad():
            model.weight += 1.0  # each epoch leaves other weights
        snapshots[epoch] = model.weight.detach().clone()
        return {"loss": 1.0}

    loop = Loop(model, opt, None, epochs=6, patience=2, out_dir=tmp_path)
    result = loop.run(step, lambda: {"loss": next(val)})
    assert result.stopped_early and result.epochs_run == 4 and result.best_epoch == 2
    assert torch.equal(model.weight, snapshots[2])
    best = torch.load(tmp_path / CHECKPOINTS / BEST, weights_only=True)
    assert best["epoch"] == 2 and best["val_loss"] == 0.5 and "model_card" in best
    assert torch.equal(best["state_dict"]["weight"], snapshots[2])


def test_a_fault_while_writing_best_leaves_the_previous_files_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import semantic_genesis.models.checkpoint as checkpoint

    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    real_open = open

    class FullDisk:
        def __init__(self, path, mode):  # noqa: ANN001
            self.fh = real_open(path, mode)

        def __enter__(self):  # noqa: ANN204
            return self

        def __exit__(self, *exc):  # noqa: ANN002, ANN204
            self.fh.close()

        def write(self, data) -> int:  # noqa: ANN001
            self.fh.write(bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")

    def step(epoch: int) -> dict[str, float]:
        if epoch == 2:  # epoch 2 improves: its best.pt write meets a full disk
            monkeypatch.setattr(checkpoint, "open", FullDisk, raising=False)
        return {"loss": 1.0 / epoch}

    loop = Loop(model, opt, None, epochs=3, patience=5, out_dir=tmp_path)
    with pytest.raises(OSError, match="No space"):
        loop.run(step, lambda: None)  # no validation: the training loss is monitored
    ckpts = tmp_path / CHECKPOINTS
    assert sorted(p.name for p in ckpts.iterdir()) == [BEST, LAST]  # no .tmp-* left
    for name in (BEST, LAST):
        assert torch.load(ckpts / name, weights_only=True)["epoch"] == 1
    assert len(_rows(tmp_path)) == 1


def test_a_nan_loss_stops_before_anything_of_its_epoch_is_saved(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = iter([1.0, float("nan")])
    loop = Loop(model, opt, None, epochs=3, patience=5, out_dir=tmp_path)
    with pytest.raises(NonFiniteMetric, match="validation loss became nan at epoch 2"):
        loop.run(lambda epoch: {"loss": 1.0}, lambda: {"loss": next(losses)})
    assert torch.load(tmp_path / CHECKPOINTS / LAST, weights_only=True)["epoch"] == 1


def test_without_an_output_folder_the_best_weights_are_kept_in_memory() -> None:
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    val = iter([0.5, 0.9])
    seen = []

    def step(epoch: int) -> dict[str, float]:
        with torch.no_grad():
            model.weight.add_(1.0)
        seen.append(model.weight.detach().clone())
        return {"loss": 1.0}

    result = Loop(model, opt, None, epochs=2, patience=5).run(step, lambda: {"loss": next(val)})
    assert result.best_epoch == 1 and torch.equal(model.weight, seen[0])


def test_tensorboard_columns_and_extras_follow_a_resumed_run(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    options = {"tensorboard": True, "columns": ("epoch", "val_loss", "train_loss"),
               "extras": lambda epoch: {"method": "toy", "note": f"after {epoch}"}}
    with pytest.raises(Killed):
        _toy(tmp_path, kill_at=3, **options)
    _toy(tmp_path, resume=True, **options)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("loss/train")] == [1, 2, 3, 4, 5]
    assert [e.step for e in events.Scalars("lr")] == [1, 2, 3, 4, 5]
    with open(tmp_path / METRICS_CSV) as fh:
        assert fh.readline().startswith("epoch,val_loss,train_loss,val_metric,lr")
    for name in (BEST, LAST):
        ckpt = torch.load(tmp_path / CHECKPOINTS / name, weights_only=True)
        assert ckpt["method"] == "toy" and ckpt["note"] == f"after {ckpt['epoch']}"


def test_terms_a_run_lacks_stay_empty_and_the_last_weights_can_be_kept(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    val = iter([0.5, 0.9])
    seen: list[tuple[int, bool]] = []

    def step(epoch: int) -> dict[str, float | None]:
        with torch.no_grad():
            model.weight.add_(1.0)
        return {"loss": 1.0, "ce": None, "cubes_per_s": 10.0 * epoch, "seconds": 7.0}

    loop = Loop(model, opt, None, epochs=2, patience=5, out_dir=tmp_path, restore_best=False,
                after_epoch=lambda row, improved: seen.append((row["epoch"], improved)),
                untagged=("cubes_per_s", "seconds"))
    loop.run(step, lambda: {"loss": next(val)})
    assert seen == [(1, True), (2, False)]
    best = torch.load(tmp_path / CHECKPOINTS / BEST, weights_only=True)["state_dict"]
    assert torch.equal(model.weight, best["weight"] + 1.0)  # the last epoch's, not the best's
    rows = _rows(tmp_path)
    assert [r["train_ce"] for r in rows] == ["", ""]
    assert [r["cubes_per_s"] for r in rows] == ["10", "20"] and "train_cubes_per_s" not in rows[0]
    with open(tmp_path / METRICS_CSV) as fh:
        assert [r["seconds"] for r in csv.DictReader(fh)] == ["7", "7"]  # the stage's own


def test_under_ddp_only_the_main_process_writes_and_each_resumes_its_own_random_states(
    tmp_path: Path,
) -> None:
    """One process stands for two: ``gather_rng`` returns every rank's states (here the
    caller's and a decoy), last.pt holds the list, and rank 0 resumes exactly from its own."""
    straight, model_a = _toy(tmp_path / "a")
    decoy = capture_rng()
    calls = []

    def gather(state: dict) -> list[dict]:
        calls.append(1)
        return [state, decoy]

    with pytest.raises(Killed):
        _toy(tmp_path / "b", kill_at=3, gather_rng=gather)
    assert len(torch.load(tmp_path / "b" / CHECKPOINTS / LAST, weights_only=True)["rng"]) == 2
    _, model_b = _toy(tmp_path / "b", resume=True, gather_rng=gather, rank=0)
    assert all(torch.equal(a, b) for a, b in zip(model_a.state_dict().values(),
                                                  model_b.state_dict().values(), strict=True))
    n = len(calls)
    _toy(tmp_path / "rank1", main=False, gather_rng=gather, restore_best=False)
    assert len(calls) == n + 5  # the collective ran every epoch on the other process too
    assert not (tmp_path / "rank1").exists()  # and it wrote nothing


def test_state_objects_may_not_take_the_loops_own_keys() -> None:
    model = torch.nn.Linear(2, 1)
    with pytest.raises(ValueError, match="optimizer"):
        Loop(model, torch.optim.SGD(model.parameters(), lr=0.1), None, epochs=1, patience=1,
             state={"optimizer": model})
