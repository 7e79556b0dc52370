"""Semantic Genesis: self-discovery, self-classification and self-restoration of anatomical
patterns for 3D medical images (Haghighi et al., MICCAI 2020, arXiv:2007.06959).

The package is organised as one sub-package per stage; data flows one way through files
(see docs/design.md):

    scans --prepare--> cohort/ --discover--> patterns/ --pretrain--> run/ --finetune--> results/
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
