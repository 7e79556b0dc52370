"""Refuse to test a checkpoint on cases it was pre-trained on (method.md §1.1).

A checkpoint that ``semgen pretrain`` writes lists the hashed ids of the cases it was
pre-trained on (``ModelCard.seen_cases``, ``prepare.groups.cohort_case_hashes``). Before a
fine-tuning run (``semgen finetune``) and before any cell of a benchmark grid
(``semgen benchmark``), the target's split is computed exactly as the run will compute it, and
every case is hashed the same way (``prepare.groups.case_hash`` of ``finetune.data.case_id``):

- a **test** case seen in pre-training refuses the run with one message naming how many and the
  override (``FinetuneConfig.allow_seen_test_cases``, ``--allow-seen-test-cases``): its test
  score would measure memory of the scan, not transfer;
- **training or validation** cases seen in pre-training are allowed (self-supervised
  pre-training used no labels; the papers pre-train on LUNA16 subsets 0-6, which are also the
  target tasks' training folds): one warning line each, kept in ``metrics.json``.

Initialisations without a card (``scratch``, official weights, Keras ``.h5``) or with an empty
``seen_cases`` (made before it existed) are not checked: there is nothing to check against.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semantic_genesis.finetune.config import FinetuneConfig
from semantic_genesis.prepare.groups import case_hash
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.progress import say

#: the flag that runs a target whose test cases were seen in pre-training
OVERRIDE_FLAG = "--allow-seen-test-cases"


@dataclass
class Leakage:
    """Which cases of a target's split the initialisation saw in pre-training.

    ``seen``: split name -> sorted case ids seen; ``n_cases``: split name -> cases in it.
    """

    init: str
    seen: dict[str, list[str]] = field(default_factory=dict)
    n_cases: dict[str, int] = field(default_factory=dict)

    def count(self, split: str) -> int:
        return len(self.seen.get(split, []))

    def summary(self) -> dict[str, Any]:
        """Counts only (no case ids), as metrics.json keeps them."""
        return {f"seen_{s}": self.count(s) for s in ("train", "val", "test")} | {
            "cases": dict(self.n_cases)}


def seen_cases_of(init: str | Path) -> set[str]:
    """The hashed case ids an initialisation's model card lists (empty for ``scratch`` and
    for weights without a card or without ``seen_cases``)."""
    if str(init) == "scratch":
        return set()
    from semantic_genesis.models.weights import read_weights

    card = read_weights(Path(init)).card or {}
    seen = card.get("seen_cases") or []
    if not isinstance(seen, list) or not all(isinstance(h, str) for h in seen):
        raise SemgenError("model card field seen_cases must be a list of text", init)
    return set(seen)


def target_split(data_dir: str | Path, config: FinetuneConfig) -> dict[str, str]:
    """Case id -> ``train``/``val``/``test`` for ``config``'s task on ``data_dir``, as the run
    computes it (``finetune.data.split_cases`` over the cases the task can use: those with
    candidates for classification, those with a label map for segmentation)."""
    from semantic_genesis.finetune.data import (
        find_images,
        find_labels,
        read_candidates,
        split_cases,
    )

    data_dir = Path(data_dir)
    images = find_images(data_dir)
    if config.task == "classify":
        ids = {c.seriesuid for c in read_candidates(data_dir / config.candidates)} & set(images)
    else:
        ids = set(images) & set(find_labels(data_dir))
    if not ids:
        return {}  # the task itself says what is missing
    return split_cases(sorted(ids), config.split_seed, (config.val_fraction,
                       config.test_fraction), images, data_dir / "split.csv")


def find_leakage(init: str | Path, split: dict[str, str], seen: set[str] | None = None
                 ) -> Leakage:
    """The cases of ``split`` whose :func:`~semantic_genesis.prepare.groups.case_hash` is
    among the hashes ``init`` saw (``seen``: those hashes, when already read)."""
    seen = seen_cases_of(init) if seen is None else seen
    out = Leakage(str(init))
    for case, name in sorted(split.items()):
        out.n_cases[name] = out.n_cases.get(name, 0) + 1
        if case_hash(case) in seen:
            out.seen.setdefault(name, []).append(case)
    return out


def _refusal(leak: Leakage, data_dir: str | Path) -> SemgenError:
    n, total = leak.count("test"), leak.n_cases.get("test", 0)
    return SemgenError(
        f"refused: {n} of the {total} test case(s) of {data_dir} were seen in pre-training "
        f"(the model card's seen_cases, e.g. {leak.seen['test'][0]}), so the test score would "
        "measure memory, not transfer (method.md §1.1). Use a checkpoint pre-trained without "
        "them (`semgen discover` leaves out LUNA16 subsets 7-9 by default), another split, or "
        f"pass {OVERRIDE_FLAG} (allow_seen_test_cases) to run anyway", leak.init)


def _warnings(leak: Leakage, allowed: bool) -> list[str]:
    lines = []
    if leak.count("test") and allowed:
        lines.append(f"{leak.count('test')} test case(s) were seen in pre-training "
                     f"({OVERRIDE_FLAG}): the test score is not a measure of transfer")
    for name in ("train", "val"):
        if leak.count(name):
            lines.append(f"{leak.count(name)} {name} case(s) were seen in pre-training (allowed: "
                         "only test cases are refused)")
    return lines


def check_leakage(data_dir: str | Path, config: FinetuneConfig,
                  seen: set[str] | None = None) -> dict[str, Any]:
    """Refuse ``config`` on ``data_dir`` when a test case was seen in pre-training of
    ``config.init`` (unless ``config.allow_seen_test_cases``); warn about training and
    validation cases seen.

    Returns:
        For metrics.json: ``checked`` (False when the init lists no seen cases), the counts
        per split and ``warnings`` (each also said on the console).

    Raises:
        SemgenError: a test case was seen and the override was not given (names the init).
    """
    seen = seen_cases_of(config.init) if seen is None else seen
    if not seen:
        return {"checked": False, "warnings": []}
    leak = find_leakage(config.init, target_split(data_dir, config), seen)
    if leak.count("test") and not config.allow_seen_test_cases:
        raise _refusal(leak, data_dir)
    lines = _warnings(leak, config.allow_seen_test_cases)
    for line in lines:
        say(f"warning: {line}")
    return {"checked": True, **leak.summary(), "warnings": lines}


def check_test_cases(init: str | Path, test_ids: Iterable[str], where: str | Path,
                     allow: bool = False) -> int:
    """Refuse when any of ``test_ids`` was seen in pre-training of ``init`` (unless
    ``allow``); for protocols that draw their own test cases (e.g. frozen-feature probes,
    whose per-seed splits make every case a test case at some seed: pass them all).

    Returns:
        How many of ``test_ids`` were seen (0 for inits without ``seen_cases``).

    Raises:
        SemgenError: one was seen and ``allow`` is off (names ``where`` and the override).
    """
    seen = seen_cases_of(init)
    leak = find_leakage(init, {str(i): "test" for i in test_ids}, seen) if seen else None
    if leak is None or not leak.count("test"):
        return 0
    if not allow:
        raise _refusal(leak, where)
    say(f"warning: {_warnings(leak, True)[0]}")
    return leak.count("test")


def check_grid(runs: Iterable[tuple[str | Path, FinetuneConfig]]) -> None:
    """:func:`check_leakage` for every (data folder, config) of a benchmark grid, before any
    cell runs; each initialisation is read and each distinct split checked once.

    Raises:
        SemgenError: the first refused combination (names the init, the data and the override).
    """
    cards: dict[str, set[str]] = {}
    done: set[tuple] = set()
    for data_dir, cfg in runs:
        key = (str(Path(data_dir).resolve()), cfg.init, cfg.task, cfg.split_seed,
               cfg.val_fraction, cfg.test_fraction, cfg.candidates, cfg.allow_seen_test_cases)
        if key in done:
            continue
        done.add(key)
        if cfg.init not in cards:
            cards[cfg.init] = seen_cases_of(cfg.init)
        check_leakage(data_dir, cfg, cards[cfg.init])
