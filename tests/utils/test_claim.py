"""Cell claims by OS file lock: one holder at a time, released on exit or death, and a lock
file left behind (whatever process id it names) never blocks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from semantic_genesis.utils.claim import claimed, release, try_claim

HOLDER = """
import sys, time
from semantic_genesis.utils.claim import try_claim
fd = try_claim(sys.argv[1])
print("held" if fd is not None else "busy", flush=True)
time.sleep(120)
"""


def test_one_holder_at_a_time_and_release_even_on_error(tmp_path: Path) -> None:
    lock = tmp_path / "cells" / "a.lock"
    with pytest.raises(RuntimeError), claimed(lock) as mine:
        assert mine and lock.is_file()
        assert try_claim(lock) is None  # held (by another open file of this process)
        raise RuntimeError("the work failed")
    assert not lock.exists()  # released anyway
    fd = try_claim(lock)
    assert fd is not None
    release(lock, fd)


def test_garbage_lock_is_not_a_claim(tmp_path: Path) -> None:
    lock = tmp_path / "b.lock"
    lock.write_text("not a lock")
    with claimed(lock) as mine:
        assert mine


def test_a_left_lock_naming_a_live_process_does_not_block(tmp_path: Path) -> None:
    """The old scheme trusted the PID in the file; a reused PID blocked the cell for good."""
    lock = tmp_path / "c.lock"
    lock.write_text(f"{socket.gethostname()} {os.getppid()}")  # a live process, not holding it
    with claimed(lock) as mine:
        assert mine


def test_two_processes_never_hold_one_cell_and_death_releases(tmp_path: Path) -> None:
    lock = tmp_path / "d.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with claimed(lock) as mine:
            assert not mine  # the other process holds it
        assert lock.exists()  # a refused claim leaves the holder's file alone
        other = subprocess.run([sys.executable, "-c", HOLDER.replace("time.sleep(120)", ""),
                                str(lock)], capture_output=True, text=True, check=True)
        assert other.stdout.strip() == "busy"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with claimed(lock) as mine:  # the kernel dropped the dead holder's lock
        assert mine
