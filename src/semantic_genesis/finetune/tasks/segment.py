"""Volume segmentation (the NCS / LCS / BMS recipes): the whole U-Net, Dice loss, IoU and Dice.

Training cuts patches of the recipe's size (64x64x32) from the training scans; with probability
``foreground_probability`` a patch is centred on a random labelled voxel, else anywhere, so rare
structures (a nodule is < 0.1 % of a chest CT) are seen often enough. Validation uses a fixed set
of such patches (same seed every epoch). Testing runs MONAI's sliding-window inference over each
whole test scan and scores the thresholded (0.5) or arg-max label map (method.md §7.2).
Binary labels: one output channel and a sigmoid; more labels: one channel per label and a softmax.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semantic_genesis.finetune.backbone import set_train_mode
from semantic_genesis.finetune.config import FinetuneConfig
from semantic_genesis.finetune.data import (
    VolumeCache,
    crop,
    find_images,
    find_labels,
    split_cases,
    subsample,
)
from semantic_genesis.finetune.inference import logits_to_labels, predict_volume
from semantic_genesis.finetune.metrics import flag, segmentation_scores
from semantic_genesis.finetune.recipes import Recipe
from semantic_genesis.finetune.tasks.common import (
    TaskOutcome,
    batches,
    build_task_model,
    fit_in_folder,
    optimiser_step,
    random_flips,
    to_tensor,
    training_rng,
)
from semantic_genesis.io.volume import Volume
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.progress import progress
from semantic_genesis.utils.seed import derive_rng


@dataclass
class Case:
    """One scan with its label map (memory-mapped) and the flat indices of its labelled voxels."""

    id: str
    image: Volume
    label: Volume
    foreground: np.ndarray


def select_cases(
    data_dir: Path, cfg: FinetuneConfig
) -> tuple[dict[str, list[str]], dict[str, Path], dict[str, Path], dict[str, Any]]:
    """Case ids per split (train reduced to the label fraction), image and label paths."""
    images, labels = find_images(data_dir), find_labels(data_dir)
    ids = sorted(set(images) & set(labels))
    if not ids:
        raise SemgenError(
            "no image in images/ has a label map of the same name in labels/", data_dir
        )
    split = split_cases(
        ids,
        cfg.split_seed,
        (cfg.val_fraction, cfg.test_fraction),
        images,
        Path(data_dir) / "split.csv",
    )
    splits = {name: [i for i in ids if split.get(i) == name] for name in ("train", "val", "test")}
    info: dict[str, Any] = {
        "images_without_labels": len(set(images) - set(labels)), "notes": [], "warnings": []
    }
    splits["train"] = subsample(splits["train"], cfg.label_fraction, cfg.seed, "labels-cases")
    if not splits["val"]:
        splits["val"] = splits["train"]
        info["notes"].append("no validation scans: validation uses patches of the training scans")
    for name, members in splits.items():
        info[f"{name}_cases"] = len(members)
    info["test_ids"] = splits["test"]
    return splits, images, labels, info


def load_cases(
    ids: list[str], images: dict[str, Path], labels: dict[str, Path], cache: VolumeCache
) -> list[Case]:
    """Normalised, memory-mapped scans and label maps (converted once into the cache)."""
    out = []
    for i in progress(ids, desc="scans"):
        image = cache.image(images[i])
        label = cache.label(labels[i], like=image)
        out.append(Case(i, image, label, np.flatnonzero(np.asarray(label.array))))
    return out


def sample_patch(
    case: Case, patch: tuple[int, int, int], rng: np.random.Generator, p_foreground: float
) -> tuple[np.ndarray, np.ndarray]:
    """A random (image, label) patch; foreground-centred with probability ``p_foreground``."""
    shape = np.array(case.image.shape)
    size = np.array(patch)
    if len(case.foreground) and rng.random() < p_foreground:
        center = np.array(np.unravel_index(rng.choice(case.foreground), tuple(shape)))
        corner = center - size // 2 + rng.integers(-(size // 4), size // 4 + 1)
    else:
        corner = np.array(
            [rng.integers(0, max(1, s - p + 1)) for s, p in zip(shape, size, strict=True)]
        )
    return crop(case.image.array, corner, patch), crop(case.label.array, corner, patch)


def make_loss(n_labels: int) -> torch.nn.Module:
    """Dice loss ``1 - (2|A∩B| + 1) / (|A| + |B| + 1)`` over the batch (the reference's smooth
    Dice, method.md §7.2): sigmoid for binary, softmax over labels without background else."""
    from monai.losses import DiceLoss

    if n_labels == 2:
        return DiceLoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0, batch=True)
    return DiceLoss(
        softmax=True,
        to_onehot_y=True,
        include_background=False,
        smooth_nr=1.0,
        smooth_dr=1.0,
        batch=True,
    )


def run_segment(
    data_dir: Path,
    out_dir: Path,
    cfg: FinetuneConfig,
    recipe: Recipe,
    cache: VolumeCache,
    device: torch.device,
) -> TaskOutcome:
    """Fine-tune and test a segmentation U-Net; write predictions/<id>.nii.gz."""
    splits, images, labels, info = select_cases(data_dir, cfg)
    cases = {n: load_cases(ids, images, labels, cache) for n, ids in splits.items()}
    n_labels = info["n_labels"] = count_labels(cfg, cases)
    if not any(len(c.foreground) for c in cases["train"]):
        raise SemgenError("the training label maps are empty (no labelled voxel)", data_dir)
    model, init_info = build_task_model(
        "segment",
        1 if n_labels == 2 else n_labels,
        cfg,
        {"patch": recipe.patch, "inference_patch": cfg.inference_patch},
        device,
    )
    loss_fn = make_loss(n_labels)
    rng = training_rng(cfg, "segment-train")
    steps = cfg.steps_per_epoch or max(1, -(-8 * len(cases["train"]) // recipe.batch_size))
    val_x, val_y = validation_patches(cases["val"], recipe.patch, cfg)
    train_epoch = _epoch_trainer(model, cases["train"], loss_fn, steps, cfg, recipe, rng, device)
    validate = _validator(model, val_x, val_y, loss_fn, n_labels, recipe.batch_size, device)
    result = fit_in_folder(model, cfg, recipe, data_dir, out_dir, init_info, n_labels, rng,
                           train_epoch, validate, "finetune segment")
    metrics = evaluate_cases(
        model,
        cases["test"],
        recipe,
        cfg,
        n_labels,
        device,
        Path(out_dir) / "predictions" if cfg.save_predictions else None,
        info["warnings"],
    )
    return TaskOutcome("iou", metrics, result, info, init_info, model)


def count_labels(cfg: FinetuneConfig, cases: dict[str, list[Case]]) -> int:
    """The number of labels, background included: ``cfg.n_labels``, else one more than the
    highest label in any label map (at least 2)."""
    return cfg.n_labels or max(
        2, 1 + max(int(np.max(c.label.array)) for group in cases.values() for c in group)
    )


def validation_patches(
    cases: list[Case], patch: tuple[int, int, int], cfg: FinetuneConfig
) -> tuple[np.ndarray, np.ndarray]:
    """The fixed validation set: ``val_patches_per_case`` patches of each validation scan,
    drawn from a generator of ``split_seed``, so every epoch (and run) sees the same ones."""
    val_rng = derive_rng(cfg.split_seed, "val-patches")
    val = [
        sample_patch(c, patch, val_rng, cfg.foreground_probability)
        for c in cases
        for _ in range(cfg.val_patches_per_case)
    ]
    return np.stack([v[0] for v in val]), np.stack([v[1] for v in val])


def _epoch_trainer(
    model: torch.nn.Module,
    train: list[Case],
    loss_fn: torch.nn.Module,
    steps: int,
    cfg: FinetuneConfig,
    recipe: Recipe,
    rng: np.random.Generator,
    device: torch.device,
) -> Callable[[torch.optim.Optimizer], float]:
    """One training epoch: ``steps`` batches of patches from randomly picked training scans,
    with seeded flips when ``augment``; it returns the mean batch loss."""

    def train_epoch(opt: torch.optim.Optimizer) -> float:
        set_train_mode(model, True)
        losses = []
        for _ in range(steps):
            picks = rng.integers(0, len(train), recipe.batch_size)
            pairs = [
                sample_patch(train[i], recipe.patch, rng, cfg.foreground_probability)
                for i in picks
            ]
            x = to_tensor(np.stack([p[0] for p in pairs]), device)
            y = to_tensor(np.stack([p[1] for p in pairs]), device)
            if cfg.augment:
                x, y = random_flips([x, y], rng)
            losses.append(optimiser_step(opt, loss_fn(model(x), y)))
        return float(np.mean(losses))

    return train_epoch


def _validator(
    model: torch.nn.Module,
    val_x: np.ndarray,
    val_y: np.ndarray,
    loss_fn: torch.nn.Module,
    n_labels: int,
    batch_size: int,
    device: torch.device,
) -> Callable[[], tuple[float, float]]:
    """The validation step on the fixed patches: (mean loss per patch, Dice)."""

    @torch.no_grad()
    def validate() -> tuple[float, float]:
        set_train_mode(model, False)
        losses, preds = [], []
        for s in batches(len(val_x), batch_size):
            logits = model(to_tensor(val_x[s], device))
            losses.append(loss_fn(logits, to_tensor(val_y[s], device)).item() * len(val_x[s]))
            preds.append(logits_to_labels(logits).cpu().numpy())
        dice = segmentation_scores(np.concatenate(preds), val_y.astype(np.uint8), n_labels)
        return float(np.sum(losses) / len(val_x)), dice["dice"]

    return validate


def evaluate_cases(
    model: torch.nn.Module,
    cases: list[Case],
    recipe: Recipe,
    cfg: FinetuneConfig,
    n_labels: int,
    device: torch.device,
    pred_dir: Path | None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """Sliding-window prediction of every test scan; Dice and IoU per case and their mean."""
    from semantic_genesis.io import write_nifti

    per_case = {}
    for case in progress(cases, desc="test scans"):
        pred = predict_volume(
            model,
            np.asarray(case.image.array),
            tuple(cfg.inference_patch or recipe.patch),
            device,
            batch_size=recipe.batch_size,
            overlap=cfg.overlap,
        )
        per_case[case.id] = segmentation_scores(pred, np.asarray(case.label.array), n_labels)
        if pred_dir is not None:
            write_nifti(
                Volume(pred, case.image.spacing, case.image.origin, case.image.direction),
                pred_dir / f"{case.id}.nii.gz",
            )
    return summarise_cases(per_case, notes if notes is not None else [])


def _mean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return float(np.mean(kept)) if kept else math.nan


def summarise_cases(per_case: dict[str, dict[str, Any]], notes: list[str]) -> dict[str, Any]:
    """The mean of each score over the cases that have it; classes absent from both prediction
    and truth, and cases with nothing to score, are flagged (console and ``notes``)."""
    first = per_case[next(iter(per_case))]
    keys = [k for k in first if k != "ignored_classes"]
    metrics: dict[str, Any] = {k: _mean([s[k] for s in per_case.values()]) for k in keys}
    metrics["n"] = len(per_case)
    ignored = {c: s["ignored_classes"] for c, s in per_case.items() if s["ignored_classes"]}
    metrics["ignored_classes"] = ignored
    if ignored:
        shown = "; ".join(f"{c}: {v}" for c, v in list(ignored.items())[:3])
        flag(f"label(s) absent from both the prediction and the truth were not scored "
             f"({shown}{'; ...' if len(ignored) > 3 else ''})", notes)
    empty = [c for c, s in per_case.items() if math.isnan(s["iou"])]
    metrics["cases_not_scored"] = empty
    if empty:
        flag(f"{len(empty)} of {len(per_case)} test case(s) have no label in the truth nor the "
             f"prediction and are left out of the means: {', '.join(empty[:5])}", notes)
    if math.isnan(metrics["iou"]):
        flag("no test case had anything to score: the test IoU and Dice are undefined (NaN)",
             notes)
    metrics["per_case"] = per_case
    return metrics
