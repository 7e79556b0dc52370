"""``run_benchmark()`` (alias ``benchmark()``): initialisations x label fractions x seeds x
tasks, with statistics.

Every cell (one task, initialisation, label fraction and seed) is one :func:`finetune` run in
``runs/<cell>/``; when it ends its row is written atomically to ``cells/<cell>.json``. A re-run
skips the cells whose JSON exists and was made with the same settings (a changed setting
reruns the cell), so a killed benchmark resumes where it stopped. Several processes may run
one benchmark folder together (one per GPU or core, e.g. ``CUDA_VISIBLE_DEVICES=1 semgen
benchmark ...`` started twice): each cell is claimed with ``cells/<cell>.lock``
(:mod:`semantic_genesis.utils.claim`), and the last process to finish writes the results.
At the end:

- ``results.csv``: one row per run;
- ``results.md``: per task, mean ± std over seeds of each (initialisation, label fraction), the
  two-sample t-test p-values against scratch and against Models Genesis, epochs to the best
  validation loss, and the smallest label fraction that reaches scratch's best mean score;
- ``results.png``: bars with error bars and score against label fraction (:mod:`.plots`);
- ``summary.json``: the same numbers for programs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semantic_genesis.finetune.config import FinetuneConfig
from semantic_genesis.finetune.results import write_results
from semantic_genesis.finetune.statistics import CellSummary, label_efficiency, summarise
from semantic_genesis.utils.atomic import write_json
from semantic_genesis.utils.claim import claimed
from semantic_genesis.utils.config import from_dict, read_yaml, save_config, to_dict
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.progress import progress, say
from semantic_genesis.utils.provenance import usable_cpus

if TYPE_CHECKING:
    from semantic_genesis.finetune.run import FinetuneResult


@dataclass
class TaskSpec:
    """One target task of a benchmark: a data folder or a built-in target."""

    name: str
    data: str = ""  # a data folder (relative paths: to the config file)
    target: str = ""  # or a built-in target (semantic_genesis.finetune.targets.TARGETS)
    target_options: dict[str, Any] = field(default_factory=dict)
    task: str = ""  # classify | segment; a built-in target sets it
    settings: dict[str, Any] = field(default_factory=dict)  # FinetuneConfig fields, this task


@dataclass
class BenchmarkConfig:
    """The grid. ``inits`` maps a name to ``scratch`` or a checkpoint path."""

    tasks: list[TaskSpec] = field(default_factory=list)
    #: scratch runs take ``settings.width``, else the width every checkpoint shares, else 32
    inits: dict[str, str] = field(default_factory=lambda: {"scratch": "scratch"})
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    label_fractions: list[float] = field(default_factory=lambda: [1.0])
    settings: dict[str, Any] = field(default_factory=dict)  # FinetuneConfig fields, every run
    #: cells run at once on this machine, each in its own process (0 = one per usable CPU core
    #: without a GPU, else 1); small CPU models train faster as N one-thread processes than as
    #: one N-thread process
    processes: int = 1
    scratch: str = "scratch"  # the init that t-tests and label efficiency compare against
    models_genesis: str = "mg"  # the second comparison (skipped when not in ``inits``)
    save_models: bool = False  # keep each run's model.pt


def benchmark_config_from_dict(
    data: dict[str, Any], base_dir: Path | None = None, source: str | Path | None = None
) -> BenchmarkConfig:
    """Build a :class:`BenchmarkConfig`; relative data and checkpoint paths are taken relative
    to ``base_dir`` (the config file's folder)."""
    data = dict(data or {})
    tasks = [from_dict(TaskSpec, dict(t), source) for t in data.pop("tasks", []) or []]
    config = from_dict(BenchmarkConfig, data, source)
    config.tasks = tasks
    if not tasks:
        raise SemgenError("the benchmark lists no tasks", source)
    if len({t.name for t in tasks}) != len(tasks):
        raise SemgenError("task names must be unique", source)
    if config.scratch not in config.inits:
        raise SemgenError(f"inits must include the baseline {config.scratch!r}", source)
    known = {f.name for f in dataclasses.fields(FinetuneConfig)}
    for where, settings in [("settings", config.settings)] + [
        (f"task {t.name!r} settings", t.settings) for t in tasks
    ]:
        unknown = sorted(set(settings) - known)
        if unknown:
            raise SemgenError(
                f"unknown setting(s) {', '.join(unknown)} in {where}; see "
                "FinetuneConfig for the known ones",
                source,
            )
    if base_dir is not None:
        for t in tasks:
            if t.data:
                t.data = str((base_dir / t.data).resolve())
        config.inits = {
            k: v if v == "scratch" else str((base_dir / v).resolve())
            for k, v in config.inits.items()
        }
    return config


def load_benchmark_config(path: str | Path) -> BenchmarkConfig:
    """Read a benchmark YAML file, or a shipped one by name (``semantic_genesis/configs/``,
    e.g. ``benchmark-targets``)."""
    from semantic_genesis.finetune.recipes import find_config

    path = find_config(path)
    return benchmark_config_from_dict(read_yaml(path, "benchmark config"), path.parent, path)


@dataclass
class BenchmarkResult:
    """All rows, their summaries, and the files written."""

    rows: list[dict[str, Any]]
    summaries: list[CellSummary]
    out_dir: Path
    ran: int  # cells run now
    skipped: int  # cells found finished
    running: int = 0  # cells other processes were still running (then no summaries)


def _cell_name(task: str, init: str, fraction: float, seed: int) -> str:
    return f"{task}__{init}__f{fraction:g}__s{seed}"


def _signature(data_dir: str, cfg: FinetuneConfig) -> str:
    blob = json.dumps({"data": data_dir, "config": to_dict(cfg)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _resolve_tasks(config: BenchmarkConfig, out: Path) -> list[tuple[TaskSpec, str, dict]]:
    """(spec, data folder, settings) per task; built-in targets are prepared once."""
    from semantic_genesis.finetune.targets import prepare_target

    resolved = []
    for spec in config.tasks:
        settings = {**config.settings, **spec.settings}
        if spec.target:
            target = prepare_target(spec.target, out / "targets", **spec.target_options)
            settings = {**target.settings, **settings}
            task, data, notes = spec.task or target.task, str(target.data_dir), target.notes
        elif spec.data:
            task, data, notes = spec.task, spec.data, ""
        else:
            raise SemgenError(f"task {spec.name!r} needs 'data' or 'target'")
        if task not in ("classify", "segment"):
            raise SemgenError(f"task {spec.name!r} needs 'task: classify' or 'task: segment'")
        resolved.append(
            (
                dataclasses.replace(spec, task=task),
                data,
                {**settings, "task": task, "_notes": notes},
            )
        )
    return resolved


def _checkpoint_width(inits: dict[str, str]) -> int | None:
    """The width all checkpoint inits share (scratch then trains the same network), if any."""
    from semantic_genesis.finetune.backbone import checkpoint_architecture

    widths = {checkpoint_architecture(i)[1].get("width") for i in inits.values() if i != "scratch"}
    return widths.pop() if len(widths) == 1 else None


def _cell_json(out: Path, cell: Cell) -> Path:
    spec, _, init_name, frac, seed, *_ = cell
    return out / "cells" / f"{_cell_name(spec.name, init_name, frac, seed)}.json"


def _finished(cell_json: Path, signature: str) -> dict[str, Any] | None:
    """The row of a cell finished with these settings, or None."""
    if not cell_json.is_file():
        return None
    row = json.loads(cell_json.read_text())
    return row if row.get("signature") == signature else None


Cell = tuple[TaskSpec, str, str, float, int, FinetuneConfig, str]  # spec, data, init, frac, seed


def _row(cell: Cell, res: FinetuneResult, out: Path, signature: str) -> dict[str, Any]:
    """One results.csv row (and cell json) from a finished fine-tuning run."""
    spec, _, init_name, frac, seed, cfg, notes = cell
    t = res.test
    return {
        "task": spec.name,
        "kind": cfg.task,
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
        "signature": signature,
    }


def _run_cells(
    cells: list[Cell], out: Path, config: BenchmarkConfig, quiet: bool = False
) -> tuple[list[dict[str, Any]], int, list[tuple[Path, str]]]:
    """Run every unfinished, unclaimed cell; return the finished rows, how many ran here, and
    the cells other processes hold (their cell json and signature)."""
    from semantic_genesis.finetune.run import finetune

    rows, ran, elsewhere = [], 0, []
    bar = progress(cells, desc="benchmark cells", disable=quiet)
    for cell in bar:
        spec, data, init_name, frac, seed, cfg, notes = cell
        name = _cell_name(spec.name, init_name, frac, seed)
        bar.set_postfix_str(name)
        cell_json = out / "cells" / f"{name}.json"
        sig = _signature(data, cfg)
        row = _finished(cell_json, sig)
        if row is not None:
            rows.append(row)
            continue
        with claimed(out / "cells" / f"{name}.lock") as mine:
            if not mine:  # another process runs it (see utils/claim.py)
                elsewhere.append((cell_json, sig))
                continue
            res = finetune(
                data, out / "runs" / name, cfg, save_model=config.save_models, notes=notes
            )
            row = _row(cell, res, out, sig)
            write_json(cell_json, row)
        rows.append(row)
        ran += 1
    return rows, ran, elsewhere


def _worker(config: BenchmarkConfig, out: str, threads: int) -> None:
    """A helper process: run cells of the same grid, quietly, with ``threads`` threads."""
    import torch

    os.environ["SEMGEN_QUIET"] = "1"
    torch.set_num_threads(threads)
    run_benchmark(dataclasses.replace(config, processes=1), out)


def _start_workers(config: BenchmarkConfig, out: Path, pending: int) -> tuple[list[Any], int]:
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
    workers = [ctx.Process(target=_worker, args=(config, str(out), threads)) for _ in range(n - 1)]
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
            say(f"benchmark: a worker process failed (exit code {w.exitcode}); see above")
    torch.set_num_threads(threads)


def run_benchmark(config: BenchmarkConfig, out_dir: str | Path) -> BenchmarkResult:
    """Run (or resume) the grid and write results.csv, results.md, results.png."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "benchmark.yaml")
    tasks = _resolve_tasks(config, out)
    scratch_width = _checkpoint_width(config.inits)
    cells: list[Cell] = []
    for spec, data, settings in tasks:
        notes = settings.pop("_notes")
        for frac in config.label_fractions:
            for init_name, init in config.inits.items():
                for seed in config.seeds:
                    width = settings.get("width")
                    if init == "scratch" and width is None:
                        width = scratch_width
                    cfg = from_dict(
                        FinetuneConfig,
                        {
                            **settings,
                            "init": init,
                            "seed": int(seed),
                            "width": width,
                            "label_fraction": float(frac),
                            "cache_dir": settings.get("cache_dir") or str(out / "cache"),
                        },
                        source=f"task {spec.name}",
                    )
                    cells.append((spec, data, init_name, frac, seed, cfg, notes))
    pending = [c for c in cells if _finished(_cell_json(out, c), _signature(c[1], c[5])) is None]
    skipped = len(cells) - len(pending)
    workers, threads = _start_workers(config, out, len(pending))
    try:
        rows, ran, elsewhere = _run_cells(cells, out, config)
    except BaseException:
        for w in workers:
            w.terminate()
        raise
    finally:
        _join(workers, threads)
    if workers:  # collect what the workers finished, and run what a failed worker left
        rows, more, elsewhere = _run_cells(cells, out, config, quiet=True)
        ran += more
    rows += [r for r in (_finished(j, s) for j, s in elsewhere) if r is not None]
    running = len(cells) - len(rows)
    if running:
        say(
            f"benchmark: {ran} cells run here; {running} still running in other processes, "
            "the last process to finish writes results.md (or re-run to collect them)"
        )
        return BenchmarkResult(rows, [], out, ran, skipped, running)
    summaries = summarise(
        rows,
        config.scratch,
        config.models_genesis if config.models_genesis in config.inits else None,
    )
    write_results(out, rows, summaries, label_efficiency(summaries, config.scratch), config)
    say(f"benchmark: {ran} cells run, {skipped} already finished -> {out / 'results.md'}")
    return BenchmarkResult(rows, summaries, out, ran, skipped)
