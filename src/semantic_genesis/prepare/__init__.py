"""Scans in, a cohort folder out (``semgen prepare``; the contract in docs/design.md).

- :func:`prepare` reads scans of any supported format, checks them, maps intensities to [0, 1]
  and writes ``cohort.csv``, ``volumes/<id>.npy`` and ``prepare-report.json``;
- :class:`PrepareConfig`: its settings; :mod:`.folder`: what ``prepare`` may touch in its folder.
"""

from semantic_genesis.prepare.cohort import PrepareReport, prepare
from semantic_genesis.prepare.config import PrepareConfig

__all__ = ["PrepareConfig", "PrepareReport", "prepare"]
