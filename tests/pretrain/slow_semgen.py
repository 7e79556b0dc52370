"""Run `semgen` with every optimiser step slowed down, so a test can kill a run mid-epoch.

Usage: ``python tests/pretrain/slow_semgen.py SECONDS semgen-arguments...``. The delay is added
from the outside, through torch's global optimiser post-step hook, so the package itself carries
no test-only code.
"""

from __future__ import annotations

import sys
import time

from torch.optim.optimizer import register_optimizer_step_post_hook

from semantic_genesis.cli import main


def _sleep_after_step(delay: float):
    def hook(optimizer, args, kwargs) -> None:  # noqa: ANN001 - torch's hook signature
        time.sleep(delay)

    return hook


if __name__ == "__main__":
    register_optimizer_step_post_hook(_sleep_after_step(float(sys.argv[1])))
    sys.exit(main(sys.argv[2:]))
