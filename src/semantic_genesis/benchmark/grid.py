"""``run_benchmark()`` (alias ``benchmark()``): initialisations x label fractions x seeds x
tasks, with statistics.

Every cell (one task, initialisation, label fraction and seed) is one :func:`finetune` run in
``runs/<cell>/``; when it ends its row is written atomically to ``cells/<cell>.json``. A re-run
skips the cells whose JSON exists and was made with the same settings (a changed setting
reruns the cell), so a killed benchmark resumes where it stopped.

Several processes may run one benchmark folder together (one per GPU or core, e.g.
``CUDA_VISIBLE_DEVICES=1 semgen benchmark ...`` started twice, or ``processes: N``): each cell is
claimed with an OS file lock on ``cells/<cell>.lock`` (:mod:`semantic_genesis.utils.claim`; the
kernel drops it when its process dies, so a killed run never blocks a cell), and the last process
to finish writes the results. The output folder itself is claimed with
:func:`~semantic_genesis.utils.outdir.claim_output` like every verb's (marker, inputs refused,
foreign folders refused), but with a *shared* lock (``LOCK_SH``): an exclusive lock for the whole
run would keep out the other benchmark processes the grid is meant to share, while the per-cell
locks already keep two processes off one cell.

With ``protocols: [probe]`` (alone or beside ``finetune``), :func:`.probe_run.run_probes` adds
probe rows (frozen-encoder features cached in ``features/``, then per probe seed and label
fraction one row per probe; method.md §7.3) before the results are written; they are
recomputed on every run, in the process that writes the results.

A cell whose run fails with a user error (bad data, NaN weights, ...) does not stop the grid: its
reason goes to ``cells/<cell>.failed.json``, it is listed on the console and in ``results.md``,
and the command exits with status 1; a re-run tries it again. At the end:

- ``results.csv``: one row per run;
- ``results.md``: per task, mean ± std over seeds of each (initialisation, label fraction), the
  two-sample t-test p-values against scratch and against Models Genesis, epochs to the best
  validation loss, and the smallest label fraction that reaches scratch's best mean score; the
  cells that failed and the runs whose numbers carry a warning are listed;
- ``results.png``: bars with error bars and score against label fraction (:mod:`.plots`);
- ``summary.json``: the same numbers for programs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semantic_genesis.benchmark.config import (
    BenchmarkConfig,
    TaskSpec,
    benchmark_config_from_dict,
    load_benchmark_config,
)
from semantic_genesis.benchmark.results import write_results
from semantic_genesis.benchmark.statistics import (
    CellSummary,
    label_efficiency,
    paired_comparisons,
    summarise,
)
from semantic_genesis.finetune.config import FinetuneConfig
from semantic_genesis.finetune.leakage import check_grid
from semantic_genesis.finetune.metrics import flag
from semantic_genesis.utils.atomic import write_json
from semantic_genesis.utils.claim import claimed
from semantic_genesis.utils.config import from_dict, save_config, to_dict
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.progress import progress, say
from semantic_genesis.utils.provenance import usable_cpus

if TYPE_CHECKING:
    from semantic_genesis.finetune.run import FinetuneResult

__all__ = ["BenchmarkConfig", "BenchmarkResult", "TaskSpec", "benchmark_config_from_dict",
           "load_benchmark_config", "run_benchmark"]

#: files that mark a folder written by the benchmark of releases before the marker
LEGACY = ("benchmark.yaml", "cells", "runs")


@dataclass
class BenchmarkResult:
    """All rows, their summaries, and the files written."""

    rows: list[dict[str, Any]]
    summaries: list[CellSummary]
    out_dir: Path
    ran: int  # cells run now
    skipped: int  # cells found finished
    running: int = 0  # cells other processes were still running (then no summaries)
    failed: dict[str, str] = field(default_factory=dict)  # cell -> why it failed


Cell = tuple[TaskSpec, str, str, float, int, FinetuneConfig, str]  # spec, data, init, frac, seed


def _cell_name(task: str, init: str, fraction: float, seed: int) -> str:
    return f"{task}__{init}__f{fraction:g}__s{seed}"


def _name(cell: Cell) -> str:
    spec, _, init_name, frac, seed, *_ = cell
    return _cell_name(spec.name, init_name, frac, seed)


def _signature(cell: Cell) -> str:
    blob = json.dumps({"data": cell[1], "config": to_dict(cell[5])}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _read(path: Path, signature: str) -> dict[str, Any] | None:
    """The JSON of a cell file made with these settings, or None (missing, other settings,
    or unreadable: the cell is then run again)."""
    try:
        row = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return row if isinstance(row, dict) and row.get("signature") == signature else None


def _finished(out: Path, cell: Cell) -> dict[str, Any] | None:
    return _read(out / "cells" / f"{_name(cell)}.json", _signature(cell))


def _resolve_tasks(config: BenchmarkConfig, out: Path) -> list[tuple[TaskSpec, str, dict]]:
    """(spec, data folder, settings) per task; built-in targets are prepared once."""
    from semantic_genesis.data.targets import prepare_target

    resolved = []
    for spec in config.tasks:
        settings = {**config.settings, **spec.settings}
        task, data, notes = spec.task, spec.data, ""
        if spec.target:
            target = prepare_target(spec.target, out / "targets", **spec.target_options)
            settings = {**target.settings, **settings}
            task, data, notes = spec.task or target.task, str(target.data_dir), target.notes
        resolved.append((dataclasses.replace(spec, task=task), data,
                         {**settings, "task": task, "_notes": notes}))
    return resolved


def _checkpoint_width(inits: dict[str, str]) -> int | None:
    """The width all checkpoint inits share (scratch then trains the same network), if any.
    Reading them here also checks every checkpoint before any data is made."""
    from semantic_genesis.finetune.backbone import checkpoint_architecture

    widths = {checkpoint_architecture(i)[1].get("width") for i in inits.values() if i != "scratch"}
    return widths.pop() if len(widths) == 1 else None


def _cells(config: BenchmarkConfig, out: Path, scratch_width: int | None) -> list[Cell]:
    cells: list[Cell] = []
    for spec, data, settings in _resolve_tasks(config, out):
        notes = settings.pop("_notes")
        for frac in config.label_fractions:
            for init_name, init in config.inits.items():
                if config.finetune_inits and init_name not in config.finetune_inits:
                    continue  # probed only
                for seed in config.seeds:
                    width = settings.get("width")
                    if init == "scratch" and width is None:
                        width = scratch_width
                    cfg = from_dict(FinetuneConfig, {
                        **settings,
                        "init": init,
                        "seed": int(seed),
                        "width": width,
                        "label_fraction": float(frac),
                        "cache_dir": settings.get("cache_dir") or str(out / "cache"),
                    }, source=f"task {spec.name}")
                    cells.append((spec, data, init_name, frac, seed, cfg, notes))
    return cells


def _row(cell: Cell, res: FinetuneResult, out: Path) -> dict[str, Any]:
    """One results.csv row (and cell json) from a finished fine-tuning run."""
    spec, _, init_name, frac, seed, cfg, notes = cell
    t = res.test
    return {
        "task": spec.name,
        "kind": cfg.task,
        "protocol": "finetune",
        "init": init_name,
        "label_fraction": frac,
        "seed": seed,
        "metric": res.metric,
        "score": res.score,
        "auc": t.get("auc", ""),
        "dice": t.get("dice", ""),
        "iou": t.get("iou", ""),
        "best_epoch": res.best_epoch,
        "epochs_to_best": res.best_epoch,
        "epochs_run": res.epochs_run,
        "run_dir": str(res.out_dir.relative_to(out)),
        "notes": notes,
        "warnings": "; ".join(res.warnings),
        "signature": _signature(cell),
    }


def _run_one(
    cell: Cell, out: Path, config: BenchmarkConfig, token: str
) -> tuple[dict[str, Any] | None, str]:
    """Run a claimed cell: its row, or None and why it failed (also in its .failed.json)."""
    from semantic_genesis.finetune.run import finetune

    spec, data, *_, cfg, notes = cell
    name = _name(cell)
    failed = out / "cells" / f"{name}.failed.json"
    try:
        res = finetune(data, out / "runs" / name, cfg, save_model=config.save_models, notes=notes)
    except SemgenError as exc:
        write_json(failed, {"signature": _signature(cell), "token": token, "error": str(exc)})
        flag(f"benchmark: cell {name} FAILED: {exc}")
        return None, str(exc)
    row = _row(cell, res, out)
    write_json(out / "cells" / f"{name}.json", row)
    failed.unlink(missing_ok=True)
    return row, ""


def _run_cells(
    cells: list[Cell], out: Path, config: BenchmarkConfig, token: str, quiet: bool = False
) -> tuple[list[dict[str, Any]], int, dict[str, str], int]:
    """Run every unfinished, unclaimed cell that has not failed in this run (``token``).
    Returns the finished rows, how many ran here, the cells that failed in this run (name ->
    reason) and how many other processes hold."""
    rows, ran, failed, busy = [], 0, {}, 0
    bar = progress(cells, desc="benchmark cells", disable=quiet)
    for cell in bar:
        name = _name(cell)
        bar.set_postfix_str(name)
        failure = _read(out / "cells" / f"{name}.failed.json", _signature(cell))
        row = _finished(out, cell)
        if row is None and failure is not None and failure.get("token") == token:
            failed[name] = failure.get("error", "")
            continue
        if row is None:
            with claimed(out / "cells" / f"{name}.lock") as mine:
                if not mine:  # another process runs it (see utils/claim.py)
                    busy += 1
                    continue
                row = _finished(out, cell)  # finished while we waited for the lock?
                if row is None:
                    row, error = _run_one(cell, out, config, token)
                    if row is None:
                        failed[name] = error
                        continue
                    ran += 1
        rows.append(row)
    return rows, ran, failed, busy


def _worker(config: BenchmarkConfig, out: str, threads: int, token: str) -> None:
    """A helper process: run cells of the same grid, quietly, with ``threads`` threads."""
    import torch

    os.environ["SEMGEN_QUIET"] = "1"
    torch.set_num_threads(threads)
    scratch_width = _checkpoint_width(config.inits)
    if "finetune" in config.protocols:
        _run_cells(_cells(config, Path(out), scratch_width), Path(out), config, token, quiet=True)


def _start_workers(
    config: BenchmarkConfig, out: Path, pending: int, token: str
) -> tuple[list[Any], int]:
    """Start ``config.processes - 1`` helper processes (spawned, so no forked torch state)
    that share the ``pending`` cells through their lock files; this process is the last and
    takes as many threads as each of them. Returns the workers and this process's former
    thread count."""
    import multiprocessing

    import torch

    n = config.processes
    if n == 0:
        n = 1 if torch.cuda.is_available() else usable_cpus()
    n = min(n, pending)
    before = torch.get_num_threads()
    if n <= 1:
        return [], before
    threads = max(1, usable_cpus() // n)
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_worker, args=(config, str(out), threads, token))
               for _ in range(n - 1)]
    for w in workers:
        w.start()
    torch.set_num_threads(threads)
    say(f"benchmark: {n} processes with {threads} thread(s) each share the cells")
    return workers, before


def _join(workers: list[Any], threads: int) -> None:
    """Wait for the helper processes and give this process its ``threads`` back."""
    import torch

    for w in workers:
        w.join()
        if w.exitcode:
            flag(f"benchmark: a worker process failed (exit code {w.exitcode}); the cells it "
                 "left are run by this process")
    torch.set_num_threads(threads)


def _inputs(config: BenchmarkConfig) -> list[str]:
    """What the grid reads (its --out may not contain any of it); data folders must exist."""
    for spec in config.tasks:
        if spec.data and not Path(spec.data).is_dir():
            raise SemgenError(f"task {spec.name!r}: data folder not found", spec.data)
    return [t.data for t in config.tasks if t.data] + [
        i for i in config.inits.values() if i != "scratch"]


def run_benchmark(config: BenchmarkConfig, out_dir: str | Path) -> BenchmarkResult:
    """Run (or resume) the grid and write results.csv, results.md, results.png."""
    from semantic_genesis.utils.outdir import claim_output

    out = Path(out_dir)
    inputs = _inputs(config)
    scratch_width = _checkpoint_width(config.inits)  # every checkpoint read before any work
    settings = {"tasks": [t.name for t in config.tasks], "inits": list(config.inits)}
    with claim_output(out, "benchmark", inputs=inputs, legacy=LEGACY, settings=settings,
                      shared=True):
        save_config(config, out / "benchmark.yaml")
        cells = _cells(config, out, scratch_width) if "finetune" in config.protocols else []
        return _run(config, out, cells, uuid.uuid4().hex, scratch_width)


def _run(config: BenchmarkConfig, out: Path, cells: list[Cell], token: str,
         scratch_width: int | None = None) -> BenchmarkResult:
    check_grid((cell[1], cell[5]) for cell in cells)  # no test case seen in pre-training (§1.1)
    pending = [c for c in cells if _finished(out, c) is None]
    skipped = len(cells) - len(pending)
    workers, threads = _start_workers(config, out, len(pending), token)
    try:
        rows, ran, failed, busy = _run_cells(cells, out, config, token)
    except BaseException:
        for w in workers:
            w.terminate()
        raise
    finally:
        _join(workers, threads)
    if workers or busy:  # collect what others finished, run what a dead process left
        rows, more, failed, busy = _run_cells(cells, out, config, token, quiet=True)
        ran += more
    if failed:
        flag(f"benchmark: {len(failed)} of {len(cells)} cells FAILED and are not in the "
             f"results: {', '.join(sorted(failed))}")
    if busy:
        say(f"benchmark: {ran} cells run here; {busy} still running in other processes: "
            f"the last process to finish writes {out / 'results.md'} (or re-run to collect)")
        return BenchmarkResult(rows, [], out, ran, skipped, busy, failed)
    if "probe" in config.protocols:
        from semantic_genesis.benchmark.probe_run import run_probes

        rows = rows + run_probes(config, out, _resolve_tasks(config, out), scratch_width,
                                 failed)
    mg = config.models_genesis if config.models_genesis in config.inits else None
    summaries = summarise(rows, config.scratch, mg)
    paired = paired_comparisons(summaries, [b for b in (config.scratch, mg) if b])
    write_results(out, rows, summaries, label_efficiency(summaries, config.scratch), config,
                  failed, paired)
    say(f"benchmark: {ran} cells run, {skipped} already finished -> {out / 'results.md'}")
    return BenchmarkResult(rows, summaries, out, ran, skipped, 0, failed)
