"""The epoch loop: batched on-device perturbations, AMP, accumulation, DDP, validation.

Randomness is organised so that an epoch is a pure function of (seed, epoch, the state at its
start): the sampler permutes with ``seed + epoch``, the loader's worker seeds and the
perturbation generator are re-seeded from ``derive_seed(seed, ..., epoch)``, and validation is
perturbed with the same fixed seed every epoch (method.md §9.21: the reference validated on
fresh random transforms, so its early stopping followed noise).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from semantic_genesis.pretrain.cohort_data import cohort_datasets
from semantic_genesis.pretrain.config import PretrainConfig
from semantic_genesis.pretrain.data import PatternsInfo, make_datasets
from semantic_genesis.pretrain.distributed import (
    Runtime,
    all_reduce_sum,
    broadcast_buffers,
    eval_loader,
    from_workers,
    no_sync,
    train_loader,
    wrap_ddp,
)
from semantic_genesis.pretrain.losses import MethodLoss
from semantic_genesis.pretrain.methods import Batch, Method
from semantic_genesis.pretrain.network import backbone_name, build_network
from semantic_genesis.pretrain.speed import cpu_settings, use_fast_decoder
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.progress import progress, say
from semantic_genesis.utils.seed import derive_seed, seed_everything

#: cubes shown in restorations.png.
FIGURE_CUBES = 4


class NonFiniteLoss(Exception):
    """The loss or the weights became NaN or infinite (caught by :func:`pretrain`, which names
    the last checkpoint with finite weights). The message says what and where, e.g.
    "the weights became NaN or infinite at epoch 3, step 7"."""

    def __init__(self, what: str, where: str) -> None:
        super().__init__(f"the {what} became NaN or infinite at {where}")
        self.what, self.where = what, where


@dataclass
class EpochStats:
    """Means over an epoch's cubes (all processes) of the method's statistics, plus timing."""

    means: dict[str, float]
    cubes: int
    seconds: float


def amp_dtype(config: PretrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for fp32 (``auto`` = bf16 on GPU, fp32 on CPU)."""
    mode = config.amp
    if mode == "auto":
        mode = "bf16" if device.type == "cuda" else "none"
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "none": None}[mode]


class Trainer:
    """Owns the model, optimiser, data and random state of one run on one process."""

    def __init__(
        self,
        config: PretrainConfig,
        method: Method,
        info: PatternsInfo,
        runtime: Runtime,
        init: Any = None,
    ) -> None:
        """``init``: weights read by ``read_weights`` (from ``config.init``) to start from."""
        self.config, self.method, self.info, self.rt = config, method, info, runtime
        self.device = runtime.device
        seed_everything(config.seed)
        self.micro = _micro_batch(config, runtime)
        if info.data == "cohort":  # the run's cubes.csv, never multi-resolution
            self.train_set, self.val_set = cohort_datasets(info, config.seed)
        else:
            self.train_set, self.val_set = make_datasets(info, config.multires, config.seed)
        self.steps = len(self.train_set) // config.batch_size
        if self.steps == 0:
            raise SemgenError(
                f"only {len(self.train_set)} training cubes, fewer than one batch "
                f"of {config.batch_size}; lower --batch-size",
                info.where,
            )
        self.preset = _perturbation(method, config)
        self.net = build_network(config, method, info.n_classes).to(self.device)
        if self.device.type == "cpu":
            cpu_settings()
            if config.fast_decoder:
                use_fast_decoder(self.net)
        if init is not None:
            self._initialise(init)
        self.ddp = wrap_ddp(self.net, runtime, find_unused=not self.net.uses_whole_backbone)
        self.model = torch.compile(self.ddp) if config.compile else self.ddp
        self.optimizer = method.optimizer(self.net.parameters(), config)
        self.scheduler = method.scheduler(self.optimizer, config)
        self.amp = amp_dtype(config, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp is torch.float16)
        self.loss_fn = MethodLoss(method, config)
        self.metric_names = method.metric_names()
        self.loader, self.sampler, self.loader_gen = train_loader(
            self.train_set, self.micro, runtime, config.seed, config.workers
        )
        self.val_loader = None
        if self.val_set is not None:
            self.val_loader = eval_loader(
                self.val_set, config.batch_size // runtime.world, runtime, config.workers
            )
        else:
            say(
                "note: the data have no validation cubes; early stopping follows the "
                "training loss"
            )
        self.perturb_gen = torch.Generator(self.device)
        self._epoch = 0

    def _initialise(self, init: Any) -> None:
        """Load ``init`` into the backbone; refuse weights of another width or layout."""
        from semantic_genesis.models import load_weights

        report = load_weights(self.net.backbone, init, strict=False)
        if report.shape_mismatch or not (report.matched or report.adapted):
            problems = "; ".join(report.problems()) or "no tensor matched"
            raise SemgenError(
                f"--init does not fit the {backbone_name(self.config, self.method)} backbone "
                f"of width "
                f"{self.config.width}: {problems}",
                init.source,
            )
        say(f"initialising from {init.source}: {report}")

    # -----------------------------------------------------------------------------------------
    # one batch

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp)

    def _forward(
        self,
        model: torch.nn.Module,
        cubes: torch.Tensor,
        labels: torch.Tensor,
        gen: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """Perturb on the device, run the model, return (loss, stats, perturbed batch)."""
        cubes = cubes.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        x, target, extra = _perturbed(self.preset(cubes, gen))
        batch = Batch(cubes, labels, x, target, extra)
        if self.config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        with self._autocast():
            out = model(x)
        loss, stats = self.loss_fn(out, batch)
        return loss, stats, (batch, out)

    # -----------------------------------------------------------------------------------------
    # epochs

    def train_epoch(self, epoch: int) -> EpochStats:
        """One pass over the training cubes (``epoch`` is 0-based)."""
        cfg, k_acc = self.config, self.config.accumulate
        self._epoch = epoch
        self.net.train()
        self.sampler.set_epoch(epoch)
        if cfg.redraw_multires:  # multi-resolution crops drawn per (seed, epoch); else once
            self.train_set.set_epoch(epoch)
        self.loader_gen.manual_seed(derive_seed(cfg.seed, "loader", epoch))
        self.perturb_gen.manual_seed(derive_seed(cfg.seed, "perturb", epoch, self.rt.rank))
        sums = torch.zeros(len(self.metric_names) + 1, dtype=torch.float64, device=self.device)
        batches = from_workers(self.loader)
        start = time.perf_counter()
        bar = progress(total=self.steps, desc=f"epoch {epoch + 1}", unit="step")
        for step in range(self.steps):
            step_sums = torch.zeros_like(sums)
            for k in range(k_acc):
                cubes, labels = next(batches)
                with no_sync(self.ddp, k < k_acc - 1):
                    loss, stats, _ = self._forward(self.model, cubes, labels, self.perturb_gen)
                    self.scaler.scale(loss / k_acc).backward()
                n = cubes.shape[0]
                step_sums += torch.cat([stats.double() * n, stats.new_tensor([n]).double()])
            all_reduce_sum(step_sums, self.rt)
            where = f"epoch {epoch + 1}, step {step + 1}"
            if not torch.isfinite(step_sums[0]):
                raise NonFiniteLoss("loss", f"{where} (training)")
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
            if not self._weights_finite():
                raise NonFiniteLoss("weights", where)
            sums += step_sums
            bar.update()
            bar.set_postfix(loss=f"{(sums[0] / sums[-1]).item():.4g}")
        bar.close()
        del batches
        seconds = time.perf_counter() - start
        return EpochStats(self._means(sums), int(sums[-1].item()), seconds)

    @torch.no_grad()
    def evaluate(self) -> EpochStats | None:
        """Validation loss and accuracy, perturbed with the same seed every epoch."""
        if self.val_loader is None:
            return None
        broadcast_buffers(self.net, self.rt)  # every rank validates the weights rank 0 saves
        self.net.eval()
        gen = torch.Generator(self.device).manual_seed(
            derive_seed(self.config.seed, "validation", self.rt.rank)
        )
        sums = torch.zeros(len(self.metric_names) + 1, dtype=torch.float64, device=self.device)
        start = time.perf_counter()
        for cubes, labels in from_workers(self.val_loader):
            _, stats, _ = self._forward(self.net, cubes, labels, gen)
            n = cubes.shape[0]
            sums += torch.cat([stats.double() * n, stats.new_tensor([n]).double()])
        all_reduce_sum(sums, self.rt)
        if not torch.isfinite(sums[0]):
            raise NonFiniteLoss("validation loss", f"the validation of epoch {self._epoch + 1}")
        return EpochStats(self._means(sums), int(sums[-1].item()), time.perf_counter() - start)

    @torch.no_grad()
    def figure_batch(self) -> dict[str, np.ndarray | None]:
        """A fixed validation batch (training if no validation), perturbed with a fixed seed,
        and its restoration; arrays (N, 1, X, Y, Z) in [0, 1]."""
        dataset = self.val_set if self.val_set is not None else self.train_set
        picks = np.linspace(0, len(dataset) - 1, min(FIGURE_CUBES, len(dataset))).round()
        items = [dataset[int(i)] for i in picks]  # spread over the (class-sorted) items
        cubes = torch.stack([torch.as_tensor(c) for c, _ in items])
        labels = torch.tensor([int(lab) for _, lab in items])
        gen = torch.Generator(self.device).manual_seed(derive_seed(self.config.seed, "figure"))
        self.net.eval()
        _, _, (batch, out) = self._forward(self.net, cubes, labels, gen)
        restoration = out.get("restoration")
        restored = None if restoration is None else torch.sigmoid(restoration.float())

        def arr(t: torch.Tensor | None) -> np.ndarray | None:
            return None if t is None else t.detach().float().cpu().numpy()

        return {
            "clean": arr(cubes),
            "perturbed": arr(batch.input),
            "restored": arr(restored),
            "target": arr(batch.target if batch.target is not None else batch.input),
        }

    def _weights_finite(self) -> bool:
        """True when every parameter and buffer is finite (one reduction, one sync per step)."""
        tensors = [t for t in (*self.net.parameters(), *self.net.buffers()) if t.is_floating_point()]
        largest = torch.nn.utils.get_total_norm(tensors, norm_type=float("inf"))  # no overflow
        return bool(torch.isfinite(largest))

    def resumable_parts(self) -> dict[str, Any]:
        """What ``last.pt`` holds of this trainer besides the backbone, the optimiser and the
        schedule, under its keys: the GradScaler (``scaler``) and the method's heads outside
        the backbone (``aux_state_dict``, keys ``<head>.<parameter>``), when it has any."""
        parts: dict[str, Any] = {"scaler": _Scaler(self.scaler)}
        if len(self.net.heads):
            parts["aux_state_dict"] = _Heads(self.net)
        return parts

    def _means(self, sums: torch.Tensor) -> dict[str, float]:
        n = max(sums[-1].item(), 1.0)
        return {s: float(sums[i].item() / n) for i, s in enumerate(self.metric_names)}


def _perturbation(method: Method, config: PretrainConfig) -> Any:
    """The method's perturbation: its preset built (with ``--warp-target``), or its function."""
    from semantic_genesis.transforms import build_preset

    if callable(method.perturbation):
        if config.warp_target:
            raise SemgenError("--warp-target applies to presets; this method perturbs with "
                              "its own function")
        return method.perturbation
    options = {"warp_target": True} if config.warp_target else {}
    try:
        return build_preset(method.perturbation, **options)
    except ValueError as exc:  # unknown preset, or an option it does not take
        raise SemgenError(f"--preset/--warp-target: {exc}") from None


def _perturbed(result: Any) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``(input, target, extra labels)`` from a preset's ``Perturbed`` or a method's tuple."""
    if hasattr(result, "input") and hasattr(result, "aux"):
        return result.input, result.target, result.aux
    if not (isinstance(result, tuple) and len(result) == 3
            and isinstance(result[0], torch.Tensor)):
        raise SemgenError("the method's perturbation must return (input, target, extra labels) "
                          f"with a tensor input, got {type(result).__name__}")
    return result


class _Scaler:
    """The GradScaler's state; a ``last.pt`` without one (fp32 runs) leaves it as it is."""

    def __init__(self, scaler: torch.amp.GradScaler) -> None:
        self.scaler = scaler

    def state_dict(self) -> dict[str, Any]:
        return self.scaler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.scaler.load_state_dict(state)


class _Heads:
    """The method's heads outside the backbone, as ``last.pt``'s ``aux_state_dict``."""

    def __init__(self, net: Any) -> None:
        self.net = net

    def state_dict(self) -> dict[str, Any]:
        return self.net.heads.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.heads.load_state_dict(_aux_state(state, self.net))


def _aux_state(state: dict[str, Any], net: Any) -> dict[str, Any]:
    """A last.pt's ``aux_state_dict``; one written before heads were named (the rotation head
    alone, keys without ``rotation.``) is prefixed with the one head's name."""
    names = list(net.heads)
    if len(names) == 1 and not any(k.startswith(f"{names[0]}.") for k in state):
        return {f"{names[0]}.{k}": v for k, v in state.items()}
    return state


def _micro_batch(config: PretrainConfig, runtime: Runtime) -> int:
    """Cubes per process per forward: batch_size / (processes x accumulate), exactly."""
    parts = runtime.world * config.accumulate
    if config.batch_size % parts:
        raise SemgenError(
            f"--batch-size {config.batch_size} must be divisible by processes x "
            f"--accumulate = {runtime.world} x {config.accumulate}"
        )
    return config.batch_size // parts
