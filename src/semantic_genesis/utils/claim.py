"""Claim a unit of work with a lock file, so that several processes can share one grid.

``semgen benchmark`` may be started several times on the same output folder (one process per
GPU or per core, or per node on a shared file system): each cell is claimed by creating
``<cell>.lock`` with ``O_CREAT | O_EXCL`` (atomic on POSIX and NFSv3+), holding the host name and
process id. A lock left by a process that died on this host is stale and taken over; a lock held
by a live process, or by another host, means the cell is being run elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path


def _owner() -> str:
    return f"{socket.gethostname()} {os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def _stale(lock: Path) -> bool:
    """True if ``lock`` was left by a dead process on this host (or is unreadable garbage)."""
    try:
        host, pid = lock.read_text().split()
        return host == socket.gethostname() and not _alive(int(pid))
    except FileNotFoundError:
        return False  # released meanwhile: try again
    except ValueError:
        return True


def try_claim(lock: str | Path) -> bool:
    """Create ``lock`` for this process; False if another live process holds it."""
    lock = Path(lock)
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if not _stale(lock):
                return False
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(_owner())
        return True
    return False


@contextlib.contextmanager
def claimed(lock: str | Path) -> Iterator[bool]:
    """``with claimed(path) as mine:`` — ``mine`` says whether this process holds the lock;
    a held lock is released when the block ends, whatever happens in it."""
    mine = try_claim(lock)
    try:
        yield mine
    finally:
        if mine:
            with contextlib.suppress(FileNotFoundError):
                Path(lock).unlink()
