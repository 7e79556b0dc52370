"""Names from configs that become file or folder names (benchmark tasks and initialisations,
experiment methods) must stay inside the output folder.

A name is used as one path component, so it may hold only letters, digits, ``.``, ``_`` and
``-``, and may not be ``.`` or ``..``: ``../x``, ``a/b``, an absolute path or an empty name is
refused with one error naming the config file and the field, before anything is written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from semantic_genesis.utils.errors import SemgenError

_SAFE = re.compile(r"[A-Za-z0-9._-]+")


def safe_name(name: Any, field: str, source: str | Path | None = None) -> str:
    """Return ``name`` when it is a safe single file name, else raise :class:`SemgenError`
    naming ``source`` (the config file) and ``field``."""
    if not isinstance(name, str) or not _SAFE.fullmatch(name) or name in (".", ".."):
        raise SemgenError(
            f"{field} = {name!r}: a name that becomes a folder must be letters, digits, '.', "
            "'_' or '-' only (not empty, '.' or '..')",
            source,
        )
    return name
