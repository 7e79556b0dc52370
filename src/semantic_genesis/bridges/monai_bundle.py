"""A MONAI bundle of a checkpoint: ``monai.bundle`` loads it and runs sliding-window inference.

Layout (MONAI's bundle specification)::

    configs/metadata.json    versions, task, network_data_format (inputs / outputs)
    configs/inference.json   network, preprocessing, inferer, postprocessing, run
    models/model.pt          the network's state dict (a plain dict of tensors)
    docs / README.md         the model card (bridges.card_text)

Run it with ``python -m monai.bundle run --config_file configs/inference.json --meta_file
configs/metadata.json --bundle_root . --dataset_dir SCANS --output_dir OUT`` (design.md,
"MONAI bundles").

- The network is MONAI-native where the weights map exactly: the ``monai-basicunet`` family's
  U-Net role *is* ``monai.networks.nets.BasicUNet`` (same modules, same keys), so the bundle
  needs MONAI alone. Other families (the reference 3D U-Net, nnU-Net's network ...) are built
  with ``semantic_genesis.models.create_model`` through ``_target_``: the bundle then needs this
  package installed, which ``required_packages_version`` in metadata.json says.
- Only the U-Net role is exported (a pre-training YNet loses its classification head): sliding
  windows need one dense output. An encoder has no decoder and is refused.
- Preprocessing follows the card: the volume axes as read (``semgen prepare`` reorients
  nothing), resampling to the card's spacing when it has one, and its intensity recipe
  (io/intensity.py: CT window -> [0, 1], MR percentiles 0.5/99.5 -> [0, 1]).
- Inference is ``SlidingWindowInferer`` with the card's patch size, overlap 0.25 and Gaussian
  blending, as ``finetune/inference.py``. Fine-tuned segmentation weights give a label map (argmax
  of the softmax, or sigmoid > 0.5 for one output); pre-trained weights give the restoration
  (the sigmoid of the decoder, method.md §5.1) saved as a float image.
- ``run`` needs no pytorch-ignite (an optional MONAI dependency): each case is one expression.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from semantic_genesis.bridges.card_text import card_markdown
from semantic_genesis.models.card import ModelCard
from semantic_genesis.models.checkpoint import save_checkpoint
from semantic_genesis.utils.atomic import atomic_write_text, write_json
from semantic_genesis.utils.errors import SemgenError

MONAI_FAMILY = "monai-basicunet"
#: the bundle's files, relative to its root
METADATA, INFERENCE, WEIGHTS = "configs/metadata.json", "configs/inference.json", "models/model.pt"
README = str(Path("docs", "README.md"))
LOGGING = "configs/logging.conf"
#: MONAI's bundles ship a logging config (``monai.bundle.run`` warns without one): to the console
_LOGGING_CONF = """[loggers]
keys=root

[handlers]
keys=consoleHandler

[formatters]
keys=fullFormatter

[logger_root]
level=INFO
handlers=consoleHandler

[handler_consoleHandler]
class=StreamHandler
level=INFO
formatter=fullFormatter
args=(sys.stdout,)

[formatter_fullFormatter]
format=%(asctime)s - %(name)s - %(levelname)s - %(message)s
"""


def unet_role(card: ModelCard) -> str:
    """The registry name of the U-Net role of the card's architecture (decoder, one output).

    Raises:
        SemgenError: a 2D network, an encoder, or an architecture of no backbone family.
    """
    from semantic_genesis.models.registry import _ROLES, backbone_model

    entry = _ROLES.get(card.architecture)
    if entry is None or entry[1] == "encoder":
        raise SemgenError(f"a MONAI bundle runs sliding-window segmentation: it needs a 3D "
                          f"network with a decoder, and {card.architecture!r} is "
                          f"{'an encoder' if entry else 'not a 3D backbone family'}")
    return backbone_model(entry[0], "unet")


def bundle_network(model: nn.Module, card: ModelCard) -> tuple[dict[str, Any], nn.Module]:
    """``network_def`` for inference.json and the network it builds, holding ``model``'s weights.

    The U-Net role is rebuilt from the card and loaded strictly from ``model`` (a head is dropped:
    ``load_weights``); for the MONAI family the weights are then copied into a plain
    ``BasicUNet``, key for key (``load_state_dict(strict=True)``), which proves the mapping exact.
    """
    from semantic_genesis.models import create_model, load_weights
    from semantic_genesis.models.registry import CARD_KWARGS

    name = unet_role(card)
    kwargs = {"width": card.width, "in_channels": card.in_channels,
              "out_channels": card.out_channels, "norm": card.norm}
    if isinstance(card.notes.get(CARD_KWARGS), dict):  # a family's own arguments (plans)
        kwargs.update(card.notes[CARD_KWARGS])
    unet = create_model(name, **kwargs)
    load_weights(unet, {k: v.detach().cpu() for k, v in model.state_dict().items()})
    if card.backbone != MONAI_FAMILY:
        return {"_target_": "semantic_genesis.models.create_model", "name": name, **kwargs}, unet
    from monai.networks.nets import BasicUNet

    from semantic_genesis.models.monai_backbones import _monai_norm

    w = card.width
    features = [w, w, 2 * w, 4 * w, 8 * w, w]
    norm = _monai_norm(card.norm, tuple(features))
    config = {"_target_": "BasicUNet", "spatial_dims": 3, "in_channels": card.in_channels,
              "out_channels": card.out_channels, "features": features,
              "norm": list(norm) if isinstance(norm, tuple) else norm}
    native = BasicUNet(spatial_dims=3, in_channels=card.in_channels,
                       out_channels=card.out_channels, features=tuple(features), norm=norm)
    native.load_state_dict(unet.state_dict(), strict=True)
    return config, native


def _intensity(card: ModelCard) -> dict[str, Any]:
    """io/intensity.py's recipe as a MONAI transform."""
    if card.modality == "mr":
        return {"_target_": "ScaleIntensityRangePercentilesd", "keys": "image", "lower": 0.5,
                "upper": 99.5, "b_min": 0.0, "b_max": 1.0, "clip": True}
    lo, hi = card.intensity_window if card.modality == "ct" and card.intensity_window else (0, 1)
    return {"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": float(lo),
            "a_max": float(hi), "b_min": 0.0, "b_max": 1.0, "clip": True}


def _preprocessing(card: ModelCard) -> list[dict[str, Any]]:
    steps = [{"_target_": "LoadImaged", "keys": "image", "image_only": True},
             {"_target_": "EnsureChannelFirstd", "keys": "image"}]
    if card.spacing is not None:
        steps.append({"_target_": "Spacingd", "keys": "image", "pixdim": list(card.spacing),
                      "mode": "bilinear"})
    return [*steps, _intensity(card),
            {"_target_": "EnsureTyped", "keys": "image", "dtype": "$torch.float32"}]


def _postprocessing(card: ModelCard) -> list[dict[str, Any]]:
    segment = card.pretext.startswith("finetune")
    one = card.out_channels == 1
    steps: list[dict[str, Any]] = [
        {"_target_": "Activationsd", "keys": "pred", "sigmoid": one or not segment,
         "softmax": segment and not one}]
    if segment:
        steps.append({"_target_": "AsDiscreted", "keys": "pred", "argmax": not one,
                      "threshold": 0.5 if one else None})
    if card.spacing is not None:  # back onto the input's own grid
        steps.append({"_target_": "Invertd", "keys": "pred", "transform": "@preprocessing",
                      "orig_keys": "image", "nearest_interp": segment})
    steps.append({"_target_": "SaveImaged", "keys": "pred", "output_dir": "@output_dir",
                  "output_postfix": "seg" if segment else "restored", "resample": False,
                  "separate_folder": False, "print_log": False,
                  "output_dtype": "$numpy.uint8" if segment else "$numpy.float32"})
    return steps


def inference_config(card: ModelCard, network_def: dict[str, Any]) -> dict[str, Any]:
    """The content of ``configs/inference.json``."""
    return {
        "imports": ["$import glob", "$import os", "$import numpy", "$import torch"],
        "bundle_root": ".",
        "output_dir": "$@bundle_root + '/eval'",
        "dataset_dir": "$@bundle_root + '/data'",
        "datalist": "$sorted(glob.glob(os.path.join(@dataset_dir, '*.nii*')))",
        "device": "$torch.device('cuda' if torch.cuda.is_available() else 'cpu')",
        "network_def": network_def,
        "network": "$@network_def.to(@device)",
        "preprocessing": {"_target_": "Compose", "transforms": _preprocessing(card)},
        "dataset": {"_target_": "Dataset", "data": "$[{'image': f} for f in @datalist]",
                    "transform": "@preprocessing"},
        "inferer": {"_target_": "SlidingWindowInferer", "roi_size": list(card.patch_size),
                    "sw_batch_size": 4, "overlap": 0.25, "mode": "gaussian"},
        "postprocessing": {"_target_": "Compose", "transforms": _postprocessing(card)},
        "predict": "$lambda d: dict(d, pred=torch.no_grad()(@inferer)("
                   "d['image'][None].to(@device), @network)[0].cpu())",
        "evaluator": "$lambda: [@postprocessing(@predict(d)) for d in @dataset]",
        "initialize": [
            "$@network.load_state_dict(torch.load(os.path.join(@bundle_root, 'models', "
            "'model.pt'), map_location=@device, weights_only=True))",
            "$@network.eval()",
        ],
        "run": ["$@evaluator()"],
    }


def _versions() -> dict[str, str]:
    import monai
    import numpy

    from semantic_genesis import __version__

    return {"monai": monai.__version__, "torch": torch.__version__.split("+")[0],
            "numpy": numpy.__version__, "semantic-genesis": __version__}


def metadata(card: ModelCard, native: bool) -> dict[str, Any]:
    """The content of ``configs/metadata.json`` (MONAI's metadata schema fields)."""
    v = _versions()
    segment = card.pretext.startswith("finetune")
    out = {"type": "image", "format": "segmentation" if segment else "magnitude",
           "num_channels": 1, "spatial_shape": list(card.patch_size),
           "dtype": "uint8" if segment else "float32", "value_range": [0, 1],
           "is_patch_data": False, "channel_def": {"0": "label" if segment else "restored"}}
    required = {} if native else {"semantic-genesis": v["semantic-genesis"]}
    network = ("a MONAI-native network" if native else "the network needs the semantic-genesis "
               "package (pip install semantic-genesis)")
    return {
        "schema": "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/"
                  "0.8.1/meta_schema_20220324.json",
        "version": "0.1.0",
        "changelog": {"0.1.0": f"exported by semantic-genesis {v['semantic-genesis']}"},
        "monai_version": v["monai"], "pytorch_version": v["torch"], "numpy_version": v["numpy"],
        "required_packages_version": {"nibabel": _nibabel(), **required},
        "name": f"Semantic Genesis {card.architecture}",
        "task": f"{'segmentation' if segment else 'restoration'} of {card.modality} volumes",
        "description": "Semantic Genesis (Haghighi et al., MICCAI 2020) weights exported by "
                       f"semantic-genesis; {network}.",
        "authors": "semantic-genesis",
        "copyright": "see the weights' source",
        "network_data_format": {
            "inputs": {"image": {"type": "image", "format": "magnitude", "modality": card.modality,
                                 "num_channels": card.in_channels,
                                 "spatial_shape": list(card.patch_size), "dtype": "float32",
                                 "value_range": [0, 1], "is_patch_data": True,
                                 "channel_def": {"0": card.modality}}},
            "outputs": {"pred": out},
        },
        "semantic_genesis_card": card.to_dict(),
    }


def _nibabel() -> str:
    mod = sys.modules.get("nibabel")
    if mod is None:
        import nibabel as mod
    return str(mod.__version__)


def _load_text(native: bool) -> str:
    needs = "" if native else " (needs `pip install semantic-genesis`: the network is ours)"
    return ("Put NIfTI scans in a folder, then, from the bundle's folder" + needs + ":\n\n"
            "```bash\npython -m monai.bundle run --config_file configs/inference.json "
            "--meta_file configs/metadata.json --bundle_root . --dataset_dir SCANS "
            "--output_dir OUT\n```")


def export_monai_bundle(model: nn.Module, card: ModelCard, out: str | Path,
                        metrics: dict[str, Any] | None = None) -> Path:
    """Write the MONAI bundle of ``model`` into ``out`` (claimed by the caller); each file
    atomically, the weights before the configs that load them. Returns ``out``."""
    out = Path(out)
    network_def, network = bundle_network(model, card)
    native = card.backbone == MONAI_FAMILY
    state = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    save_checkpoint(state, out / WEIGHTS)
    write_json(out / METADATA, metadata(card, native))
    write_json(out / INFERENCE, inference_config(card, network_def))
    atomic_write_text(out / LOGGING, _LOGGING_CONF)
    atomic_write_text(out / README, card_markdown(card, _load_text(native), metrics,
                                                  f"MONAI bundle: {card.architecture}"))
    return out
