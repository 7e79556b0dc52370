"""Kill a `semgen` run for real in its second epoch (SIGKILL), for the exact-resume tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SLOW_SEMGEN = Path(__file__).parent / "pretrain" / "slow_semgen.py"
ENV = {**os.environ, "SEMGEN_QUIET": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def kill_in_second_epoch(argv: list[str], last: Path, step_delay: float, wait: float) -> None:
    """Run ``semgen argv`` with every optimiser step slowed by ``step_delay`` seconds, wait until
    the first epoch's ``last`` checkpoint exists, ``wait`` more seconds (into epoch 2), then
    SIGKILL it; fails when the run ended before it could be killed."""
    proc = subprocess.Popen([sys.executable, str(SLOW_SEMGEN), str(step_delay), *map(str, argv)],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(wait)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
