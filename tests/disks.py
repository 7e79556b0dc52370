"""Real full and read-only disks for the `slow` disk-fault tests: a small tmpfs mounted by root.

Tests that use :func:`mounted_tmpfs` skip (with the reason) where mounting is not permitted.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def mounted_tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (e.g. ``"256k"``) at ``folder``; unmounted at the end."""
    folder.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        pytest.skip("no mount command here")
    run = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                         capture_output=True, text=True)
    if run.returncode:
        pytest.skip(f"mounting a tmpfs is not permitted here: {run.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def remount_tmpfs(folder: Path, options: str) -> None:
    """Change a :func:`mounted_tmpfs`: ``"ro"`` (read-only) or ``"size=64m"`` (space freed)."""
    subprocess.run(["mount", "-o", f"remount,{options}", str(folder)], check=True)
