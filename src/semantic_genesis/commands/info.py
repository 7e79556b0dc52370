"""semgen info (not built yet)."""

from __future__ import annotations

import argparse

from semantic_genesis.utils.errors import SemgenError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No arguments yet."""


def run(args: argparse.Namespace) -> int:
    raise SemgenError("'semgen info' is not available in this version yet")
