"""Folder exports (``semgen export --hf`` / ``--monai-bundle``) and ``semgen convert``.

``semgen convert SRC OUT`` turns the official Semantic Genesis / Models Genesis ``.pt`` files
and the Keras ``.h5`` files into the Hugging Face format (:mod:`~semantic_genesis.bridges.hf`):
the architecture is guessed from the keys (``models.build.guess_model_kwargs``; options override
it), the weights are loaded strictly through ``load_weights`` (whose report is printed and kept
in the card's notes), and the folder is written as ``export --hf`` writes it. A file that
already carries our model card converts too (its card is kept).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from semantic_genesis.bridges.card_text import find_metrics
from semantic_genesis.models.card import ModelCard
from semantic_genesis.models.weights import LoadReport
from semantic_genesis.utils.outdir import claim_output
from semantic_genesis.utils.progress import say

Writer = Callable[..., Path]


def _writers() -> dict[str, tuple[str, Writer]]:
    """Folder kind (the ``semgen export`` option's dest) -> (the verb a folder marker names,
    writer)."""
    from semantic_genesis.bridges.hf import export_hf
    from semantic_genesis.bridges.monai_bundle import export_monai_bundle

    return {"hf": ("export --hf", export_hf),
            "monai_bundle": ("export --monai-bundle", export_monai_bundle)}


FOLDER_KINDS = ("hf", "monai_bundle")


def write_folder(model: nn.Module, card: ModelCard, kind: str, out: str | Path,
                 checkpoint: str | Path, verb: str | None = None) -> Path:
    """Write ``model`` as a ``kind`` folder (``hf`` or ``monai_bundle``) into ``out``.

    ``out`` is claimed (utils/outdir.py): a new or empty folder, or one the same export made;
    never one holding ``checkpoint``. The fine-tuning metrics next to ``checkpoint`` go into the
    model card text when there are any.
    """
    marker, writer = _writers()[kind]
    with claim_output(out, verb or marker, inputs=[checkpoint],
                      settings={"checkpoint": str(Path(checkpoint).resolve())}):
        writer(model, card, out, find_metrics(checkpoint))
    say(f"wrote {out}")
    return Path(out)


def _origin(model: nn.Module, report: LoadReport) -> dict[str, Any]:
    """What a converted file was, for the card: Semantic Genesis files keep the self-
    classification head (``clc_out``), Models Genesis files are a U-Net alone (method.md §6)."""
    semantic = any(k.startswith("clc_out.") for k in report.matched)
    return {"semantic": semantic,
            "notes": {"converted_from": Path(report.source).name,
                      "source_format": report.format,
                      "release": "Semantic Genesis" if semantic else "Models Genesis",
                      "load_report": {"matched": len(report.matched),
                                      "adapted": len(report.adapted),
                                      "dropped": len(report.dropped),
                                      "missing": len(report.missing),
                                      "notes": report.notes}}}


def convert(source: str | Path, out: str | Path, **overrides: Any) -> LoadReport:
    """Convert ``source`` (an official ``.pt`` / ``.h5``, or any file ``read_weights`` reads)
    into a Hugging Face-format folder ``out``; return the load report (``semgen convert``
    prints it).

    Args:
        source: the weights file.
        out: the output folder (claimed: new, empty, or made by ``semgen convert``).
        **overrides: ``create_model`` arguments that win over the card or the guess (``name``,
            ``width``, ``n_classes`` ...).

    Raises:
        SemgenError: an unreadable file, or weights that do not fit the architecture strictly.
    """
    from semantic_genesis.models import load_model

    model = load_model(source, strict=True, **overrides)
    report: LoadReport = model.load_report
    card = model.model_card
    if "model_card" not in _card_keys(report):
        origin = _origin(model, report)
        card = dataclasses.replace(card, semantic=origin["semantic"],
                                   notes={**card.notes, **origin["notes"]})
    write_folder(model, card, "hf", out, source, verb="convert")
    return report


def _card_keys(report: LoadReport) -> set[str]:
    """``{"model_card"}`` when the source carried our model card (the report notes it)."""
    return {"model_card"} if any(n.startswith("model card:") for n in report.notes) else set()
