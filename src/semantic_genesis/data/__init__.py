"""Built-in data: synthetic chest-CT phantoms with nodules, and real sample scans.

- :func:`generate_phantoms` (``semgen phantoms``): a cohort of synthetic chest CTs with nodule
  masks and LUNA16-style ``annotations.csv`` / ``candidates.csv``;
- :func:`fetch_samples` (``semgen samples``): the pyradiomics 3.0.1 chest CTs and brain MRs,
  sha256-checked and cached; :func:`mni152`: the MNI152 brain template and tissue maps.
"""

from semantic_genesis.data.phantoms import PhantomConfig, generate_phantoms
from semantic_genesis.data.samples import copy_samples, fetch_samples, mni152

__all__ = ["PhantomConfig", "copy_samples", "fetch_samples", "generate_phantoms", "mni152"]
