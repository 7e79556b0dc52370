"""An autouse fixture for the bridge tests: one torch thread while a module's tests run.

On this shared 2-core machine two threads made each small forward pass over 100x slower
(measured: 0.017 s vs 2 s for a width-4 BasicUNet on 4 x 16^3 voxels), so the tests that run
networks import it: ``from tests.bridges.single_thread import one_thread  # noqa: F401``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
