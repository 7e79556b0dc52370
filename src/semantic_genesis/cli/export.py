"""Export a checkpoint for use outside this package.

- ``--encoder-only``: our checkpoint format holding only the encoder (``down_tr*``) and a model
  card for ``encoder3d`` with ``n_classes=0`` (a feature extractor); load it with
  ``create_model("encoder3d", pretrained=PATH, n_classes=..., strict=False)`` to add a new head
  (``strict=False``: the new head's weights are not in the file).
- ``--torchscript``: a traced TorchScript module (eval mode, fixed input shape) with the model
  card stored as the extra file ``model_card.json``. PyTorch deprecates TorchScript; prefer
  ONNX for new deployments.
- ``--onnx``: ONNX through ``torch.onnx.export`` (needs the optional extra:
  ``pip install 'semantic-genesis[onnx]'``).
- ``--hf DIR``: a Hugging Face-format folder (``config.json`` = the model card,
  ``model.safetensors``, ``README.md`` model card); load it with ``create_model(None,
  pretrained=DIR)`` or, once on the Hub, ``pretrained="hf-hub:ORG/NAME"`` (bridges/hf.py).
- ``--monai-bundle DIR``: a MONAI bundle (``configs/metadata.json``, ``configs/inference.json``,
  ``models/model.pt``, a ``README.md`` in ``docs``) running sliding-window inference with the card's
  patch size and intensity recipe (bridges/monai_bundle.py).

The checkpoint must load strictly into the architecture its card describes (or the one given
with ``--arch`` etc.); check with ``semgen info`` first.

The output is one file, written atomically (a temporary name, then a rename): a failed or killed
export leaves no partial file. It must not be the checkpoint itself (``export X --out X`` once
replaced a full model by its encoder), and an existing file is replaced only with
``--overwrite``: a single file carries no mark of who wrote it, so export never assumes it may.
The folder formats (``--hf``, ``--monai-bundle``) name their folder instead of ``--out`` and
claim it like every verb's output folder (new, empty, or made by the same export).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import io
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import psutil

from semantic_genesis.cli.info import add_architecture_arguments, apply_overrides, architecture
from semantic_genesis.utils.errors import SemgenError

ONNX_HINT = "ONNX export needs the optional extra: pip install 'semantic-genesis[onnx]'"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_architecture_arguments(parser)
    parser.add_argument(
        "--out", type=Path, help="output file (never the checkpoint itself); the formats that "
        "name their own output (--nnunet OUT.pth) do not take it"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace --out if it already exists"
    )
    kind = parser.add_mutually_exclusive_group(required=True)
    kind.add_argument("--encoder-only", action="store_true", help="encoder weights + card (.pt)")
    kind.add_argument("--torchscript", action="store_true", help="traced TorchScript (.pt)")
    kind.add_argument("--onnx", action="store_true", help="ONNX graph (.onnx)")
    kind.add_argument("--hf", type=Path, metavar="DIR", help="Hugging Face-format folder: "
                      "config.json, model.safetensors, README.md (bridges/hf.py)")
    kind.add_argument("--monai-bundle", type=Path, metavar="DIR", help="MONAI bundle folder: "
                      "configs/, models/model.pt, docs (bridges/monai_bundle.py)")
    kind.add_argument("--nnunet", type=Path, metavar="OUT.pth", help=(
        "pre-trained weights for nnUNetv2_train -pretrained_weights (a checkpoint of "
        "--backbone nnunet; bridges/nnunet.py)"))
    parser.add_argument("--nnunet-plans", type=Path, metavar="PLANS.json", help=(
        "with --nnunet: check the weights against the target's plans (nnU-Net's loader's "
        "checks, before nnUNetv2_train runs them)"))
    parser.add_argument("--nnunet-configuration", metavar="NAME", help=(
        "with --nnunet-plans: the configuration to check (default: pre-training's)"))
    parser.add_argument(
        "--input-shape",
        type=int,
        nargs="+",
        metavar="N",
        help="spatial input size for tracing (default: the card's patch size)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=1, help="batch size for tracing (1 or more)"
    )


def _example_input(model: Any, card: Any, args: argparse.Namespace) -> Any:
    import torch

    dims = model.spatial_dims
    if args.batch_size < 1:
        raise SemgenError(f"--batch-size must be at least 1, got {args.batch_size}")
    shape = tuple(args.input_shape or card.patch_size[:dims])
    multiple = getattr(model, "size_multiple", 8)  # 2 ** the backbone's poolings
    if len(shape) != dims or any(s < multiple or s % multiple for s in shape):
        raise SemgenError(
            f"--input-shape must be {dims} sizes, each a multiple of {multiple}"
            f"{' (16 is safer)' if multiple == 8 else ''}, got {list(shape)}"
        )
    # the first level's activations: about 4 x width channels of the input's size, float32
    need = 4 * args.batch_size * math.prod(shape) * (model.in_channels + 4 * model.width)
    available = psutil.virtual_memory().available
    if need > available:
        raise SemgenError(
            f"--input-shape {' '.join(map(str, shape))} x --batch-size {args.batch_size} needs "
            f"about {need / 1e9:,.1f} GB to trace, more than the {available / 1e9:,.1f} GB of "
            "memory available: choose a smaller --input-shape"
        )
    return torch.zeros((args.batch_size, model.in_channels) + shape)


def _output_names(model: Any) -> list[str]:
    from semantic_genesis.models import EncoderClassifier, YNet3D

    if isinstance(model, YNet3D):
        return ["segmentation", "classification"]
    return ["logits" if isinstance(model, EncoderClassifier) else "segmentation"]


def export_encoder(model: Any, card: Any, out: Path, source: str) -> Path:
    """Write the encoder alone as an ``encoder{2,3}d`` feature extractor checkpoint."""
    from semantic_genesis.models import create_model, save_model
    from semantic_genesis.models.registry import backbone_model

    family = getattr(model, "backbone_name", "reference")  # the same backbone's encoder role
    name = f"encoder{model.spatial_dims}d" if family == "reference" else backbone_model(
        family, "encoder")
    own = getattr(model, "card_kwargs", None)  # a family's own arguments (the nnunet plans)
    encoder = create_model(
        name, in_channels=model.in_channels, n_classes=0, width=model.width, norm=model.norm,
        **(own() if callable(own) else {}),
    )
    encoder.load_state_dict(model.encoder_state_dict())
    notes = {**card.notes, "exported_from": source, "export": "encoder-only"}
    return save_model(
        out, encoder, dataclasses.replace(card, architecture=name, n_classes=0, notes=notes)
    )


def export_traced(model: Any, card: Any, out: Path, example: Any, onnx: bool) -> Path:
    """TorchScript (traced) or ONNX file of ``model`` in eval mode, written atomically.

    TorchScript is built in memory and written with Python's ``write``: ``torch.jit.save``
    aborts the whole process on a full disk, Python raises ENOSPC (one line from the CLI).
    """
    import torch

    from semantic_genesis.utils.atomic import atomic_path

    model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if onnx:
            with atomic_path(out) as tmp:
                torch.onnx.export(
                    model,
                    (example,),
                    str(tmp),
                    input_names=["image"],
                    output_names=_output_names(model),
                    external_data=False,
                )
            return out
        traced = torch.jit.trace(model, example, check_trace=False)
        _check_same(model(example), traced(example))
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={"model_card.json": json.dumps(card.to_dict())})
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        fh.write(buffer.getbuffer())
    return out


def _check_same(expected: Any, got: Any) -> None:
    """One comparison instead of ``torch.jit.trace``'s slow ``check_trace``."""
    import torch

    pairs = zip(expected, got, strict=True) if isinstance(expected, tuple) else [(expected, got)]
    if not all(torch.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in pairs):
        raise SemgenError("the traced module does not reproduce the model's output")


def check_out(checkpoint: Path, out: Path, overwrite: bool) -> None:
    """Refuse an ``--out`` that is the checkpoint (or a folder), or an existing file without
    ``overwrite``."""
    checkpoint, out = Path(checkpoint), Path(out)
    if out.exists() and checkpoint.exists() and os.path.samefile(out, checkpoint):
        raise SemgenError(
            "--out is the checkpoint being exported: it would be replaced; choose another file",
            out,
        )
    if out.is_dir():
        raise SemgenError("--out is a folder; name the file to write", out)
    if out.exists() and not overwrite:
        raise SemgenError("already exists; pass --overwrite to replace it", out)


def run(args: argparse.Namespace) -> int:
    from semantic_genesis.bridges.convert import FOLDER_KINDS, write_folder
    from semantic_genesis.models import (
        ModelCard,
        card_from_model,
        create_model,
        load_weights,
        read_weights,
    )
    from semantic_genesis.pretrain.distributed import is_out_of_memory
    from semantic_genesis.utils.outdir import disk_error
    from semantic_genesis.utils.progress import say

    if args.nnunet is not None:
        return _run_nnunet(args)
    folder = next((k for k in FOLDER_KINDS if getattr(args, k, None) is not None), None)
    if folder is not None and args.out is not None:
        raise SemgenError(f"--{folder.replace('_', '-')} names its output folder itself; "
                          "leave out --out")
    if folder is None and args.out is None:
        raise SemgenError("--out is required with --encoder-only, --torchscript and --onnx")
    apply_overrides(args)
    if args.onnx and not all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript")):
        raise SemgenError(ONNX_HINT)
    if folder is None:
        check_out(args.checkpoint, args.out, args.overwrite)
    src = read_weights(args.checkpoint)
    kwargs, _ = architecture(args, src)
    model = create_model(**kwargs)
    load_weights(model, src, strict=True)
    card = ModelCard.from_dict(src.card) if src.card else card_from_model(model)
    if folder is not None:  # --hf, --monai-bundle: a claimed folder (bridges/convert.py)
        write_folder(model, card, folder, getattr(args, folder), args.checkpoint)
        return 0
    try:
        if args.encoder_only:
            export_encoder(model, card, args.out, str(args.checkpoint))
        else:
            export_traced(model, card, args.out, _example_input(model, card, args), args.onnx)
    except OSError as exc:  # name --out, not the temporary file the fault hit
        error = disk_error(OSError(exc.errno, exc.strerror), args.out)
        raise (error if isinstance(error, SemgenError) else exc) from None
    except RuntimeError as exc:
        if not is_out_of_memory(exc):
            raise
        raise SemgenError(
            "out of memory while tracing: choose a smaller --input-shape or --batch-size"
        ) from None
    say(f"wrote {args.out}")
    return 0


def _run_nnunet(args: argparse.Namespace) -> int:
    """``--nnunet OUT.pth``: nnU-Net's pre-trained-weights file (bridges/nnunet.py)."""
    from semantic_genesis.bridges.nnunet import export_nnunet
    from semantic_genesis.utils.outdir import disk_error
    from semantic_genesis.utils.progress import say

    if args.out is not None:
        raise SemgenError("--nnunet names its output file itself; leave out --out")
    check_out(args.checkpoint, args.nnunet, args.overwrite)
    try:
        export_nnunet(args.checkpoint, args.nnunet, args.nnunet_plans, args.nnunet_configuration)
    except OSError as exc:  # name the output, not the temporary file the fault hit
        error = disk_error(OSError(exc.errno, exc.strerror), args.nnunet)
        raise (error if isinstance(error, SemgenError) else exc) from None
    say(f"wrote {args.nnunet} (nnUNetv2_train ... -pretrained_weights {args.nnunet})")
    return 0
