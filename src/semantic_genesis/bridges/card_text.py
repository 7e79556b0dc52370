"""The human-readable model card (``README.md``) written next to exported weights.

One text for the Hugging Face folder (``README.md``, with the Hub's YAML header) and the MONAI
bundle (``README.md`` in its ``docs`` folder): what the weights are (method, architecture), what they were made
from (data fingerprint, number of cases), how (the recipe kept in the card's notes), how well
they did (the fine-tuning metrics when the run folder has them), what they are for, their limits
and how to load them. Everything comes from the :class:`~semantic_genesis.models.ModelCard` (and
``metrics.json``): nothing is invented.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from semantic_genesis.models.card import ModelCard

PAPER = ("Haghighi F., Hosseinzadeh Taher M. R., Zhou Z., Gotway M. B., Liang J. *Learning "
         "Semantics-enriched Representation via Self-discovery, Self-classification, and "
         "Self-restoration*. MICCAI 2020.")

#: metrics.json keys worth showing (finetune/run.py ``_metrics``)
_METRIC_KEYS = ("task", "metric", "score", "test", "label_fraction", "epochs_run", "best_epoch")


def find_metrics(checkpoint: str | Path) -> dict[str, Any] | None:
    """The ``metrics.json`` of the fine-tuning run a checkpoint belongs to, if any.

    ``semgen finetune`` writes it in its output folder, next to ``model.pt`` and above
    ``checkpoints/``; an unreadable file is ignored (the card then has no metrics section).
    """
    path = Path(checkpoint).resolve()
    for folder in (path.parent, path.parent.parent):
        try:
            data = json.loads((folder / "metrics.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and "score" in data:
            return {k: data[k] for k in _METRIC_KEYS if k in data}
    return None


def _is_pretrained(card: ModelCard) -> bool:
    return not card.pretext.startswith("finetune")


def _what(card: ModelCard) -> list[str]:
    kind = (f"self-supervised pre-training ({card.notes.get('method', card.method or card.pretext)})"
            if _is_pretrained(card) else f"fine-tuning ({card.pretext.removeprefix('finetune-')})")
    return [
        "## Model",
        "",
        f"Weights of a `{card.architecture}` network (backbone family `{card.backbone}`, width "
        f"{card.width}, {card.norm} normalisation, {card.in_channels} input channel(s), "
        f"{card.out_channels} output channel(s), {card.n_classes} classes in the head) made by "
        f"{kind} with [semantic-genesis](https://pypi.org/project/semantic-genesis/) "
        f"{card.package_version}.",
        "",
        f"Method: Semantic Genesis — {PAPER} Self-discovery of anatomical patterns, "
        "self-classification of those patterns and self-restoration of perturbed patches "
        f"(pretext `{card.pretext}`, semantic add-on {'on' if card.semantic else 'off'}).",
        "",
    ]


def _data(card: ModelCard) -> list[str]:
    window = ("native intensities" if card.intensity_window is None
              else f"intensities clipped to {list(card.intensity_window)} and scaled to [0, 1]")
    spacing = "native spacing" if card.spacing is None else f"spacing {list(card.spacing)} mm"
    lines = ["## Data and input", "",
             f"- modality: {card.modality}; {window}; {spacing}; patches of "
             f"{list(card.patch_size)} voxels (x, y, z)."]
    if card.data_fingerprint:
        lines.append(f"- data fingerprint: `{card.data_fingerprint}`")
    if card.seen_cases:
        lines.append(f"- cases seen in training: {len(card.seen_cases)} (their hashed ids are in "
                     "`config.json`, `seen_cases`; evaluate only on other cases)")
    return [*lines, ""]


def _recipe(card: ModelCard) -> list[str]:
    if not card.notes:
        return []
    rows = [f"- {key}: `{json.dumps(value, default=str)}`" for key, value in card.notes.items()]
    return ["## Recipe", "", "From the checkpoint's model card (`notes`):", "", *rows, ""]


def _metrics(metrics: dict[str, Any] | None) -> list[str]:
    if not metrics:
        return ["## Metrics", "", "None recorded with these weights (pre-trained weights are "
                "judged by the target tasks they are fine-tuned on: `semgen benchmark`).", ""]
    rows = [f"- {key}: `{json.dumps(value, default=str)}`" for key, value in metrics.items()]
    return ["## Metrics", "", "From the fine-tuning run's `metrics.json`:", "", *rows, ""]


def _use(card: ModelCard, load: str) -> list[str]:
    use = ("initialise a 3D network for a target task (segmentation or classification) on "
           f"{card.modality.upper()} volumes, then fine-tune it" if _is_pretrained(card)
           else "research use on data like the fine-tuning data")
    return [
        "## Intended use", "", f"Research: {use}. Not a medical device; not for diagnosis.", "",
        "## Limits", "",
        "- Trained only on the data described above: other scanners, protocols, modalities, "
        "spacings or intensity ranges may need fine-tuning first.",
        "- Inputs must follow the recipe above (intensity scaling, spacing, orientation of "
        "the volume axes as `semgen prepare` reads them); every spatial size must be a multiple "
        "of the network's down-sampling factor.",
        "", "## How to load", "", load, "",
    ]


def card_markdown(card: ModelCard, load: str, metrics: dict[str, Any] | None = None,
                  title: str = "") -> str:
    """The model card text: model, data, recipe, metrics, intended use, limits, how to load.

    Args:
        card: the weights' model card.
        load: the "How to load" section's body (markdown, e.g. a code block).
        metrics: fine-tuning metrics (:func:`find_metrics`), or None.
        title: the first heading (default: the architecture and pretext).
    """
    heading = title or f"Semantic Genesis: {card.architecture} ({card.pretext})"
    parts = [f"# {heading}", "", *_what(card), *_data(card), *_recipe(card), *_metrics(metrics),
             *_use(card, load), "## Citation", "", PAPER, ""]
    return "\n".join(parts)
