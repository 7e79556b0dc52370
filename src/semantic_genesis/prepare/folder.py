"""What ``prepare`` may touch in its cohort folder, and how it writes there.

``prepare`` deletes or rewrites only files it can prove it wrote (the rule of
``utils.outdir``: an output folder belongs to the verb that made it, and a user's file is never
changed):

- a volume ``volumes/<id>.npy`` is ours only when its sidecar ``volumes/<id>.json`` (written
  *before* the volume, with status ``writing``, and again after it) says so; a ``.npy`` without
  such a sidecar is the user's and is never overwritten or removed;
- a stray temporary is ours only when its name is one :mod:`semantic_genesis.utils.atomic` gives
  to a file ``prepare`` writes (``.tmp-<that name>.<8 random characters><suffix>``).

Every write goes through :func:`writing`, which turns a disk fault into :class:`OutputFault`: the
run stops with one line naming the file and what to do (unlike a bad scan, which only skips that
scan).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from semantic_genesis.utils.atomic import TMP_PREFIX
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.outdir import MARKER, disk_error

VOLUMES = "volumes"
#: the files ``prepare`` writes at the top of its folder (besides ``volumes/``)
TOP_FILES = ("cohort.csv", "prepare-report.json", "prepare-config.yaml", MARKER)

_TEMPORARY = re.compile(re.escape(TMP_PREFIX) + r"(?P<name>.+)\.[a-z0-9_]{8}(?P<suffix>\.[^/]*)?$")
_VOLUME_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.(npy|json)")


class OutputFault(SemgenError):
    """Writing into the cohort folder failed (full or read-only disk, no permission): the whole
    run stops, unlike a bad scan."""


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn any OSError raised while writing ``path`` into an :class:`OutputFault` naming it."""
    try:
        yield
    except OSError as exc:
        error = disk_error(exc, path)
        need = error.reason if isinstance(error, SemgenError) else f"cannot write ({exc.strerror})"
        raise OutputFault(need, path) from None


def sidecar_path(out_dir: Path, scan_id: str) -> Path:
    return out_dir / VOLUMES / f"{scan_id}.json"


def read_sidecar(path: Path) -> dict[str, Any] | None:
    """The sidecar at ``path`` when it is one ``prepare`` wrote for its own stem, else None."""
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    ours = isinstance(info, dict) and info.get("id") == path.stem and "recipe" in info
    return info if ours and "status" in info else None


def check_volume_is_ours(out_dir: Path, scan_id: str, sidecar: dict[str, Any] | None) -> None:
    """Refuse to write ``volumes/<id>.npy`` or ``.json`` when a file of that name is there and
    no sidecar of ours vouches for it (it is the user's: left alone)."""
    if sidecar is not None:
        return
    for name in (f"{scan_id}.npy", f"{scan_id}.json"):
        path = out_dir / VOLUMES / name
        if path.exists() or path.is_symlink():
            raise SemgenError(f"{path} is already there and was not written by `semgen "
                              "prepare`; it is left alone: move it away to prepare this scan")


def _own_temporary(name: str, volumes: bool) -> bool:
    match = _TEMPORARY.fullmatch(name)
    if not match:
        return False
    target, suffix = match["name"], match["suffix"] or ""
    if volumes:
        expected = (".npy",) if target.endswith(".npy") else ("".join(Path(target).suffixes),)
        return bool(_VOLUME_FILE.fullmatch(target)) and suffix in expected
    return target in TOP_FILES and suffix == "".join(Path(target).suffixes)


def remove_own_temporaries(out_dir: Path) -> list[str]:
    """Remove the temporaries a killed ``prepare`` may have left (only names it gives)."""
    removed = []
    for folder, volumes in ((out_dir, False), (out_dir / VOLUMES, True)):
        if folder.is_dir():
            for p in sorted(folder.glob(TMP_PREFIX + "*")):
                if p.is_file() and _own_temporary(p.name, volumes):
                    with writing(p):
                        p.unlink(missing_ok=True)
                    removed.append(p.name)
    return removed


def remove_earlier_volumes(out_dir: Path, keep: Iterable[str]) -> tuple[list[str], list[str]]:
    """Remove the volumes (and sidecars) of an earlier run whose ids are not in ``keep``.

    Only files a sidecar of ours vouches for (its ``file`` names the volume) are removed;
    anything else is left alone.

    Returns:
        (ids of the removed volumes, names of every file removed)
    """
    keep = set(keep)
    ids, files = [], []
    folder = out_dir / VOLUMES
    for side in sorted(folder.glob("*.json")):
        info = read_sidecar(side)
        if side.stem in keep or info is None:
            continue
        volume = folder / f"{side.stem}.npy"
        if info.get("file") == f"{VOLUMES}/{volume.name}" and volume.is_file():
            with writing(volume):
                volume.unlink()
            files.append(volume.name)
            ids.append(side.stem)
        with writing(side):
            side.unlink(missing_ok=True)
        files.append(side.name)
    return ids, files
