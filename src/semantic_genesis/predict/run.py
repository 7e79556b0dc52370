"""``predict()``: a fine-tuned checkpoint run on scans (docs/design.md, "Predict").

Output folder (claimed with ``utils.outdir.claim_output``, kind ``predict``)::

    OUT/labels/<id>.nii.gz          uint8 label map on the input's own grid
    OUT/labels/<id>.json            sidecar: input + its sha256, checkpoint sha256, recipe,
                                    outputs, voxels labelled (written last: a complete case)
    OUT/labels/<id>.png             overlay montage (--montage)
    OUT/probabilities/<id>.nii.gz   float32 foreground probability (--probabilities; one map
                                    per label, <id>_label<k>.nii.gz, for several labels)
    OUT/predictions.csv             case, input, output, status, voxels_labelled, seconds, message
    OUT/predict-config.yaml         the settings
    OUT/candidates.csv              classification: one row per candidate (--candidates)

Resumable: a case whose sidecar records the same input sha256, checkpoint sha256 and recipe,
and whose files exist, is reused (``overwrite`` redoes it). A file that cannot be read or
predicted is reported (one line naming it) and skipped; the other cases finish.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semantic_genesis.io.formats import display_path
from semantic_genesis.predict.cases import Case, find_cases
from semantic_genesis.predict.config import PredictConfig
from semantic_genesis.predict.model import Predictor
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.progress import progress

SUMMARY = "predictions.csv"
CONFIG = "predict-config.yaml"
COLUMNS = ["case", "input", "output", "status", "voxels_labelled", "seconds", "message"]
#: files that mark a folder written by ``semgen predict``
LEGACY = (SUMMARY, CONFIG)


@dataclass
class PredictResult:
    """What a run did: one row per case (as in predictions.csv) and the files it wrote."""

    out_dir: Path
    task: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    candidates_csv: Path | None = None

    def count(self, status: str) -> int:
        """Cases with ``status`` (``done``, ``reused``, ``failed`` or ``skipped``)."""
        return sum(r["status"] == status for r in self.rows)


def predict(checkpoint: str | Path, inputs: list[str | Path], out_dir: str | Path,
            config: PredictConfig | None = None, overwrite: bool = False) -> PredictResult:
    """Run the fine-tuned ``checkpoint`` on ``inputs`` (files, folders, prepared cohorts).

    A segmentation checkpoint writes a label map per scan; a classification checkpoint needs
    ``config.candidates`` and writes ``candidates.csv`` with a probability per candidate.

    Raises:
        SemgenError: a bad checkpoint or setting, an output folder that is not ours, or no
            case at all could be predicted (each failed case is in ``predictions.csv``).
    """
    from semantic_genesis.predict.model import load_predictor
    from semantic_genesis.utils.config import save_config, to_dict
    from semantic_genesis.utils.outdir import claim_output

    config = config or PredictConfig()
    if not inputs:
        raise SemgenError("no input given: pass scan files, folders or a prepared cohort")
    predictor = load_predictor(checkpoint, config)
    _check_task(predictor, config)
    out = Path(out_dir)
    claimed = [checkpoint, *inputs, *([config.candidates] if config.candidates else [])]
    with claim_output(out, "predict", inputs=claimed, legacy=LEGACY, settings=to_dict(config)):
        save_config(config, out / CONFIG)
        cases, skipped = find_cases(list(inputs), out)
        result = PredictResult(out, predictor.task)
        result.rows += [_row(None, s.input, "", "skipped", message=s.reason) for s in skipped]
        for row in result.rows:
            _report(row)
        if predictor.task == "classify":
            from semantic_genesis.predict.candidates import predict_candidates

            result.candidates_csv = predict_candidates(predictor, cases, out, config, result.rows)
        else:
            _segment_all(predictor, cases, out, config, overwrite, result.rows)
        _write_summary(out / SUMMARY, result.rows)
    if not result.count("done") + result.count("reused"):
        raise SemgenError(f"no case was predicted (see {SUMMARY})", out)
    return result


def _check_task(predictor: Predictor, config: PredictConfig) -> None:
    if predictor.task == "classify" and not config.candidates:
        raise SemgenError("a classification checkpoint scores candidates: give --candidates "
                          "FILE.csv (seriesuid, coordX, coordY, coordZ)", predictor.path)
    if predictor.task == "segment" and config.candidates:
        raise SemgenError("--candidates needs a classification checkpoint; this one segments",
                          predictor.path)


def _segment_all(predictor: Predictor, cases: list[Case], out: Path, config: PredictConfig,
                 overwrite: bool, rows: list[dict[str, Any]]) -> None:
    from semantic_genesis.predict.model import resolve_device
    from semantic_genesis.predict.segment import case_outputs

    device = resolve_device(config.device)
    predictor.model.to(device)
    for case in progress(cases, desc="predict"):
        files = case_outputs(out, case.id, predictor, config.probabilities, config.montage)
        try:
            row = _one_case(case, predictor, out, files, config, overwrite, device)
        except SemgenError as exc:
            row = _row(case, case.path, "", "failed", message=_reason(exc, case))
        rows.append(row)
        _report(row)


def _one_case(case: Case, predictor: Predictor, out: Path, files: dict[str, str],
              config: PredictConfig, overwrite: bool, device: Any) -> dict[str, Any]:
    """Predict one case, or reuse its earlier outputs; its row of predictions.csv."""
    from semantic_genesis.predict.segment import LABELS, predict_case
    from semantic_genesis.utils.atomic import write_json

    sidecar = out / LABELS / f"{case.id}.json"
    sha = case.sha256()
    identity = {"input": display_path(case.path), "input_sha256": sha,
                "recipe": {**predictor.recipe(), "overlap": config.overlap}, "outputs": files}
    old = _read_sidecar(sidecar)
    if not overwrite and _reusable(old, identity, out):
        return _row(case, case.path, files["labels"], "reused",
                    old.get("voxels_labelled", ""), old.get("seconds", ""))
    with contextlib.suppress(FileNotFoundError):
        sidecar.unlink()  # the case is redone: no sidecar vouches for it until it is complete
    done = predict_case(case, predictor, out, files, device, config.batch_size, config.overlap)
    _remove_stale(old, files, out)
    write_json(sidecar, {"case": case.id, **identity, "status": "ok", **done})
    return _row(case, case.path, files["labels"], "done", done["voxels_labelled"],
                done["seconds"], "; ".join(done["warnings"]))


def _read_sidecar(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _reusable(old: dict[str, Any] | None, identity: dict[str, Any], out: Path) -> bool:
    """The earlier outputs are this run's: same input, weights, recipe, files, all present."""
    if old is None or old.get("status") != "ok":
        return False
    if any(old.get(k) != v for k, v in identity.items() if k != "input"):
        return False
    return all((out / f).is_file() for f in identity["outputs"].values())


def _remove_stale(old: dict[str, Any] | None, files: dict[str, str], out: Path) -> None:
    """Remove files an earlier run of this case wrote that this run does not (e.g. the
    probability map of a run with --probabilities); only names inside ``out``."""
    if not old or not isinstance(old.get("outputs"), dict):
        return
    keep = set(files.values())
    for name in old["outputs"].values():
        path = (out / str(name)).resolve()
        if str(name) not in keep and out.resolve() in path.parents and path.is_file():
            path.unlink()


def _reason(exc: SemgenError, case: Case) -> str:
    """The error's reason, naming the file when the error names another one (or none)."""
    if exc.path is None or exc.path == case.path:
        return exc.reason
    return str(exc)


def _row(case: Case | None, source: Any, output: str, status: str, voxels: Any = "",
         seconds: Any = "", message: str = "") -> dict[str, Any]:
    return {"case": case.id if case else "", "input": display_path(source), "output": output,
            "status": status, "voxels_labelled": voxels, "seconds": seconds, "message": message}


def _report(row: dict[str, Any]) -> None:
    """One line on stderr for each input that was skipped or failed (always shown)."""
    import sys

    if row["status"] in ("failed", "skipped"):
        print(f"semgen predict: {row['status']} {row['input']}: {row['message']}",
              file=sys.stderr, flush=True)


def _write_summary(path: Path, rows: list[dict[str, Any]]) -> None:
    from semantic_genesis.io.manifests import write_csv

    write_csv(path, COLUMNS, rows)
