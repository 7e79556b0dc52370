"""``finetune()``: one target-task run, from a data folder to metrics.json.

Outputs in ``out_dir``: ``config.yaml`` (the config), ``metrics.json`` (test metrics, best
epoch, epochs to best, learning curves, data counts, the initialisation and its load report,
run_info), ``curves.png``, predictions (``predictions.csv`` for classification,
``predictions/<id>.nii.gz`` masks for segmentation) and, with ``save_model``, ``model.pt``.
While training, the shared loop keeps ``checkpoints/last.pt`` (everything to resume exactly),
``checkpoints/best.pt`` (the best validation loss's weights and model card) and ``metrics.csv``
up to date each epoch; ``config.resume`` continues a killed run from last.pt. ``metrics.json``
is written last: its presence marks a finished run. Without ``save_model`` the checkpoints are
removed once the run has finished (a benchmark grid would otherwise keep an optimiser state per
cell).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semantic_genesis.finetune.config import FinetuneConfig
from semantic_genesis.utils.atomic import write_json
from semantic_genesis.utils.config import save_config, to_dict
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.progress import say

METRICS_JSON = "metrics.json"


@dataclass
class FinetuneResult:
    """The headline numbers of a run (everything else is in ``metrics.json``)."""

    out_dir: Path
    metric: str  # "auc" (classify) or "iou" (segment)
    score: float  # the test value of ``metric``
    test: dict[str, Any]
    best_epoch: int
    epochs_run: int
    warnings: list[str] = dataclasses.field(default_factory=list)  # flagged on the console


def check_resumable(out_dir: str | Path) -> None:
    """Refuse to resume a folder holding a finished run, or no ``checkpoints/last.pt``."""
    from semantic_genesis.training.loop import CHECKPOINTS, LAST

    out = Path(out_dir)
    if (out / METRICS_JSON).is_file():
        raise SemgenError(f"cannot resume: the run in this folder has finished ({METRICS_JSON});"
                          " retrain it with --overwrite, or choose another folder", out)
    if not (out / CHECKPOINTS / LAST).is_file():
        raise SemgenError(f"nothing to resume: no {CHECKPOINTS}/{LAST} (the run stopped before "
                          "its first epoch ended, or never ran); start it without resume", out)


def finetune(
    data_dir: str | Path,
    out_dir: str | Path,
    config: FinetuneConfig | None = None,
    save_model: bool = True,
    notes: str = "",
) -> FinetuneResult:
    """Fine-tune ``config.init`` on the target task in ``data_dir`` and test it.

    Args:
        data_dir: a LUNA16-style folder (``subset*/*.mhd`` or ``images/``, ``candidates.csv``)
            for classification; ``images/`` and ``labels/`` for segmentation.
        out_dir: where the outputs go (created).
        config: the run's settings (defaults: classification from scratch).
        save_model: also write the fine-tuned weights (``model.pt``, with a model card);
            without it, ``checkpoints/`` is removed once the run has finished.
        notes: what a reader of metrics.json must know about the data (e.g. how small it is).

    Raises:
        SemgenError: among others, a test case of the target was seen in pre-training of
            ``config.init`` and ``config.allow_seen_test_cases`` is off (``finetune.leakage``).
    """
    from semantic_genesis.finetune.leakage import check_leakage
    from semantic_genesis.finetune.tasks.common import resolve_device
    from semantic_genesis.utils.seed import seed_everything

    config = config or FinetuneConfig()
    recipe = config.resolved_recipe()
    out = Path(out_dir)
    leakage = check_leakage(data_dir, config)  # before any output: method.md §1.1
    _start_folder(out, config)
    seed_everything(config.seed)
    device = resolve_device(config.device)
    t0 = time.perf_counter()
    outcome = _run_task(Path(data_dir), out, config, recipe, device)
    outcome.data.setdefault("warnings", []).extend(leakage["warnings"])
    score = float(outcome.test[outcome.metric])
    metrics = _metrics(outcome, config, recipe, data_dir, notes, device, time.perf_counter() - t0)
    metrics["leakage"] = {k: v for k, v in leakage.items() if k != "warnings"}
    _write_outputs(out, outcome, config, recipe, metrics, save_model)
    fit = outcome.fit
    warned = metrics["warnings"]
    say(
        f"finetune {config.task} ({config.init}): test {outcome.metric} = {score:.4f}, "
        f"best epoch {fit.best_epoch} of {len(fit.history)} -> {out}"
        + (f" ({len(warned)} warning(s), listed in {METRICS_JSON})" if warned else "")
    )
    return FinetuneResult(
        out, outcome.metric, score, outcome.test, fit.best_epoch, len(fit.history), warned
    )


def _start_folder(out: Path, config: FinetuneConfig) -> None:
    """Check a resumed folder can be resumed, create ``out`` and save the run's config."""
    if config.resume:
        check_resumable(out)
    out.mkdir(parents=True, exist_ok=True)
    # the saved config re-runs the stage: resuming is what this run did, not one of its settings
    save_config(dataclasses.replace(config, resume=False), out / "config.yaml")


def _run_task(
    data_dir: Path, out: Path, config: FinetuneConfig, recipe: Any, device: Any
) -> Any:
    """Run the config's task (classify or segment) with its volume cache; its TaskOutcome."""
    from semantic_genesis.finetune.data import VolumeCache

    cache = VolumeCache(
        Path(config.cache_dir) if config.cache_dir else out / "cache",
        config.modality,
        config.window,
    )
    if config.task == "classify":
        from semantic_genesis.finetune.tasks.classify import run_classify as run_task
    else:
        from semantic_genesis.finetune.tasks.segment import run_segment as run_task
    return run_task(data_dir, out, config, recipe, cache, device)


def _metrics(
    outcome: Any,
    config: FinetuneConfig,
    recipe: Any,
    data_dir: str | Path,
    notes: str,
    device: Any,
    seconds: float,
) -> dict[str, Any]:
    """The content of metrics.json: test metrics, training summary and curves, data counts,
    the initialisation, the recipe and config, and the run's provenance."""
    from semantic_genesis.utils.provenance import run_info

    fit = outcome.fit
    return {
        "task": config.task,
        "init": config.init,
        "metric": outcome.metric,
        "score": float(outcome.test[outcome.metric]),
        "test": outcome.test,
        "best_epoch": fit.best_epoch,
        "epochs_to_best": fit.best_epoch,
        "epochs_run": len(fit.history),
        "stopped_early": fit.stopped_early,
        "best_val_loss": fit.best_val_loss,
        "label_fraction": config.label_fraction,
        "seed": config.seed,
        "data_dir": str(Path(data_dir).resolve()),
        "notes": notes,
        "data": outcome.data,
        "initialisation": outcome.init,
        "recipe": dataclasses.asdict(recipe),
        "config": to_dict(config),
        "device": str(device),
        "seconds": round(seconds, 2),
        "warnings": list(outcome.data.get("warnings", [])),
        "history": [dataclasses.asdict(h) for h in fit.history],
        "run_info": run_info(),
    }


def _write_outputs(
    out: Path,
    outcome: Any,
    config: FinetuneConfig,
    recipe: Any,
    metrics: dict[str, Any],
    save_model: bool,
) -> None:
    """Write curves.png, model.pt (with ``save_model``) and, last, metrics.json, which marks
    the run finished; without ``save_model`` the run's checkpoints are then removed."""
    from semantic_genesis.finetune.plots import plot_curves

    fit = outcome.fit
    plot_curves(
        fit.history,
        out / "curves.png",
        "AUC" if outcome.metric == "auc" else "Dice",
        fit.best_epoch,
        f"{config.task} from {Path(config.init).name}: test {outcome.metric} "
        f"{metrics['score']:.3f}",
    )
    if save_model:
        _save_model(outcome, config, recipe.patch, out / "model.pt")
    write_json(out / METRICS_JSON, metrics)
    if not save_model:
        from semantic_genesis.training.loop import CHECKPOINTS

        shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)  # this run's own files


def _save_model(
    outcome: Any, config: FinetuneConfig, patch: tuple[int, int, int], path: Path
) -> None:
    from semantic_genesis.finetune.trainer import finetune_card
    from semantic_genesis.models.checkpoint import save_checkpoint

    n_classes = 1 if config.task == "classify" else outcome.data["n_labels"]
    card = finetune_card(config, outcome.init, n_classes, patch)
    state = {k: v.detach().cpu() for k, v in outcome.model.state_dict().items()}
    save_checkpoint({"state_dict": state, "model_card": card.to_dict()}, path)
