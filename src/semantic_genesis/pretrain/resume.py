"""May ``last.pt`` be continued with this config? (``pretrain(..., resume=True)``)

Resuming needs the same *decided* settings (:mod:`.recipe`): a field the stored run predates,
or left at None then, counts as this project's value (:func:`.recipe.stored_value`); the same
method named by flags or by name is the same method; :data:`.config.RESUMABLE_CHANGES` may
change (more epochs, another device ...).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from semantic_genesis.pretrain.config import (
    PRETEXT_METHODS,
    RESUMABLE_CHANGES,
    PretrainConfig,
    method_spec,
)
from semantic_genesis.pretrain.recipe import stored_value
from semantic_genesis.utils.config import to_dict
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.progress import say


def check_resume(last: Path, config: PretrainConfig) -> None:
    """Refuse to resume from a ``last.pt`` that is not a pre-training run's, holds non-finite
    weights, or was run with other settings (a field the stored run predates counts as its
    default; the same method named by flags or by name is the same method)."""
    from semantic_genesis.models.checkpoint import nonfinite_tensors, read_checkpoint

    ckpt = read_checkpoint(last)
    if "optimizer" not in ckpt:
        raise SemgenError("cannot resume: not a last.pt written by `semgen pretrain`", last)
    bad = nonfinite_tensors(ckpt.get("state_dict", {}))
    if bad:
        raise SemgenError(
            f"cannot resume: the weights hold NaN or infinite values ({', '.join(bad[:3])}); "
            f"start a new run with --overwrite, or --init from a checkpoint with finite weights",
            last,
        )
    stored, now = ckpt.get("config", {}), to_dict(config)
    free = set(RESUMABLE_CHANGES)
    if _same_method(stored, config):  # e.g. --method semantic-genesis for --pretext genesis
        free |= {"method", "pretext", "semantic"}
    defaults = to_dict(PretrainConfig())
    changed = sorted(k for k in now
                     if k not in free and stored_value(stored, k, defaults.get(k)) != now[k])
    if changed:
        detail = ", ".join(f"{k}: {stored_value(stored, k, defaults.get(k))!r} -> {now[k]!r}"
                           for k in changed[:4])
        raise SemgenError(
            f"cannot resume with different settings ({detail}); use the run's "
            "pretrain-config.yaml settings or start a new run",
            last,
        )
    say(f"resuming after epoch {int(ckpt['epoch'])} from {last}")


def _same_method(stored: dict[str, Any], config: PretrainConfig) -> bool:
    """True when a stored config names the same method as ``config``, by flags or by name."""
    old = SimpleNamespace(method=stored.get("method"), pretext=stored.get("pretext", "genesis"),
                          semantic=stored.get("semantic", True))
    from semantic_genesis.pretrain.methods.registry import canonical_name

    return old.pretext in PRETEXT_METHODS and (
        canonical_name(method_spec(old)) == canonical_name(method_spec(config)))
