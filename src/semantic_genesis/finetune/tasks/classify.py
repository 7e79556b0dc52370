"""Candidate classification (the NCC recipe: LUNA16 nodule false-positive reduction).

Each candidate of ``candidates.csv`` (world mm) is mapped to a voxel index with the scan's ITK
geometry (``Volume.world_to_voxel``) and a cube of the recipe's patch (64x64x32) is cut around it,
zero-padded at the scan's border. Training balances the classes by sampling: every epoch sees
each example of the rarer class once and as many randomly drawn examples of the other.
Loss: binary cross-entropy on the logits; metric: ROC AUC (method.md §7.2). The validation loss
that picks the kept epoch (and drives the schedule) is the class-balanced cross-entropy (the mean
of the per-class means), the objective the balanced training optimises: the plain mean over a
1:20 validation set rewards pushing every probability down, not separating the classes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from semantic_genesis.finetune.backbone import set_train_mode
from semantic_genesis.finetune.config import FinetuneConfig
from semantic_genesis.finetune.data import (
    Candidate,
    VolumeCache,
    extract_cube,
    find_images,
    read_candidates,
    split_cases,
    subsample,
)
from semantic_genesis.finetune.metrics import flag, roc_auc
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
from semantic_genesis.io.manifests import write_csv
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.progress import progress
from semantic_genesis.utils.seed import derive_rng


@dataclass
class CubeSet:
    """Cubes cut around candidates: float16 (N, X, Y, Z) in [0, 1], labels (N,); ``outside``
    lists the candidates left out because their point lies outside their scan."""

    cubes: np.ndarray
    labels: np.ndarray
    candidates: list[Candidate]
    outside: list[Candidate] = field(default_factory=list)


def select_candidates(
    data_dir: Path, cfg: FinetuneConfig
) -> tuple[dict[str, list[Candidate]], dict[str, Path], dict[str, Any]]:
    """The candidates of each split (train already reduced to the label fraction)."""
    images = find_images(data_dir)
    path = Path(data_dir) / cfg.candidates
    every = read_candidates(path)
    usable = [c for c in every if c.seriesuid in images]
    if not usable:
        raise SemgenError(
            f"none of the {len(every)} candidates has its scan in the data folder", path
        )
    if {c.label for c in usable} - {0, 1}:
        raise SemgenError("classification supports the binary classes 0 and 1", path)
    split = split_cases(
        sorted({c.seriesuid for c in usable}),
        cfg.split_seed,
        (cfg.val_fraction, cfg.test_fraction),
        images,
        Path(data_dir) / "split.csv",
    )
    by_split: dict[str, list[Candidate]] = defaultdict(list)
    for c in usable:
        if c.seriesuid in split:
            by_split[split[c.seriesuid]].append(c)
    info: dict[str, Any] = {
        "candidates_file": str(path),
        "candidates_without_scan": len(every) - len(usable),
        "notes": [],
        "warnings": [],
    }
    _flag_missing_scans(every, images, path, info["warnings"])
    for name in list(by_split):
        by_split[name] = _reduce_split(name, by_split[name], cfg, info["notes"])
    if not by_split.get("val"):
        by_split["val"] = by_split["train"]
        info["notes"].append("no validation scans: validation uses the training candidates")
    if {c.label for c in by_split["train"]} != {0, 1}:
        raise SemgenError(
            "the training scans need candidates of both classes "
            "(raise --label-fraction or add scans)",
            path,
        )
    for name, cands in by_split.items():
        info[f"{name}_candidates"] = len(cands)
        info[f"{name}_positives"] = sum(c.label for c in cands)
        info[f"{name}_scans"] = len({c.seriesuid for c in cands})
    return dict(by_split), images, info


def _reduce_split(
    name: str, cands: list[Candidate], cfg: FinetuneConfig, notes: list[str]
) -> list[Candidate]:
    """One split's candidates, positives first: negatives capped at ``negatives_per_positive``
    per positive (a seeded draw, noted), and the training split reduced to the label fraction."""
    pos = [c for c in cands if c.label == 1]
    neg = [c for c in cands if c.label == 0]
    cap = int(round(cfg.negatives_per_positive * len(pos)))
    if cfg.negatives_per_positive > 0 and len(neg) > cap:
        keep = derive_rng(cfg.split_seed, "negatives", name).choice(len(neg), cap, replace=False)
        neg = [neg[i] for i in sorted(keep)]
        notes.append(f"{name}: kept {cap} negatives ({cfg.negatives_per_positive:g} per positive)")
    if name == "train":
        pos = subsample(pos, cfg.label_fraction, cfg.seed, "labels-positive")
        neg = subsample(neg, cfg.label_fraction, cfg.seed, "labels-negative")
    return pos + neg


def _flag_missing_scans(
    every: list[Candidate], images: dict[str, Path], path: Path, notes: list[str]
) -> None:
    """Say (console and report) how many candidates name scans the data folder lacks."""
    left = [c for c in every if c.seriesuid not in images]
    if left:
        missing = sorted({c.seriesuid for c in left})
        flag(f"{path}: {len(left)} candidate(s) name {len(missing)} scan(s) not in the data "
             f"folder and are left out ({', '.join(missing[:3])}"
             f"{', ...' if len(missing) > 3 else ''})", notes)


def cut_cubes(
    candidates: list[Candidate],
    images: dict[str, Path],
    cache: VolumeCache,
    patch: tuple[int, int, int],
) -> CubeSet:
    """Cut one cube per candidate, reading each scan once. A candidate whose point lies
    outside its scan (a wrong coordinate system, another scan's row) would give an empty cube
    that still counts in the AUC: it is left out and listed in ``outside``."""
    cubes = np.zeros((len(candidates), *patch), dtype=np.float16)
    inside = np.ones(len(candidates), dtype=bool)
    by_series: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(candidates):
        by_series[c.seriesuid].append(i)
    for uid in progress(sorted(by_series), desc="cubes"):
        vol = cache.image(images[uid])
        idx = by_series[uid]
        centers = vol.world_to_voxel(np.array([candidates[i].world for i in idx]))
        inside[idx] = np.all((centers > -0.5) & (centers < np.array(vol.shape) - 0.5), axis=1)
        for i, center in zip(idx, centers, strict=True):
            cubes[i] = extract_cube(vol.array, center, patch)
    kept = [c for c, ok in zip(candidates, inside, strict=True) if ok]
    return CubeSet(
        cubes[inside],
        np.array([c.label for c in kept], dtype=np.int64),
        kept,
        [c for c, ok in zip(candidates, inside, strict=True) if not ok],
    )


def drop_outside(sets: dict[str, CubeSet], info: dict[str, Any], path: Path) -> None:
    """Flag the candidates left out because they lie outside their scan (console and report),
    update the counts, and refuse a training set left without both classes."""
    outside = sorted((c for s in sets.values() for c in s.outside), key=lambda c: c.line)
    info["candidates_outside_scan"] = len(outside)
    if outside:
        shown = "; ".join(
            f"line {c.line}: {c.seriesuid} at ({', '.join(f'{v:g}' for v in c.world)}) mm"
            for c in outside[:3]
        )
        flag(f"{path}: {len(outside)} candidate(s) lie outside their scan and are left out "
             f"of training and test ({shown}{'; ...' if len(outside) > 3 else ''})",
             info["warnings"])
    for name, s in sets.items():
        info[f"{name}_candidates"] = len(s.candidates)
        info[f"{name}_positives"] = int(s.labels.sum())
    if set(sets["train"].labels.tolist()) != {0, 1}:
        raise SemgenError("after leaving out the candidates outside their scans, the training "
                          "scans lack a class", path)
    if not sets["test"].candidates:
        raise SemgenError("no test candidate lies inside its scan", path)
    if not sets["val"].candidates:
        sets["val"] = sets["train"]
        info["notes"].append("no validation candidate inside its scan: validation uses the "
                             "training candidates")


def balanced_order(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One epoch: every example of the rarer class and as many drawn from the other, shuffled."""
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    rare, common = (pos, neg) if len(pos) <= len(neg) else (neg, pos)
    picked = rng.choice(common, size=len(rare), replace=False)
    return rng.permutation(np.concatenate([rare, picked]))


def balanced_bce(logits: np.ndarray, labels: np.ndarray) -> float:
    """Binary cross-entropy averaged within each class, then over the classes present."""
    loss = F.binary_cross_entropy_with_logits(
        torch.from_numpy(logits).float(), torch.from_numpy(labels).float(), reduction="none"
    ).numpy()
    return float(np.mean([loss[labels == c].mean() for c in np.unique(labels)]))


@torch.no_grad()
def predict_logits(
    model: torch.nn.Module, cubes: np.ndarray, batch_size: int, device: torch.device
) -> np.ndarray:
    """Logits of the positive class for every cube (model in eval mode)."""
    set_train_mode(model, False)
    out = [
        model(to_tensor(cubes[s], device))[:, 0].float().cpu()
        for s in batches(len(cubes), batch_size)
    ]
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def run_classify(
    data_dir: Path,
    out_dir: Path,
    cfg: FinetuneConfig,
    recipe: Recipe,
    cache: VolumeCache,
    device: torch.device,
) -> TaskOutcome:
    """Fine-tune and test a candidate classifier; write predictions.csv."""
    splits, images, info = select_candidates(data_dir, cfg)
    sets = {name: cut_cubes(c, images, cache, recipe.patch) for name, c in splits.items()}
    drop_outside(sets, info, Path(data_dir) / cfg.candidates)
    model, init_info = build_task_model("classify", 1, cfg, {"patch": recipe.patch}, device)
    rng = training_rng(cfg, "classify-train")
    train_epoch = _epoch_trainer(model, sets["train"], cfg, recipe, rng, device)
    validate = _validator(model, sets["val"], recipe.batch_size, device)
    result = fit_in_folder(model, cfg, recipe, data_dir, out_dir, init_info, 1, rng,
                           train_epoch, validate, "finetune classify")
    test = sets["test"]
    prob = predict_test_probabilities(model, test, recipe.batch_size, device, out_dir)
    metrics = classification_metrics(prob, test.labels, info["warnings"])
    if cfg.save_predictions:
        write_predictions(Path(out_dir) / "predictions.csv", test.candidates, prob)
    return TaskOutcome("auc", metrics, result, info, init_info, model)


def _epoch_trainer(
    model: torch.nn.Module,
    train: CubeSet,
    cfg: FinetuneConfig,
    recipe: Recipe,
    rng: np.random.Generator,
    device: torch.device,
) -> Callable[[torch.optim.Optimizer], float]:
    """One class-balanced training epoch (``steps_per_epoch`` batches drawn from it when set),
    with seeded flips when ``augment``; it returns the mean batch loss."""

    def train_epoch(opt: torch.optim.Optimizer) -> float:
        set_train_mode(model, True)
        order = balanced_order(train.labels, rng)
        if cfg.steps_per_epoch:
            order = rng.choice(order, cfg.steps_per_epoch * recipe.batch_size, replace=True)
        losses = []
        for s in batches(len(order), recipe.batch_size):
            idx = np.sort(order[s])
            x = to_tensor(train.cubes[idx], device)
            y = torch.from_numpy(train.labels[idx]).float().to(device)
            if cfg.augment:
                (x,) = random_flips([x], rng)
            loss = F.binary_cross_entropy_with_logits(model(x)[:, 0], y)
            losses.append(optimiser_step(opt, loss))
        return float(np.mean(losses))

    return train_epoch


def _validator(
    model: torch.nn.Module, val: CubeSet, batch_size: int, device: torch.device
) -> Callable[[], tuple[float, float]]:
    """The validation step: (class-balanced loss, AUC), or NaNs when a logit is not finite."""

    def validate() -> tuple[float, float]:
        logits = predict_logits(model, val.cubes, batch_size, device)
        if not np.all(np.isfinite(logits)):
            return math.nan, math.nan  # the trainer names the NaN and stops
        return balanced_bce(logits, val.labels), roc_auc(logits, val.labels)

    return validate


def predict_test_probabilities(
    model: torch.nn.Module, test: CubeSet, batch_size: int, device: torch.device, out_dir: Path
) -> np.ndarray:
    """The positive-class probability of every test cube; NaN predictions are an error (no
    AUC could be computed from them)."""
    prob = torch.sigmoid(
        torch.from_numpy(predict_logits(model, test.cubes, batch_size, device))
    ).numpy()
    if not np.all(np.isfinite(prob)):
        raise SemgenError(f"the network's test predictions hold {int(np.sum(~np.isfinite(prob)))}"
                          " NaN values: no AUC can be computed (the weights hold NaN?)", out_dir)
    return prob


def classification_metrics(
    prob: np.ndarray, labels: np.ndarray, warnings: list[str]
) -> dict[str, Any]:
    """Test AUC, accuracy at 0.5, the probability range and counts; a one-class test set
    (undefined AUC) is flagged on the console and in ``warnings``."""
    if len(set(labels.tolist())) < 2:
        flag(f"the test candidates hold one class only ({len(prob)} candidates): the AUC is "
             "undefined (NaN)", warnings)
    return {
        "auc": roc_auc(prob, labels),
        "accuracy": float(np.mean((prob >= 0.5) == (labels == 1))),
        "probability_min": float(prob.min()),
        "probability_max": float(prob.max()),
        "n": len(prob),
        "positives": int(labels.sum()),
    }


def write_predictions(path: Path, candidates: list[Candidate], prob: np.ndarray) -> None:
    """predictions.csv: each test candidate with its class and predicted probability."""
    write_csv(
        path,
        ["seriesuid", "coordX", "coordY", "coordZ", "class", "probability"],
        [
            {
                "seriesuid": c.seriesuid,
                "coordX": c.world[0],
                "coordY": c.world[1],
                "coordZ": c.world[2],
                "class": c.label,
                "probability": f"{p:.6f}",
            }
            for c, p in zip(candidates, prob, strict=True)
        ],
    )
