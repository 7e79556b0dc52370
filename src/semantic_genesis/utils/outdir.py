"""An output folder belongs to the verb that made it (docs/design.md, "Output folders").

Every writing verb opens its ``--out`` through :func:`claim_output`, which

- refuses a folder that equals or contains one of the verb's inputs (a verb must never be able to
  overwrite what it reads), and an input folder that contains the output is allowed only when the
  output is not itself searched (the caller decides by passing ``inputs``);
- accepts a folder that is new, empty, or was made earlier by the same kind of verb (it holds the
  marker file :data:`MARKER` naming that kind, or one of the verb's ``legacy`` files written by
  releases before the marker existed); any other folder is refused with one clear line, so the
  user's own files are never touched;
- holds an OS file lock (``fcntl.flock``) on :data:`LOCK` for as long as the block runs. The lock
  dies with its process (even on SIGKILL), so a killed run never blocks the folder, and a second
  run into the same folder is refused at once instead of interleaving with the first.

Only the process that will write should claim (rank 0 under torchrun).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from semantic_genesis.utils.errors import SemgenError

#: marks a folder as made by one kind of verb; holds {"kind": ..., "settings": {...}}
MARKER = ".semgen-output.json"
#: the lock file (its contents do not matter; the OS lock on it does)
LOCK = ".semgen.lock"
_OWN = {MARKER, LOCK}


def _resolved(path: str | Path) -> Path:
    return Path(os.path.abspath(Path(path).expanduser()))


def _is_within(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_not_input(out: str | Path, inputs: Iterable[str | Path]) -> None:
    """Refuse an output folder that equals or contains one of the inputs (any file under it
    could be overwritten), or that lies inside an input file's path."""
    out_r = _resolved(out)
    for item in inputs:
        item_r = _resolved(item)
        real_item = Path(os.path.realpath(item_r))
        real_out = Path(os.path.realpath(out_r))
        if _is_within(item_r, out_r) or _is_within(real_item, real_out):
            raise SemgenError(
                f"the output folder contains (or is) the input {item}; choose an --out "
                "outside your inputs so nothing of yours can be overwritten", out)


def read_marker(out: str | Path) -> dict[str, Any] | None:
    """The marker of an output folder, or None where there is none (or it is unreadable)."""
    try:
        data = json.loads((Path(out) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _foreign_entries(out: Path, legacy: Iterable[str]) -> list[str]:
    try:
        names = sorted(p.name for p in out.iterdir())
    except NotADirectoryError:
        raise SemgenError("exists and is not a folder", out) from None
    if not names or set(names) <= _OWN:
        return []
    if any((out / name).exists() for name in legacy):
        return []  # written by an earlier release of the same verb
    return names


def _check_owner(out: Path, kind: str, legacy: Iterable[str]) -> None:
    marker = read_marker(out)
    if marker is not None:
        if marker.get("kind") != kind:
            raise SemgenError(
                f"this folder was made by `semgen {marker.get('kind')}`, not `semgen {kind}`; "
                "choose another --out", out)
        return
    foreign = _foreign_entries(out, legacy)
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise SemgenError(
            f"the folder holds files that `semgen {kind}` did not write ({shown}); it writes "
            "only into a new or empty folder or one it made before: choose another --out", out)


def _write_marker(out: Path, kind: str, settings: dict[str, Any] | None) -> None:
    from semantic_genesis import __version__
    from semantic_genesis.utils.atomic import write_json

    write_json(out / MARKER, {"kind": kind, "version": __version__, "settings": settings or {}})


@contextlib.contextmanager
def claim_output(out: str | Path, kind: str, *, inputs: Iterable[str | Path] = (),
                 legacy: Iterable[str] = (), settings: dict[str, Any] | None = None,
                 shared: bool = False) -> Iterator[Path]:
    """Claim ``out`` for the verb ``kind`` for the duration of the block (see module doc).

    Args:
        out: the output folder (created if missing).
        kind: the verb, e.g. ``"prepare"``; stored in the marker.
        inputs: files or folders the verb reads; ``out`` may not equal or contain any of them.
        legacy: file names that mark a folder made by this verb before markers existed.
        settings: recorded in the marker (for the user's information).
        shared: take a shared lock (``LOCK_SH``) instead: several processes of the same verb
            may then write into the folder together (the benchmark grid, whose cells have
            their own locks), while a verb holding the exclusive lock keeps them out.

    Raises:
        SemgenError: the folder is someone else's, contains an input, is locked by another
            run, or cannot be created or written (the message names the path and the need).
    """
    out = Path(out)
    check_not_input(out, inputs)
    legacy = tuple(legacy)
    if out.exists():
        _check_owner(out, kind, legacy)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out / LOCK, os.O_CREAT | os.O_RDWR, 0o644)
    except OSError as exc:
        error = disk_error(exc, out)
        if error is exc:  # not a disk fault: a file in the way, a missing or odd parent
            error = SemgenError(f"cannot create the output folder here: {exc.strerror}", out)
        raise error from None
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise SemgenError(f"another `semgen {kind}` is writing into this folder now; "
                                  "wait for it or choose another --out", out) from None
            raise
        _check_owner(out, kind, legacy)  # re-check under the lock
        try:
            _write_marker(out, kind, settings)
        except OSError as exc:
            raise disk_error(exc, out) from None
        try:
            yield out
        except OSError as exc:  # a disk fault inside the block: name the folder and the need
            err = disk_error(exc, out)
            if err is exc:
                raise
            raise err from None
    finally:
        os.close(fd)  # releases the lock


#: errno -> what the user must do about it
_DISK_NEEDS = {
    errno.ENOSPC: "no space left on the device: free some space and run the same command again",
    errno.EDQUOT: "disk quota exceeded: free some space and run the same command again",
    errno.EROFS: "the file system is read-only: choose a writable --out",
    errno.EACCES: "permission denied: choose a folder you may write to",
    errno.EPERM: "operation not permitted: choose a folder you may write to",
}


def disk_error(exc: OSError, path: str | Path | None = None) -> SemgenError | OSError:
    """Turn a disk fault into a one-line :class:`SemgenError` naming the path and the need;
    other OS errors are returned unchanged."""
    need = _DISK_NEEDS.get(exc.errno or -1)
    if need is None:
        return exc
    where = exc.filename or path
    return SemgenError(need, where)
