"""Convert official Semantic Genesis / Models Genesis weights into the Hugging Face format.

``semgen convert SRC OUT_DIR`` reads SRC (the released ``.pt`` of Semantic Genesis or Models
Genesis, a Keras ``.h5``, or any checkpoint ``semgen info`` reads), guesses its architecture from
the keys (the options below override it), loads it strictly, prints the load report, and writes
OUT_DIR as ``semgen export --hf`` does: ``config.json`` (the model card), ``model.safetensors``
and ``README.md``. Load it with ``create_model(None, pretrained=OUT_DIR)``: no pickle involved.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from semantic_genesis.cli.info import (
    ARCH_OPTIONS,
    add_architecture_arguments,
    apply_overrides,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_architecture_arguments(parser)
    parser.add_argument("out", type=Path, metavar="OUT_DIR",
                        help="output folder (new, empty, or an earlier convert's)")


def run(args: argparse.Namespace) -> int:
    from semantic_genesis.bridges.convert import convert

    apply_overrides(args)
    overrides = {ARCH_OPTIONS[dest]: getattr(args, dest) for dest in ARCH_OPTIONS
                 if getattr(args, dest, None) is not None}
    print(convert(args.checkpoint, args.out, **overrides))  # the load report
    return 0
