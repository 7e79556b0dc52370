"""Lock-file claims: one holder at a time, released on exit, stale locks taken over."""

from __future__ import annotations

from pathlib import Path

import pytest

from semantic_genesis.utils.claim import claimed, try_claim


def test_one_holder_at_a_time_and_release_even_on_error(tmp_path: Path) -> None:
    lock = tmp_path / "cells" / "a.lock"
    with pytest.raises(RuntimeError), claimed(lock) as mine:
        assert mine and lock.is_file()
        assert not try_claim(lock)  # held by a live process (this one)
        raise RuntimeError("the work failed")
    assert not lock.exists()  # released anyway


def test_garbage_lock_is_stale(tmp_path: Path) -> None:
    lock = tmp_path / "b.lock"
    lock.write_text("not a lock")
    with claimed(lock) as mine:
        assert mine
