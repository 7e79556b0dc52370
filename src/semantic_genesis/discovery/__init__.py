"""Self-discovery (method.md §2): patient features, nearest neighbours, reference coordinates,
and the manifest of discovered anatomical patterns.

    from semantic_genesis.discovery import DiscoverConfig, discover
    result = discover("cohort", "patterns", DiscoverConfig(n_classes=44))

Modules: ``autoencoder`` (the bottleneck auto-encoder), ``features`` (feature sources and
``features.npz``), ``neighbours`` (FAISS), ``coordinates`` (borders, the vectorised air test,
the distance test), ``references`` (one part file per reference patient, neighbours within its
modality, assembly into classes), ``patterns`` (pattern rows and the montage), ``pipeline``
(``discover``).
"""

from semantic_genesis.discovery.config import DiscoverConfig
from semantic_genesis.discovery.pipeline import DiscoverResult, DiscoverWarning, discover

__all__ = ["DiscoverConfig", "DiscoverResult", "DiscoverWarning", "discover"]
