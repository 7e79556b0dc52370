"""Self-discovery (method.md §2): patient features, nearest neighbours, reference coordinates,
and the manifest of discovered anatomical patterns.

    from semantic_genesis.discovery import DiscoverConfig, discover
    result = discover("cohort", "patterns", DiscoverConfig(n_classes=44))

Modules: ``autoencoder`` (the bottleneck auto-encoder), ``features`` (feature sources and
``features.npz``), ``neighbours`` (FAISS), ``coordinates`` (borders, the vectorised air test,
the distance test), ``patterns`` (pattern rows and the montage), ``pipeline`` (``discover``),
``reference`` (a plain-loop port of the reference air test, for checks and benchmarks).
"""

from semantic_genesis.discovery.config import DiscoverConfig
from semantic_genesis.discovery.pipeline import DiscoverResult, DiscoverWarning, discover

__all__ = ["DiscoverConfig", "DiscoverResult", "DiscoverWarning", "discover"]
