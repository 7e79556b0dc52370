"""Batched self-restoration perturbations and the pretext presets built from them.

One class per perturbation (method.md §3), each working on ``(N, C, X, Y, Z)`` torch batches on
CPU or GPU with per-sample parameters from a seeded ``torch.Generator`` (or on a single numpy or
torch cube), and ``build_preset(name, **options)`` for the pipelines the engine trains with
(``sg``, ``mg``, ``inpaint``, ``shuffle``, ``identity``, ``rotation``).
"""

from semantic_genesis.transforms.base import Perturbation
from semantic_genesis.transforms.bezier import BezierIntensity
from semantic_genesis.transforms.elastic import ElasticDeform
from semantic_genesis.transforms.flip import Flip
from semantic_genesis.transforms.inpainting import InPainting
from semantic_genesis.transforms.local_shuffle import LocalPixelShuffle
from semantic_genesis.transforms.outpainting import OutPainting
from semantic_genesis.transforms.patch_swap import PatchSwap
from semantic_genesis.transforms.presets import PRESETS, Perturbed, Preset, build_preset
from semantic_genesis.transforms.rotation import Rotation

__all__ = [
    "PRESETS",
    "BezierIntensity",
    "ElasticDeform",
    "Flip",
    "InPainting",
    "LocalPixelShuffle",
    "OutPainting",
    "PatchSwap",
    "Perturbation",
    "Perturbed",
    "Preset",
    "Rotation",
    "build_preset",
]
