"""Training-step throughput of the reference architecture: the engine's CPU configuration
against plain fp32 eager with the standard memory layout, timed in the same run (issue 6).

One step is what ``semgen pretrain`` does per batch for Semantic Genesis: YNet3D forward
(44 classes by default), λ_rec·MSE(sigmoid(restoration), target) + λ_cls·CE(logits, class),
backward and Adam, built from the engine's own ``PretrainNet`` and ``MethodLoss`` on random
cubes (the cost does not depend on the values; perturbations are not timed).

- ``baseline``: fp32, eager, NCDHW (``torch.contiguous_format``), Adam's default
  implementation — the reference's computation;
- ``optimised``: the engine's CPU defaults — channels-last-3d model and inputs, the decoder's
  up-sampling computed as sub-pixel GEMMs (engine/speed.py), fused Adam, denormals flushed — plus
  ``--compile`` / ``--amp bf16`` when asked.

Steps are interleaved (baseline, optimised, baseline, ...) after warm-up, so the load of a
shared machine hits both alike, and the medians are compared. The number of threads is
torch's default unless ``--threads`` is given. ``gflop_per_step`` is what each configuration
executes (counted with torch's FlopCounterMode; the fast decoder needs fewer operations for the
same function), ``gflop_per_s`` is that over the step time, and ``reference_gflop_per_s`` the
reference's operation count over the step time (the equal-FLOPs view of method.md §14).

    python benchmarks/bench_train.py --width 32 --batch-size 2 --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable

import torch


def count_flops(
    width: int, classes: int, batch: int, patch: tuple[int, int, int], fast_decoder: bool
) -> float:
    """FLOPs (2 per multiply-add) one forward + backward executes, counted on the meta device
    (the fast decoder computes the same function with fewer operations)."""
    from torch.utils.flop_counter import FlopCounterMode

    from semantic_genesis.models import create_model
    from semantic_genesis.pretrain.speed import use_fast_decoder

    with torch.device("meta"):
        model = create_model("ynet3d", n_classes=classes, width=width)
        if fast_decoder:
            use_fast_decoder(model)
        x = torch.rand(batch, 1, *patch)
    with FlopCounterMode(display=False) as counter:
        seg, cls = model(x)
        (seg.sum() + cls.sum()).backward()
    return float(counter.get_total_flops())


def make_step(optimised: bool, args: argparse.Namespace) -> Callable[[], None]:
    """A closure running one training step of the chosen configuration."""
    from semantic_genesis.pretrain.config import PretrainConfig, resolve_method
    from semantic_genesis.pretrain.losses import MethodLoss
    from semantic_genesis.pretrain.methods import Batch
    from semantic_genesis.pretrain.network import build_network
    from semantic_genesis.pretrain.speed import use_fast_decoder

    config = PretrainConfig(width=args.width, channels_last=optimised)
    torch.manual_seed(0)
    method = resolve_method(config)
    net = build_network(config, method, args.classes)
    if optimised:
        use_fast_decoder(net)
    model = torch.compile(net) if optimised and args.compile else net
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, fused=optimised or None)
    loss_fn = MethodLoss(method, config)
    x = torch.rand(args.batch_size, 1, *args.patch)
    labels = torch.randint(0, args.classes, (args.batch_size,))
    if optimised and config.channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    amp = optimised and args.amp == "bf16"

    def step() -> None:
        torch.set_flush_denormal(optimised)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            out = model(x)
        loss, _ = loss_fn(out, Batch(x, labels, x, x))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--classes", type=int, default=44)
    p.add_argument("--patch", type=int, nargs=3, default=(64, 64, 32))
    p.add_argument("--steps", type=int, default=3, help="timed steps per configuration")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per configuration")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--compile", action="store_true", help="also torch.compile the optimised one")
    p.add_argument(
        "--amp",
        choices=("none", "bf16"),
        default="none",
        help="autocast of the optimised one (bf16 is slow on CPUs without bf16)",
    )
    p.add_argument("--json", action="store_true", help="print JSON only")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    flops = {
        name: count_flops(
            args.width,
            args.classes,
            args.batch_size,
            tuple(args.patch),
            fast_decoder=name == "optimised",
        )
        for name in ("baseline", "optimised")
    }
    steps = {"baseline": make_step(False, args), "optimised": make_step(True, args)}
    for _ in range(args.warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for i in range(args.steps):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
        if not args.json:
            print(
                f"step {i + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()),
                flush=True,
            )
    result = {
        "benchmark": "train_step",
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "width": args.width,
        "batch_size": args.batch_size,
        "classes": args.classes,
        "patch": list(args.patch),
        "optimised_config": {
            "channels_last_3d": True,
            "fast_decoder": True,
            "fused_adam": True,
            "flush_denormal": True,
            "compile": args.compile,
            "amp": args.amp,
        },
    }
    for name, ts in times.items():
        med = statistics.median(ts)
        result[name] = {
            "s_per_step": round(med, 3),
            "cubes_per_s": round(args.batch_size / med, 4),
            "gflop_per_step": round(flops[name] / 1e9, 1),
            "gflop_per_s": round(flops[name] / med / 1e9, 1),
            "reference_gflop_per_s": round(flops["baseline"] / med / 1e9, 1),
            "steps_s": [round(t, 3) for t in ts],
        }
    result["speedup"] = round(
        result["baseline"]["s_per_step"] / result["optimised"]["s_per_step"], 3
    )
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
