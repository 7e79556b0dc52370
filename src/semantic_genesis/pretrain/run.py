"""``pretrain(source, out_dir, config)``: one run folder, from patterns or a cohort to checkpoints.

``source`` is a patterns folder (``semgen discover``) or, for a method with ``data = "cohort"``
(Models Genesis), a prepared cohort (or a patterns folder, whose cohort it then uses; see
:mod:`.data`). The config is first resolved (:mod:`.recipe`: the profile's and the method's
values for the fields left at None); the resolved config is what the run folder stores.

The run folder (docs/design.md)::

    run/checkpoints/last.pt   every epoch: weights + card + everything to resume exactly
    run/checkpoints/best.pt   lowest validation loss: weights + card
    run/metrics.csv           one row per epoch          run/tensorboard/   events
    run/curves.png            losses and accuracy        run/restorations.png
    run/pretrain-config.yaml  the config                 run/run.json       provenance + result
    run/cubes.csv             cohort data: the cubes drawn once for this run

An existing run folder is never continued silently (the reference auto-resumed from whatever
checkpoint sat in the working directory, method.md §9.20): pass ``resume`` to continue it or
``overwrite`` to replace it. Only rank 0 writes, and it first claims the folder
(:func:`~semantic_genesis.utils.outdir.claim_output`): a folder holding someone else's files, or
one that contains the patterns, the cohort or the ``init`` checkpoint, is refused, and an OS lock
keeps a second run out while this one writes (the lock dies with the process, so a killed run
resumes). Checkpoints only ever hold finite weights: a NaN or infinite loss or weight stops the
run at that step, naming the last checkpoint whose weights are all finite.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import time
from pathlib import Path
from typing import Any

from semantic_genesis.pretrain.cohort_data import CUBES_CSV, prepare_cubes
from semantic_genesis.pretrain.config import (
    PretrainConfig,
    PretrainResult,
    resolve_method,
)
from semantic_genesis.pretrain.data import PatternsInfo, check_source
from semantic_genesis.pretrain.distributed import (
    gather_objects,
    is_out_of_memory,
    setup_runtime,
    shutdown,
)
from semantic_genesis.pretrain.figures import CURVES_PNG, RESTORATIONS_PNG, draw_figures
from semantic_genesis.pretrain.methods import Method
from semantic_genesis.pretrain.network import backbone_name
from semantic_genesis.pretrain.online_probe import PROBE_DATA, check_probe, make_online_probe
from semantic_genesis.pretrain.recipe import resolve_config
from semantic_genesis.pretrain.resume import check_resume
from semantic_genesis.pretrain.trainer import NonFiniteLoss, Trainer
from semantic_genesis.training.loop import METRICS_CSV, Loop, NonFiniteMetric
from semantic_genesis.utils.atomic import write_json
from semantic_genesis.utils.config import save_config, to_dict
from semantic_genesis.utils.dist import barrier, is_main
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.outdir import claim_output
from semantic_genesis.utils.progress import say
from semantic_genesis.utils.provenance import run_info

CONFIG_YAML = "pretrain-config.yaml"
RUN_JSON = "run.json"
OUTPUTS = (
    "checkpoints",
    "tensorboard",
    METRICS_CSV,
    CURVES_PNG,
    RESTORATIONS_PNG,
    CONFIG_YAML,
    RUN_JSON,
    CUBES_CSV,
    PROBE_DATA,  # the online probe's target and volume cache
)
#: files earlier releases wrote in a run folder (before the ownership marker existed)
LEGACY = (CONFIG_YAML, METRICS_CSV, RUN_JSON)


def pretrain(
    source: str | Path, out_dir: str | Path, config: PretrainConfig | None = None
) -> PretrainResult:
    """Pre-train on a patterns folder or (cohort methods) a prepared cohort; write checkpoints,
    metrics and figures to ``out_dir``.

    Raises:
        SemgenError: bad patterns (other cohort, a class without training cubes, patients of
            an excluded source group), a cohort given to a patterns method, an unreadable
            or non-finite ``init`` checkpoint, a folder that is not a pre-training run folder
            or is being written by another run, an existing run folder without
            ``resume``/``overwrite``, running out of memory, a NaN loss or NaN weights.
    """
    config = config or PretrainConfig()
    method = resolve_method(config)
    config = resolve_config(config, method)
    out_dir = Path(out_dir)
    info = check_source(source, method.data, config.patch, config.exclude_groups)
    init = _read_init(config.init)
    check_probe(config.probe)
    _check_size(config, method, info)
    with contextlib.ExitStack() as claim:
        if is_main():
            inputs = [info.where, info.cohort_dir] + ([config.init] if config.init else [])
            claim.enter_context(
                claim_output(out_dir, "pretrain", inputs=inputs, legacy=LEGACY,
                             settings={info.data: str(info.where), "method": method.label})
            )
        _check_run_folder(out_dir, config)
        return _run(out_dir, config, method, info, init)


def _check_size(config: PretrainConfig, method: Method, info: PatternsInfo) -> None:
    """Refuse a network larger than the memory available before anything is written."""
    import torch

    from semantic_genesis.models.backbone import check_input_size
    from semantic_genesis.models.build import check_fits
    from semantic_genesis.pretrain.network import build_network, make_backbone

    check_fits(lambda: build_network(config, method, info.n_classes), f"--width {config.width}")
    with torch.device("meta"):  # shapes only: does the patch fit the backbone's poolings?
        backbone = make_backbone(config, method, info.n_classes)
    what = "the patterns' patch" if info.data == "patterns" else "--patch"
    check_input_size(backbone, info.patch, what, info.where)


def _read_init(path: str | None) -> Any:
    """The ``init`` checkpoint's weights, read and checked before any work (None: no init)."""
    if not path:
        return None
    from semantic_genesis.models import read_weights

    src = read_weights(path)
    if src.nonfinite:
        raise SemgenError(
            f"--init: the weights hold NaN or infinite values in {len(src.nonfinite)} tensor(s) "
            f"({', '.join(src.nonfinite[:3])}); choose a checkpoint with finite weights",
            path,
        )
    return src


def _run(
    out_dir: Path, config: PretrainConfig, method: Method, info: PatternsInfo, init: Any
) -> PretrainResult:
    """Train into the claimed ``out_dir`` (see :func:`pretrain`)."""
    last = out_dir / "checkpoints" / "last.pt"
    runtime = setup_runtime(config.device)
    try:
        if runtime.main and config.overwrite:
            _clear(out_dir)
        barrier()
        if info.data == "cohort":
            info = prepare_cubes(info, out_dir, config, runtime.main)
        trainer = Trainer(config, method, info, runtime, init)
        resume = config.resume and last.is_file()
        if resume:
            check_resume(last, config)
        elif config.resume:
            say(f"nothing to resume in {out_dir} yet (no {last.name}): starting a new run")
        result = _loop(trainer, out_dir, config, method, info, resume)
        # ranks leave the group together, after rank 0 has written everything: a rank that
        # tore its gloo pairs down while rank 0 was still saving was once seen to abort
        # ("terminate called without an active exception") in a loaded test run
        barrier()
        return result
    except (NonFiniteLoss, NonFiniteMetric) as exc:
        raise SemgenError(
            f"{exc}; stopped ({_last_finite(out_dir / 'checkpoints')}). "
            "Try a lower --lr, or --amp none",
            out_dir,
        ) from None
    except RuntimeError as exc:
        if not is_out_of_memory(exc):
            raise
        raise SemgenError(
            f"out of memory on {runtime.device} with {config.batch_size} cubes per step "
            f"(x{config.accumulate} accumulation, {runtime.world} process(es)) at width "
            f"{config.width}: use a smaller --batch-size (or a larger --accumulate) or a smaller "
            "--width",
            out_dir,
        ) from None
    finally:
        shutdown(runtime)


def _last_finite(ckpt_dir: Path) -> str:
    """Name the newest checkpoint whose weights are all finite (each one is checked)."""
    from semantic_genesis.models.checkpoint import nonfinite_tensors, read_checkpoint

    found = []
    for path in (ckpt_dir / "last.pt", ckpt_dir / "best.pt"):
        if not path.is_file():
            continue
        try:
            ckpt = read_checkpoint(path)
        except SemgenError:
            continue
        if not nonfinite_tensors(ckpt.get("state_dict", {})):
            found.append((int(ckpt.get("epoch", 0)), path))
    if not found:
        return "no checkpoint with finite weights was written"
    epoch, path = max(found)
    return f"the last checkpoint with finite weights is {path} (epoch {epoch})"


def _check_run_folder(out_dir: Path, config: PretrainConfig) -> None:
    ckpts = sorted((out_dir / "checkpoints").glob("*.pt"))
    if ckpts and not (config.resume or config.overwrite):
        raise SemgenError(
            "already holds a pre-training run (checkpoints/"
            f"{ckpts[0].name}); pass --resume to continue it or --overwrite to "
            "replace it",
            out_dir,
        )


def _clear(out_dir: Path) -> None:
    """Remove a previous run's outputs (only the files a run writes)."""
    for name in OUTPUTS:
        path = out_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _card(trainer: Trainer, info: PatternsInfo, method: Method, epoch: int) -> Any:
    from semantic_genesis.models import ModelCard
    from semantic_genesis.prepare.groups import cohort_case_hashes

    cfg, seen = trainer.config, set(info.seen)
    card = ModelCard(
        architecture=backbone_name(cfg, method),
        backbone=cfg.backbone,
        width=getattr(trainer.net.backbone, "width", cfg.width),  # nnunet: the plans' first stage
        in_channels=1,
        n_classes=info.n_classes,
        norm=cfg.norm,
        head=cfg.head,
        patch_size=info.patch,
        spacing=info.spacing,
        modality=info.modality,
        intensity_window=(-1000.0, 1000.0) if info.modality == "ct" else None,
        pretext=method.pretext or method.name,
        semantic=method.semantic,
        method=method.name,
        data_fingerprint=info.fingerprint,
        seen_cases=cohort_case_hashes(r for r in info.records if r.id in seen),
        notes={
            "method": method.label,
            "preset": method.perturbation if isinstance(method.perturbation, str) else "custom",
            "lambda_rec": cfg.lambda_rec,
            "lambda_cls": cfg.lambda_cls,
            "epoch": epoch,
            info.data: str(info.where),
            "preset_options": dict(getattr(trainer.preset, "options", {})),
            "n_rotations": getattr(trainer.preset, "n_aux_classes", 0),
            **_family_kwargs(trainer.net.backbone),
        },
    )
    return card


def _family_kwargs(backbone: Any) -> dict[str, Any]:
    """A family's own ``create_model`` arguments (``card_kwargs()``: the nnunet plans), stored
    under ``notes["model_kwargs"]`` so the checkpoint rebuilds from its card alone."""
    from semantic_genesis.models.registry import CARD_KWARGS

    own = getattr(backbone, "card_kwargs", None)
    return {CARD_KWARGS: own()} if callable(own) else {}


def metric_columns(metric_names: list[str]) -> tuple[str, ...]:
    """The ``metrics.csv`` header of a method with these statistics."""
    return ("epoch", *(f"train_{s}" for s in metric_names), *(f"val_{s}" for s in metric_names),
            "lr", "cubes_per_s", "seconds")


def _make_loop(
    trainer: Trainer, out_dir: Path, config: PretrainConfig, method: Method, info: PatternsInfo
) -> Loop:
    """The shared epoch loop (:class:`~semantic_genesis.training.Loop`) over this trainer.

    ``last.pt`` keeps the layout of earlier releases: backbone ``state_dict``, ``model_card``,
    ``method``, ``config``, ``aux_state_dict``, ``scaler`` and one RNG state per process."""
    rt = trainer.rt
    parts = trainer.resumable_parts()

    def extras(epoch: int) -> dict[str, Any]:
        heads = parts.get("aux_state_dict")
        return {"method": method.label, **({"aux_state_dict": heads.state_dict()} if heads else {})}

    def after_epoch(row: dict[str, Any], improved: bool) -> None:
        if rt.main and config.figures:
            draw_figures(trainer, loop.history, out_dir, row["epoch"])
        if rt.main:
            say(_summary(row, improved))

    loop = Loop(
        model=trainer.net.backbone, optimizer=trainer.optimizer, scheduler=trainer.scheduler,
        epochs=config.epochs, patience=config.patience, min_delta=config.min_delta,
        out_dir=out_dir, card=lambda epoch: _card(trainer, info, method, epoch),
        # _check_resume compared the settings (older runs' missing fields count as defaults)
        settings=to_dict(config), resumable=tuple(to_dict(config)),
        state=parts, generators={"perturb": trainer.perturb_gen}, extras=extras,
        columns=metric_columns(trainer.metric_names), untagged=("cubes_per_s", "seconds", "probe_auc"),
        tensorboard=True, after_epoch=after_epoch, restore_best=False, main=rt.main,
        gather_rng=lambda state: gather_objects(state, rt), rank=rt.rank, desc="pre-training",
    )
    return loop


def _loop(
    trainer: Trainer, out_dir: Path, config: PretrainConfig, method: Method, info: PatternsInfo,
    resume: bool,
) -> PretrainResult:
    rt = trainer.rt
    ckpt_dir = out_dir / "checkpoints"
    if rt.main:
        save_config(config, out_dir / CONFIG_YAML)
        say(
            f"pre-training {method.label} ({backbone_name(config, method)}, "
            f"{_perturbation_name(method)}) on "
            f"{len(trainer.train_set)} training / {len(trainer.val_set or [])} validation cubes, "
            f"{trainer.steps} steps of {config.batch_size} per epoch, {rt.world} process(es) "
            f"on {rt.device}"
        )

    probe = make_online_probe(config, info.patch, out_dir, rt.main)  # method.md §7.3

    def step_fn(epoch: int) -> dict[str, float]:
        train = trainer.train_epoch(epoch - 1)
        watched = {} if probe is None else probe.columns(epoch, trainer.net.backbone, rt.device)
        return {**train.means, "cubes_per_s": train.cubes / max(train.seconds, 1e-9),
                "seconds": train.seconds, **watched}

    def eval_fn() -> dict[str, float] | None:
        val = trainer.evaluate()
        return None if val is None else val.means

    start = time.perf_counter()
    done = _make_loop(trainer, out_dir, config, method, info).run(step_fn, eval_fn, resume=resume)
    result = PretrainResult(
        out_dir=out_dir,
        best_checkpoint=ckpt_dir / "best.pt",
        last_checkpoint=ckpt_dir / "last.pt",
        method=method.label,
        epochs_run=done.epochs_run,
        best_epoch=done.best_epoch,
        best_val_loss=done.best_loss,
        stopped_early=done.stopped_early,
        seconds=time.perf_counter() - start,
        final=dict(done.history[-1]) if done.history else {},
    )
    if rt.main:
        write_json(
            out_dir / RUN_JSON,
            {
                "run_info": run_info(),
                "config": to_dict(config),
                "data": info.summary(),
                "result": to_dict(result),
            },
        )
    return result


def _perturbation_name(method: Method) -> str:
    p = method.perturbation
    return f"preset {p}" if isinstance(p, str) else f"perturbation {getattr(p, '__name__', p)}"


def _summary(row: dict[str, Any], improved: bool) -> str:
    def f(key: str) -> str:
        v = row.get(key)
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"

    others = [k.removeprefix("val_") for k in row if k.startswith("val_") and k != "val_loss"]
    val = ", ".join([f"val loss {f('val_loss')}"] + [f"{k} {f('val_' + k)}" for k in others])
    return (
        f"epoch {row['epoch']}: train loss {f('train_loss')} | {val} | "
        f"{f('cubes_per_s')} cubes/s" + (" *best*" if improved else "")
    )
