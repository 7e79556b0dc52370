"""One case of segmentation: scan in, label map (and probabilities, montage) out.

Steps (docs/design.md, "Predict"): read (``read_volume``, any format), normalise the intensity
as the model card says (``io.normalize_intensity``: CT HU window, method.md §1), move to the
network's grid (``geometry.to_network_grid``), sliding-window inference with Gaussian blending
(MONAI, ``finetune.inference``), labels by sigmoid > 0.5 (one output) or arg-max, and back onto
the input's own grid (``geometry.to_input_grid``). Every file is written atomically; the case's
sidecar JSON is written last, so it marks a complete case.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semantic_genesis.io.volume import Volume
from semantic_genesis.predict.cases import Case
from semantic_genesis.predict.model import Predictor
from semantic_genesis.utils.errors import SemgenError

LABELS = "labels"
PROBABILITIES = "probabilities"


def normalised_array(volume: Volume, normalised: bool, modality: str,
                     window: tuple[float, float]) -> tuple[np.ndarray, list[str]]:
    """The scan's values in [0, 1] by the model's recipe (``auto``: guessed per scan, said in
    the notes); a prepared volume is already there."""
    from semantic_genesis.io.intensity import detect_modality, normalize_intensity

    bad = int(np.size(volume.array) - np.count_nonzero(np.isfinite(volume.array)))
    if bad:
        raise SemgenError(f"the image holds {bad} NaN or infinite voxels", volume.path)
    if normalised:
        return np.asarray(volume.array, dtype=np.float32), []
    notes = []
    if modality == "auto":
        modality, reason = detect_modality(volume.array)
        notes.append(f"modality {modality}: {reason}")
    return normalize_intensity(volume.array, modality, window=window), notes


def case_outputs(out: Path, case_id: str, predictor: Predictor, probabilities: bool,
                 montage: bool) -> dict[str, str]:
    """The files a case writes, relative to ``out`` (by kind)."""
    files = {"labels": f"{LABELS}/{case_id}.nii.gz"}
    if probabilities:
        if predictor.n_labels == 2:
            files["probabilities"] = f"{PROBABILITIES}/{case_id}.nii.gz"
        else:
            for k in range(1, predictor.n_labels):
                files[f"probabilities_{k}"] = f"{PROBABILITIES}/{case_id}_label{k}.nii.gz"
    if montage:
        files["montage"] = f"{LABELS}/{case_id}.png"
    return files


def predict_case(case: Case, predictor: Predictor, out: Path, files: dict[str, str],
                 device: torch.device, batch_size: int, overlap: float) -> dict[str, Any]:
    """Predict ``case`` and write ``files`` (see :func:`case_outputs`); returns what its
    sidecar records besides the recipe (voxels labelled, notes, seconds)."""
    from semantic_genesis.finetune.inference import logits_to_labels, predict_logits_volume
    from semantic_genesis.io.writers import write_nifti
    from semantic_genesis.predict.geometry import to_input_grid, to_network_grid

    t0 = time.perf_counter()
    volume = case.read()
    array, notes = normalised_array(volume, case.normalised, predictor.modality,
                                    predictor.window)
    grid = to_network_grid(Volume(array, volume.spacing, volume.origin, volume.direction,
                                  case.path, list(volume.notes)),
                           predictor.orientation, predictor.spacing)
    logits = predict_logits_volume(predictor.model, grid.array, predictor.patch, device,
                                   batch_size, overlap)
    bad = int((~torch.isfinite(logits)).sum())
    if bad:  # NaN > 0 is False: the map would silently read as background there
        raise SemgenError(f"the network's output holds {bad} NaN or infinite values (the "
                          "weights hold NaN?); no label map made", case.path)
    labels_net = logits_to_labels(logits[None])[0].numpy()
    labels = to_input_grid(labels_net, grid, volume, labels=True)

    def on_input(values: np.ndarray) -> Volume:
        return Volume(values, volume.spacing, volume.origin, volume.direction)

    write_nifti(on_input(labels), out / files["labels"])
    for key, prob in _probabilities(logits, files):
        write_nifti(on_input(to_input_grid(prob, grid, volume, labels=False)), out / files[key])
    if "montage" in files:
        from semantic_genesis.predict.montage import save_montage

        save_montage(grid.array, labels_net, out / files["montage"],
                     f"{case.id} ({predictor.orientation} view)")
    return {
        "voxels_labelled": int(np.count_nonzero(labels)),
        "notes": [*grid.notes, *notes],
        "warnings": list(volume.warnings),
        "seconds": round(time.perf_counter() - t0, 2),
    }


def _probabilities(logits: torch.Tensor, files: dict[str, str]):
    """(output key, float32 probability map on the network grid) for each requested map."""
    if "probabilities" in files:
        yield "probabilities", torch.sigmoid(logits[0]).numpy()
        return
    keys = [k for k in files if k.startswith("probabilities_")]
    if keys:
        soft = torch.softmax(logits, dim=0)
        for key in keys:
            yield key, soft[int(key.rsplit("_", 1)[1])].numpy()
