"""Models: the reference 3D U-Net / YNet3D / encoder classifier, heads, and weight loading.

    from semantic_genesis.models import create_model
    model = create_model("unet3d", pretrained="Genesis_Chest_CT.pt")   # report printed
    print(model.load_report)

Layout: ``blocks`` (LUConv, Down/Up/OutputTransition, the norm factory), ``heads``
(ClassificationHead), ``unet`` (UNet3D, YNet3D, EncoderClassifier), ``backbone`` (the Backbone
and Encoder protocols), ``monai_backbones`` (MONAI's BasicUNet as a backbone), ``registry``
(register_model, list_models, list_backbones, build_backbone, create_model, load_model),
``weights`` (load_weights, LoadReport), ``keras`` (the official ``.h5`` reader), ``checkpoint``
(safe read, atomic save, save_model), ``card`` (ModelCard, its fields checked), ``build`` (the
built-in architectures, guessing them from weights, and the size check made before a network
is built), ``names`` (norm, head and backbone-role names, importable without torch).

Loading is strict by default for our checkpoints (they carry a model card); weights holding NaN
or infinity are refused unless ``allow_nonfinite=True`` (``semgen info`` shows them).
"""

from __future__ import annotations

import importlib
from typing import Any

from semantic_genesis.models.names import HEADS, NORMS

#: public name -> the submodule defining it; loaded on first use, so importing
#: ``semantic_genesis.models.names`` (configs, ``semgen --help``) does not import torch.
_LAZY = {
    "Backbone": "backbone",
    "Encoder": "backbone",
    "build_backbone": "registry",
    "ContBatchNorm": "blocks",
    "make_norm": "blocks",
    "ModelCard": "card",
    "card_from_model": "checkpoint",
    "read_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "save_model": "checkpoint",
    "ClassificationHead": "heads",
    "create_model": "registry",
    "list_backbones": "registry",
    "list_models": "registry",
    "load_model": "registry",
    "register_model": "registry",
    "EncoderClassifier": "unet",
    "UNet3D": "unet",
    "YNet3D": "unet",
    "LoadReport": "weights",
    "adapt_input_conv": "weights",
    "guess_model_kwargs": "build",
    "load_weights": "weights",
    "read_weights": "weights",
}

__all__ = [
    "HEADS",
    "NORMS",
    "Backbone",
    "ClassificationHead",
    "ContBatchNorm",
    "Encoder",
    "EncoderClassifier",
    "LoadReport",
    "ModelCard",
    "UNet3D",
    "YNet3D",
    "adapt_input_conv",
    "build_backbone",
    "card_from_model",
    "create_model",
    "guess_model_kwargs",
    "list_backbones",
    "list_models",
    "load_model",
    "load_weights",
    "make_norm",
    "read_checkpoint",
    "read_weights",
    "register_model",
    "save_checkpoint",
    "save_model",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"semantic_genesis.models.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'semantic_genesis.models' has no attribute {name!r}")
