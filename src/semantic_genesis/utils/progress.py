"""Progress bars: tqdm on rank 0 only, quiet when ``SEMGEN_QUIET=1`` (tests, CI logs)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm

from semantic_genesis.utils.dist import is_main

T = TypeVar("T")


def quiet() -> bool:
    """True when progress output is switched off."""
    return os.environ.get("SEMGEN_QUIET", "0") not in {"", "0"} or not is_main()


def progress(iterable: Iterable[T] | None = None, desc: str = "", total: int | None = None,
             **kw: Any) -> tqdm:
    """A tqdm progress bar (to stderr) that stays silent on non-zero ranks or when quiet."""
    disable = kw.pop("disable", False) or quiet()
    return tqdm(iterable, desc=desc, total=total, disable=disable, file=sys.stderr,
                dynamic_ncols=True, leave=kw.pop("leave", False), **kw)


def say(message: str) -> None:
    """Print one status line to stderr on rank 0 (unless quiet)."""
    if not quiet():
        print(message, file=sys.stderr, flush=True)
