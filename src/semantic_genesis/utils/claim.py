"""Claim a unit of work with an OS file lock, so that several processes can share one grid.

``semgen benchmark`` may be started several times on the same output folder (one process per
GPU or per core): each cell is claimed by taking ``fcntl.flock(LOCK_EX | LOCK_NB)`` on
``<cell>.lock``, held on an open file for as long as the cell runs. The kernel releases the lock
when the holder closes the file or dies (even by SIGKILL), so a killed run never blocks a cell,
whatever process id is later reused; a lock held by a live process means the cell is being run
elsewhere. What the file contains does not matter (it names the holder, for people only).

The holder removes the file when it is done. A process that opened the file just before it was
removed could lock the removed file while a third process creates and locks a new one; so after
locking, the claim checks that the path still names the locked file, and tries again otherwise.

``flock`` locks are only as good as the file system's: local file systems and NFSv4 honour them;
on file systems that do not, run one benchmark process per folder.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def try_claim(lock: str | Path) -> int | None:
    """Lock ``lock`` for this process: the open file descriptor that holds the lock, or None
    when another open file (another process, or another claim in this one) holds it.
    Release it with :func:`release`."""
    lock = Path(lock)
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(10):
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return None
            raise
        if _same_file(fd, lock):
            os.ftruncate(fd, 0)
            os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
            return fd
        os.close(fd)  # we locked a file its holder had just removed: try the new one
    return None


def release(lock: str | Path, fd: int) -> None:
    """Remove ``lock`` and drop the claim held on ``fd`` (in that order, see the module doc)."""
    try:
        if _same_file(fd, Path(lock)):
            with contextlib.suppress(FileNotFoundError):
                Path(lock).unlink()
    finally:
        os.close(fd)


@contextlib.contextmanager
def claimed(lock: str | Path) -> Iterator[bool]:
    """``with claimed(path) as mine:`` — ``mine`` says whether this process holds the lock;
    a held lock is released when the block ends, whatever happens in it."""
    fd = try_claim(lock)
    try:
        yield fd is not None
    finally:
        if fd is not None:
            release(lock, fd)
