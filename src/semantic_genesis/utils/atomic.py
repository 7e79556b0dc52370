"""Write files so that nothing half-written is ever left behind.

Everything is written to a temporary name in the destination folder and renamed into place with
:func:`os.replace`, which is atomic on POSIX file systems. A process killed at any moment leaves
either the old file, the new file, or a stray ``.tmp-*`` file that readers ignore.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

TMP_PREFIX = ".tmp-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` when the block succeeds.

    Args:
        path: the final destination.
        suffix: a suffix the temporary name must carry (some writers choose the format by it,
            e.g. ``.nii.gz`` or ``.npy``). Defaults to the destination's own suffixes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = suffix or "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX + path.name + ".", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give outputs the usual permissions before the rename
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def link_or_copy(src: str | Path, dst: str | Path) -> Path:
    """``dst`` becomes a hard link to ``src`` (a copy across file systems), atomically: no
    second copy of large files on one disk, and never a half-written ``dst``."""
    import shutil

    with atomic_path(dst) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
    return Path(dst)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically (paths and numpy values are converted)."""
    return atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


class _Stream:
    """A file numpy sees as a plain stream, so it writes through Python's ``write`` (a full disk
    is then ``OSError(ENOSPC)``) rather than ``ndarray.tofile`` (a short write without errno)."""

    def __init__(self, fh: Any) -> None:
        self.write = fh.write


def save_npy_atomic(path: str | Path, array: np.ndarray) -> Path:
    """Save ``array`` as ``.npy`` atomically (the result can be memory-mapped)."""
    with atomic_path(path, suffix=".npy") as tmp, open(tmp, "wb") as fh:
        np.lib.format.write_array(_Stream(fh), np.ascontiguousarray(array), allow_pickle=False)
    return Path(path)
