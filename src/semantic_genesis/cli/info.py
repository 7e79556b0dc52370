"""Print what a checkpoint holds: its model card, the parameter counts of the architecture it
describes (encoder / decoder / head / total) and the load report of its weights against that
architecture.

Works on our checkpoints, the official Semantic Genesis / Models Genesis ``.pt`` files, plain
state dicts and Keras ``.h5`` weights. The architecture comes from the model card, or is guessed
from the keys; ``--arch`` and the other options override it, e.g. to check that a file loads
into ``encoder3d`` with 2 classes. Files that would need unsafe unpickling are refused.

``semgen info --system`` prints this installation instead: the versions of the package, Python
and the libraries that change results, the devices (CPU cores, CUDA, MPS) and whether the
perturbations' compiled CPU kernels were built and are in use (and if not, why).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

from semantic_genesis.cli.options import add_config_options, given_settings
from semantic_genesis.models.names import HEADS, NORMS
from semantic_genesis.utils.config import setting, validate
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


@dataclass
class ArchitectureOverrides:
    """What `semgen info` and `semgen export` may change in a checkpoint's architecture: their
    only settings (``--config``/``--set`` take these names). None keeps the card's value."""

    arch: str | None = setting(None, help="registered model name (default: the card's, or "
                               "guessed)")
    width: int | None = setting(None, help="base channels (default: the card's)")
    in_channels: int | None = setting(None, help="input channels (default: the card's)")
    n_classes: int | None = setting(None, help="head classes (default: the card's)")
    out_channels: int | None = setting(None, help="segmentation outputs (default: the "
                                       "card's)")
    norm: str | None = setting(None, choices=(None, *NORMS), help="normalisation layers "
                               "(default: the card's)")
    head: str | None = setting(None, choices=(None, *HEADS), help="classification head layout "
                               "(default: the card's)")

    def __post_init__(self) -> None:
        validate(self)


def add_architecture_arguments(
    parser: argparse.ArgumentParser, checkpoint_optional: bool = False
) -> None:
    """Options that choose or override the architecture (shared with `semgen export`), one per
    :class:`ArchitectureOverrides` field.

    Their default is "not given" (absent from the namespace), so the help does not print
    ``(default: None)`` after saying that the model card decides.
    """
    if checkpoint_optional:
        parser.add_argument("checkpoint", nargs="?", default=argparse.SUPPRESS,
                            help="a .pt / .pth / .h5 weights file (not with --system)")
    else:
        parser.add_argument("checkpoint", help="a .pt / .pth / .h5 weights file")
    add_config_options(parser, ArchitectureOverrides)
    parser.epilog = ("--config and --set take the architecture options' names (arch, width, "
                     "in_channels, n_classes, out_channels, norm, head); nothing else is a "
                     "setting of this verb, and it saves no config.")


def apply_overrides(args: argparse.Namespace) -> None:
    """Put the architecture overrides of ``--config``/``--set`` into ``args`` (checked, and
    below the options given on the command line)."""
    for name, value in given_settings(ArchitectureOverrides, args).items():
        setattr(args, name, value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_architecture_arguments(parser, checkpoint_optional=True)
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 2 unless every key loads"
    )
    parser.add_argument("--system", action="store_true",
                        help="print this installation instead of a checkpoint: versions, "
                             "devices, and whether the compiled CPU kernels are built and used")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")


def system_info() -> dict[str, Any]:
    """Versions, devices and the compiled kernels' state of this installation."""
    import platform
    import sys

    from semantic_genesis import __version__
    from semantic_genesis.utils.provenance import hardware, library_versions, native_kernels

    return {
        "semantic_genesis": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "libraries": library_versions(),
        "devices": hardware(),
        "native_kernels": native_kernels(),
    }


def _print_system(info: dict[str, Any]) -> None:
    hw, kernels = info["devices"], info["native_kernels"]
    print(f"semantic-genesis {info['semantic_genesis']}")
    print(f"python            {info['python']} ({info['platform']})")
    for name, version in info["libraries"].items():
        print(f"{name:<18}{version}")
    gpus = ", ".join(hw.get("gpus", [])) or "none"
    print(f"CPU               {hw['cpu_count']} usable cores, {hw['memory_gib']} GiB memory")
    print(f"CUDA              {'yes: ' + gpus if hw['cuda'] else 'no'}")
    print(f"MPS               {'yes' if hw['mps'] else 'no'}")
    state = "built" if kernels["built"] else "not built"
    state += ", in use" if kernels["in_use"] else ", not in use"
    print(f"CPU kernels       {state}: {kernels['reason']}")


def architecture(args: argparse.Namespace, src: Any) -> tuple[dict[str, Any], str]:
    """``create_model`` arguments for ``src`` (a SourceWeights) and where they came from."""
    from semantic_genesis.models import guess_model_kwargs
    from semantic_genesis.models.registry import model_kwargs_of

    if src.card:  # the card's fields and a family's own arguments (the nnunet plans)
        kwargs, origin = model_kwargs_of(src), "model card"
    else:
        try:
            kwargs, origin = guess_model_kwargs(src.state), "guessed from the keys"
        except SemgenError:
            if getattr(args, "arch", None) is None:
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
    apply_overrides(args)
    if args.system:
        if getattr(args, "checkpoint", None) is not None:
            raise SemgenError("give either a checkpoint or --system, not both", args.checkpoint)
        extra = [k for k in (*ARCH_OPTIONS, "strict") if getattr(args, k, None) not in (None, False)]
        if extra:
            names = ", ".join("--" + k.replace("_", "-") for k in extra)
            raise SemgenError(f"--system takes no checkpoint options ({names})")
        info = system_info()
        if args.json:
            print(json.dumps(info, indent=2))
        else:
            _print_system(info)
        return 0
    if getattr(args, "checkpoint", None) is None:
        raise SemgenError("give a checkpoint to inspect, or --system for this installation")
    return _run_checkpoint(args)


def _run_checkpoint(args: argparse.Namespace) -> int:
    from semantic_genesis.models import create_model, load_weights, read_weights

    src = read_weights(args.checkpoint)
    kwargs, origin = architecture(args, src)
    model = create_model(**kwargs)
    report = load_weights(model, src, allow_nonfinite=True)  # shown as NaN / inf, not refused
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
