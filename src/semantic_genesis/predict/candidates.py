"""Classification: a probability for each candidate of a LUNA16-style CSV.

The candidates file has ``seriesuid, coordX, coordY, coordZ`` (world mm, LUNA16's format) and
optionally ``class`` (kept in the output, so the file can be scored). Each candidate's scan is
the input whose id (file name without suffix) is its seriesuid. As in fine-tuning
(``finetune.tasks.classify``), each scan is normalised by the card's recipe, the candidate's
world point goes to a voxel through ITK's geometry, and a cube of the card's patch size is cut
around it (zero-padded at the border; method.md §7.2); here the scan is first moved to the
network's grid (orientation, spacing), as for segmentation. A candidate outside its scan, or
whose scan is missing or unreadable, gets no probability and says why in ``status``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semantic_genesis.predict.cases import Case
from semantic_genesis.predict.config import PredictConfig
from semantic_genesis.predict.model import Predictor
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.progress import progress

CANDIDATES_CSV = "candidates.csv"
_REQUIRED = ["seriesuid", "coordX", "coordY", "coordZ"]


def read_candidate_rows(path: str | Path) -> list[dict[str, Any]]:
    """The candidates (seriesuid, world point, class or None, line), checked.

    Raises:
        SemgenError: missing columns, a coordinate that is not a finite number, or no row.
    """
    from semantic_genesis.io.manifests import read_csv_lines

    rows = []
    for line, row in read_csv_lines(path, _REQUIRED):
        try:
            world = tuple(float(row[c]) for c in _REQUIRED[1:])
            label = None if not (row.get("class") or "").strip() else int(float(row["class"]))
        except ValueError:
            raise SemgenError(f"line {line}: coordinates and class must be numbers",
                              path) from None
        if not all(math.isfinite(v) for v in world):
            raise SemgenError(f"line {line}: a coordinate is not a finite number", path)
        rows.append({"seriesuid": row["seriesuid"], "world": world, "class": label,
                     "line": line})
    if not rows:
        raise SemgenError("no candidates in the file", path)
    return rows


def predict_candidates(predictor: Predictor, cases: list[Case], out: Path,
                       config: PredictConfig, summary: list[dict[str, Any]]) -> Path:
    """Score every candidate of ``config.candidates``; write ``out/candidates.csv`` (one row
    per candidate, in file order) and add one row per scan to ``summary``."""
    from semantic_genesis.predict.model import resolve_device

    rows = read_candidate_rows(config.candidates)
    by_case = {c.id: c for c in cases}
    wanted: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        wanted[row["seriesuid"]].append(i)
    prob: list[float | None] = [None] * len(rows)
    status = ["no scan with this seriesuid among the inputs"] * len(rows)
    device = resolve_device(config.device)
    predictor.model.to(device)
    for uid in progress(sorted(u for u in wanted if u in by_case), desc="candidates"):
        case, idx = by_case[uid], wanted[uid]
        try:
            seconds = _score_scan(predictor, case, [rows[i]["world"] for i in idx], device,
                                  config.batch_size, idx, prob, status)
            summary.append(_summary(case, "done", f"{len(idx)} candidate(s)", seconds))
        except SemgenError as exc:
            for i in idx:
                status[i] = f"scan failed: {exc.reason}"
            summary.append(_summary(case, "failed", str(exc), ""))
            _say(f"failed {case.path}: {exc.reason}")
    return _write(out / CANDIDATES_CSV, rows, prob, status)


def _score_scan(predictor: Predictor, case: Case, points: list, device: torch.device,
                batch_size: int, idx: list[int], prob: list, status: list) -> float:
    """Fill ``prob``/``status`` at ``idx`` for one scan's candidate ``points``; seconds."""
    import time

    from semantic_genesis.finetune.data import extract_cube
    from semantic_genesis.finetune.tasks.classify import predict_logits
    from semantic_genesis.io.volume import Volume
    from semantic_genesis.predict.geometry import to_network_grid
    from semantic_genesis.predict.segment import normalised_array

    t0 = time.perf_counter()
    volume = case.read()
    array, _ = normalised_array(volume, case.normalised, predictor.modality, predictor.window)
    grid = to_network_grid(Volume(array, volume.spacing, volume.origin, volume.direction),
                           predictor.orientation, predictor.spacing)
    centres = grid.world_to_voxel(np.asarray(points, dtype=np.float64))
    inside = np.all((centres > -0.5) & (centres < np.asarray(grid.shape) - 0.5), axis=1)
    cubes = np.zeros((int(inside.sum()), *predictor.patch), dtype=np.float32)
    for k, centre in enumerate(centres[inside]):
        cubes[k] = extract_cube(grid.array, centre, predictor.patch)
    logits = predict_logits(predictor.model, cubes, batch_size, device)
    if not np.all(np.isfinite(logits)):
        raise SemgenError("the network's output holds NaN (the weights hold NaN?)", case.path)
    scores = iter(torch.sigmoid(torch.from_numpy(logits)).tolist())
    for i, ok in zip(idx, inside, strict=True):
        prob[i], status[i] = (next(scores), "ok") if ok else (None, "outside its scan")
    return round(time.perf_counter() - t0, 2)


def _summary(case: Case, status: str, message: str, seconds: Any) -> dict[str, Any]:
    from semantic_genesis.io.formats import display_path

    return {"case": case.id, "input": display_path(case.path), "output": CANDIDATES_CSV,
            "status": status, "voxels_labelled": "", "seconds": seconds, "message": message}


def _say(line: str) -> None:
    import sys

    print(f"semgen predict: {line}", file=sys.stderr, flush=True)


def _write(path: Path, rows: list[dict[str, Any]], prob: list, status: list) -> Path:
    from semantic_genesis.io.manifests import write_csv

    has_class = any(r["class"] is not None for r in rows)
    columns = [*_REQUIRED, *(["class"] if has_class else []), "probability", "status"]
    out = []
    for row, p, s in zip(rows, prob, status, strict=True):
        x, y, z = row["world"]
        entry = {"seriesuid": row["seriesuid"], "coordX": x, "coordY": y, "coordZ": z,
                 "probability": "" if p is None else f"{p:.6f}", "status": s}
        if has_class:
            entry["class"] = "" if row["class"] is None else row["class"]
        out.append(entry)
    return write_csv(path, columns, out)
