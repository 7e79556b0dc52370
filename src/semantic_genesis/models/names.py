"""The names of the normalisations and heads the models know, without importing torch, so configs
can check them when they are made (``semgen --help`` stays free of torch)."""

from __future__ import annotations

#: Normalisations :func:`~semantic_genesis.models.blocks.make_norm` knows.
NORMS = ("batch", "batch_always", "instance", "group")

#: Head kinds :class:`~semantic_genesis.models.heads.ClassificationHead` knows.
HEADS = ("torch", "keras", "mlp")

#: The backbone family of the reference U-Net / YNet3D / encoder classifier (models.backbone).
REFERENCE = "reference"

#: The roles a backbone family registers: encoder + decoder, plus a head, encoder + head.
ROLES = ("unet", "ynet", "encoder")
