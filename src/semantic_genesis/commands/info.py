"""Print what a checkpoint holds: its model card, the parameter counts of the architecture it
describes (encoder / decoder / head / total) and the load report of its weights against that
architecture.

Works on our checkpoints, the official Semantic Genesis / Models Genesis ``.pt`` files, plain
state dicts and Keras ``.h5`` weights. The architecture comes from the model card, or is guessed
from the keys; ``--arch`` and the other options override it, e.g. to check that a file loads
into ``encoder3d`` with 2 classes. Files that would need unsafe unpickling are refused.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from semantic_genesis.utils.errors import SemgenError

#: Options that override the architecture (argparse dest -> create_model argument).
ARCH_OPTIONS = {
    "arch": "name",
    "width": "width",
    "in_channels": "in_channels",
    "n_classes": "n_classes",
    "out_channels": "out_channels",
    "norm": "norm",
    "head": "head",
}


def add_architecture_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that choose or override the architecture (shared with `semgen export`)."""
    parser.add_argument("checkpoint", help="a .pt / .pth / .h5 weights file")
    parser.add_argument("--arch", help="registered model name (default: the card's, or guessed)")
    parser.add_argument("--width", type=int, help="base channels")
    parser.add_argument("--in-channels", type=int, help="input channels")
    parser.add_argument("--n-classes", type=int, help="head classes")
    parser.add_argument("--out-channels", type=int, help="segmentation outputs")
    parser.add_argument("--norm", choices=("batch", "batch_always", "instance", "group"))
    parser.add_argument("--head", choices=("torch", "keras", "mlp"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_architecture_arguments(parser)
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 2 unless every key loads"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")


def architecture(args: argparse.Namespace, src: Any) -> tuple[dict[str, Any], str]:
    """``create_model`` arguments for ``src`` (a SourceWeights) and where they came from."""
    from semantic_genesis.models import ModelCard, guess_model_kwargs

    if src.card:
        kwargs, origin = ModelCard.from_dict(src.card).model_kwargs(), "model card"
    else:
        try:
            kwargs, origin = guess_model_kwargs(src.state), "guessed from the keys"
        except SemgenError:
            if args.arch is None:
                raise
            kwargs, origin = {}, "options"
    overrides = {
        ARCH_OPTIONS[k]: v for k, v in vars(args).items() if k in ARCH_OPTIONS and v is not None
    }
    if overrides:
        origin += " + options" if kwargs else ""
    kwargs.update(overrides)
    return kwargs, origin


def run(args: argparse.Namespace) -> int:
    from semantic_genesis.models import create_model, load_weights, read_weights

    src = read_weights(args.checkpoint)
    kwargs, origin = architecture(args, src)
    model = create_model(**kwargs)
    report = load_weights(model, src)
    counts = model.parameter_counts()
    if args.json:
        print(
            json.dumps(
                {
                    "checkpoint": str(args.checkpoint),
                    "format": src.format,
                    "model_card": src.card,
                    "other_entries": src.extras,
                    "architecture": kwargs,
                    "parameters": counts,
                    "load_report": report.to_dict(),
                },
                indent=2,
                default=str,
            )
        )
    else:
        print(f"checkpoint: {args.checkpoint} [{src.format}]")
        if src.card:
            print("model card:")
            for key, value in src.card.items():
                print(f"  {key:<18}{value}")
        else:
            print("model card: none")
        if src.extras:
            print(f"other entries: {', '.join(map(str, src.extras))}")
        args_text = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k != "name")
        print(f"architecture ({origin}): {kwargs['name']}({args_text})")
        print("parameters: " + "  ".join(f"{k} {v:,}" for k, v in counts.items()))
        print(report)
    if args.strict and not report.ok:
        raise SemgenError(
            "weights do not load strictly: " + "; ".join(report.problems()), args.checkpoint
        )
    return 0
