"""Models: the reference 3D U-Net / YNet3D / encoder classifier, heads, and weight loading.

    from semantic_genesis.models import create_model
    model = create_model("unet3d", pretrained="Genesis_Chest_CT.pt")   # report printed
    print(model.load_report)

Layout: ``blocks`` (LUConv, Down/Up/OutputTransition, the norm factory), ``heads``
(ClassificationHead), ``unet`` (UNet3D, YNet3D, EncoderClassifier), ``registry``
(register_model, list_models, create_model, load_model), ``weights`` (load_weights, LoadReport),
``keras`` (the official ``.h5`` reader), ``checkpoint`` (safe read, atomic save, save_model),
``card`` (ModelCard).
"""

from semantic_genesis.models.blocks import NORMS, ContBatchNorm, make_norm
from semantic_genesis.models.card import ModelCard
from semantic_genesis.models.checkpoint import (
    card_from_model,
    read_checkpoint,
    save_checkpoint,
    save_model,
)
from semantic_genesis.models.heads import HEADS, ClassificationHead
from semantic_genesis.models.registry import create_model, list_models, load_model, register_model
from semantic_genesis.models.unet import EncoderClassifier, UNet3D, YNet3D
from semantic_genesis.models.weights import (
    LoadReport,
    adapt_input_conv,
    guess_model_kwargs,
    load_weights,
    read_weights,
)

__all__ = [
    "HEADS",
    "NORMS",
    "ClassificationHead",
    "ContBatchNorm",
    "EncoderClassifier",
    "LoadReport",
    "ModelCard",
    "UNet3D",
    "YNet3D",
    "adapt_input_conv",
    "card_from_model",
    "create_model",
    "guess_model_kwargs",
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
