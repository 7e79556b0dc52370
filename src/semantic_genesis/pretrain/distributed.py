"""One process or many: device choice, DDP wrapping, samplers and metric reduction.

Under ``torchrun`` every process trains on its shard of each global batch (DistributedSampler;
gloo on CPU, nccl on GPU) and only rank 0 writes files. Without torchrun the same code runs as
rank 0 of 1 with the same sampler, so the data order is the same function of (seed, epoch).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from semantic_genesis.utils.dist import init_distributed, local_rank
from semantic_genesis.utils.errors import SemgenError


@dataclass(frozen=True)
class Runtime:
    """Where this process runs and which share of the work it does."""

    device: torch.device
    rank: int = 0
    world: int = 1
    owns_group: bool = False  # this run created the process group (and so destroys it)

    @property
    def distributed(self) -> bool:
        """True with more than one process."""
        return self.world > 1

    @property
    def main(self) -> bool:
        """True on the process that writes outputs."""
        return self.rank == 0


def setup_runtime(device: str = "auto") -> Runtime:
    """Pick the device and join the process group when launched by torchrun."""
    if device == "auto":
        device = f"cuda:{local_rank()}" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise SemgenError(f"device '{device}' asked for, but no CUDA GPU is available")
        torch.cuda.set_device(dev)
    existed = dist.is_available() and dist.is_initialized()
    if init_distributed("nccl" if dev.type == "cuda" else "gloo"):
        return Runtime(dev, dist.get_rank(), dist.get_world_size(), owns_group=not existed)
    return Runtime(dev)


def shutdown(runtime: Runtime) -> None:
    """Leave the process group if this run created it (a caller's own group stays)."""
    if runtime.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def wrap_ddp(model: nn.Module, runtime: Runtime, find_unused: bool) -> nn.Module:
    """DistributedDataParallel around ``model`` when distributed; ``model`` itself otherwise.

    ``find_unused`` must be True when the method leaves part of the backbone out of the graph
    (the decoder for rotation or classification-only pre-training).
    """
    if not runtime.distributed:
        return model
    ids = [runtime.device.index] if runtime.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(
        model, device_ids=ids, find_unused_parameters=find_unused
    )


def no_sync(model: nn.Module, skip: bool) -> contextlib.AbstractContextManager[Any]:
    """DDP's ``no_sync`` (skip the gradient all-reduce) on accumulation micro-batches."""
    if skip and isinstance(model, nn.parallel.DistributedDataParallel):
        return model.no_sync()
    return contextlib.nullcontext()


def all_reduce_sum(t: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    """Sum ``t`` over processes (in place) and return it."""
    if runtime.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_buffers(model: nn.Module, runtime: Runtime) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every process."""
    if runtime.distributed:
        for buf in model.buffers():
            dist.broadcast(buf, src=0)


def gather_objects(obj: Any, runtime: Runtime) -> list[Any]:
    """Every process's ``obj``, in rank order (on every process)."""
    if not runtime.distributed:
        return [obj]
    out: list[Any] = [None] * runtime.world
    dist.all_gather_object(out, obj)
    return out


def train_loader(
    dataset: Dataset, micro_batch: int, runtime: Runtime, seed: int, workers: int
) -> tuple[DataLoader, DistributedSampler, torch.Generator]:
    """Shuffled loader of this rank's shard; order = f(seed, epoch) (call ``set_epoch``).

    Rank r takes positions r, r+W, r+2W... of the epoch's permutation, so the union of the
    ranks' k-th micro-batches is the k-th global batch of a one-process run with the same
    global batch size. The returned generator seeds worker processes; reseed it every epoch.
    """
    sampler = DistributedSampler(
        dataset,
        num_replicas=runtime.world,
        rank=runtime.rank,
        shuffle=True,
        seed=seed,
        drop_last=True,
    )
    gen = torch.Generator()
    loader = DataLoader(
        dataset,
        batch_size=micro_batch,
        sampler=sampler,
        drop_last=True,
        num_workers=workers,
        generator=gen,
        persistent_workers=workers > 0,
        pin_memory=runtime.device.type == "cuda",
    )
    return loader, sampler, gen


class _Shard(torch.utils.data.Sampler[int]):
    """Positions rank, rank+W, ... of a dataset, in order, without padding."""

    def __init__(self, n: int, runtime: Runtime) -> None:
        self.indices = list(range(runtime.rank, n, runtime.world))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def eval_loader(dataset: Dataset, batch: int, runtime: Runtime, workers: int) -> DataLoader:
    """This rank's share of the validation set, in a fixed order (no padding, no shuffle)."""
    return DataLoader(
        dataset,
        batch_size=batch,
        sampler=_Shard(len(dataset), runtime),
        num_workers=workers,
        generator=torch.Generator().manual_seed(0),
        pin_memory=runtime.device.type == "cuda",
    )


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a GPU or CPU allocation failure."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def from_workers(batches: Iterable[Any]) -> Iterator[Any]:
    """Iterate a DataLoader, turning a :class:`SemgenError` raised in a worker process back
    into its one line (the loader re-raises it with the worker's whole traceback as message)."""
    iterator = iter(batches)
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except SemgenError as exc:
            text = str(exc)
            if "Traceback" not in text:
                raise
            last = [ln for ln in text.splitlines() if ln.strip()][-1]
            raise SemgenError(last.split("SemgenError: ", 1)[-1].strip()) from None
        yield item
