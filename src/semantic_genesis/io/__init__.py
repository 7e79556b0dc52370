"""Reading and writing scans; intensity presets."""

from semantic_genesis.io.volume import Volume

__all__ = ["Volume"]
