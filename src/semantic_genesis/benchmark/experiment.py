"""The phantom experiment: does Semantic Genesis pre-training help, against Models Genesis and
against training from scratch? The whole chain, each stage resumable:

    phantoms (pre-training cohort) -> prepare -> discover -> pretrain SG and MG
    phantoms (target set)          -> benchmark (scratch, mg, sg x seeds x label fractions)

Every method pre-trains from ``patterns/``; a cohort method (``mg`` = ``models-genesis``, Models
Genesis as published) takes its random cubes from the cohort the patterns were discovered in.

The settings live in ``semantic_genesis/configs/experiment-phantom.yaml``; ``semgen demo`` and
the slow test reuse :func:`run_experiment`. Outputs in ``out_dir``: ``phantoms-pretrain/``,
``phantoms-target/``, ``cohort/``, ``patterns/``, ``pretrain/<method>/``, ``benchmark/``
(results.csv, results.md, results.png), ``experiment.json`` (stage times) and ``study.md``
(every init against scratch, and what semantics adds: :mod:`.study`).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semantic_genesis.benchmark.grid import BenchmarkResult, benchmark_config_from_dict
from semantic_genesis.utils.atomic import write_json
from semantic_genesis.utils.config import from_dict, read_yaml, save_config
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.names import safe_name
from semantic_genesis.utils.progress import say

#: ``pretrain: {probe: target-phantoms}``: the online probe reads the experiment's target phantoms
TARGET_PROBE = "target-phantoms"


@dataclass
class ExperimentConfig:
    """Settings of each stage, as dicts of that stage's config fields."""

    pretrain_phantoms: dict[str, Any] = field(default_factory=dict)  # PhantomConfig
    target_phantoms: dict[str, Any] = field(default_factory=dict)  # PhantomConfig
    prepare: dict[str, Any] = field(default_factory=dict)  # PrepareConfig
    discover: dict[str, Any] = field(default_factory=dict)  # DiscoverConfig
    pretrain: dict[str, Any] = field(default_factory=dict)  # PretrainConfig, every method
    methods: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> PretrainConfig
    benchmark: dict[str, Any] = field(default_factory=dict)  # BenchmarkConfig (no inits)

    def __post_init__(self) -> None:
        """Each stage's section is a mapping; method names become folders (safe names)."""
        for f in dataclasses.fields(self):
            if not isinstance(getattr(self, f.name), dict):
                raise SemgenError(f"ExperimentConfig.{f.name} = {getattr(self, f.name)!r}: "
                                  "must be a mapping of that stage's settings")
        for name, method in self.methods.items():
            safe_name(name, "methods (name)")
            if not isinstance(method, dict):
                raise SemgenError(f"ExperimentConfig.methods.{name} must be a mapping")


def load_experiment_config(path: str | Path = "experiment-phantom") -> ExperimentConfig:
    """Read an experiment YAML file, or a shipped one by name; every stage's settings are
    checked at once (:func:`check_stages`)."""
    from semantic_genesis.finetune.recipes import find_config

    path = find_config(path)
    try:
        config = from_dict(ExperimentConfig, read_yaml(path, "experiment config"), source=path)
    except SemgenError as exc:
        raise (SemgenError(exc.reason, path) if exc.path is None else exc) from None
    check_stages(config, path)
    return config


def check_stages(config: ExperimentConfig, source: str | Path | None = None) -> None:
    """Build every stage's config once, so a bad value anywhere is refused before the first
    stage starts (not hours later, when its stage comes); errors name ``source`` and the
    section."""
    from semantic_genesis.data.phantoms import PhantomConfig
    from semantic_genesis.discovery import DiscoverConfig
    from semantic_genesis.prepare.cohort import PrepareConfig
    from semantic_genesis.pretrain import PretrainConfig

    inits = {"scratch": "scratch", **{name: f"{name}.pt" for name in config.methods}}
    checks = [
        ("pretrain_phantoms", lambda: from_dict(PhantomConfig, config.pretrain_phantoms)),
        ("target_phantoms", lambda: from_dict(PhantomConfig, config.target_phantoms)),
        ("prepare", lambda: from_dict(PrepareConfig, config.prepare)),
        ("discover", lambda: from_dict(DiscoverConfig, config.discover)),
        ("benchmark", lambda: benchmark_config_from_dict({**config.benchmark, "inits": inits})),
    ] + [
        (f"methods.{name}", lambda m=method: from_dict(PretrainConfig, {**config.pretrain, **m}))
        for name, method in config.methods.items()
    ]
    for section, check in checks:
        try:
            check()
        except SemgenError as exc:
            raise SemgenError(f"{section}: {exc.reason}", source) from None


def _stage(out: Path, name: str, times: dict[str, float], fn, *args) -> Any:
    """Run a stage unless its marker says it finished; record its time."""
    marker = out / "stages" / f"{name}.done"
    if marker.is_file():
        return None
    say(f"experiment: {name}")
    t0 = time.perf_counter()
    result = fn(*args)
    times[name] = round(time.perf_counter() - t0, 1)
    write_json(marker, {"seconds": times[name]})
    return result


def run_experiment(
    config: ExperimentConfig | str | Path,
    out_dir: str | Path,
    benchmark_overrides: dict[str, Any] | None = None,
) -> BenchmarkResult:
    """Run (or resume) the experiment; return the benchmark's rows and summaries.

    Args:
        config: an :class:`ExperimentConfig`, a YAML path or a shipped config's name.
        out_dir: the experiment folder.
        benchmark_overrides: BenchmarkConfig fields replacing the config's (e.g. fewer seeds).
    """
    if not isinstance(config, ExperimentConfig):
        config = load_experiment_config(config)
    else:
        check_stages(config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "experiment.yaml")
    times: dict[str, float] = {}
    tgt = _data_stages(config, out, times)
    inits = _pretrain_stages(config, out, times, tgt)
    result = _benchmark_stage(config, out, tgt, inits, benchmark_overrides, times)
    for marker in sorted((out / "stages").glob("*.done")):  # stages finished by earlier runs
        times.setdefault(marker.stem, json.loads(marker.read_text())["seconds"])
    write_json(out / "experiment.json", {"stage_seconds": times, "inits": inits})
    _write_study(out / "study.md", result)
    return result


def _write_study(path: Path, result: BenchmarkResult) -> None:
    """``study.md`` and ``study.png``: every init against scratch, and what semantics adds
    (benchmark.study)."""
    from semantic_genesis.benchmark.study import overview_table, semantics_table, study_figure
    from semantic_genesis.utils.atomic import atomic_write_text

    text = ("# Study overview\n\nLargest label fraction of each task; mean ± std over seeds. "
            "Per-task tables with every statistic: benchmark/results.md.\n\n## Every "
            "initialisation against scratch\n\n" + overview_table(result.rows)
            + "\n\n## What semantics adds\n\n" + semantics_table(result.rows)
            + "\n\n![every method without and with semantics](study.png)\n")
    study_figure(result.rows, path.with_name("study.png"))
    atomic_write_text(path, text)


def _data_stages(config: ExperimentConfig, out: Path, times: dict[str, float]) -> Path:
    """Make both phantom sets, prepare the pretraining cohort and discover its patterns.

    Returns the target phantom folder, which the benchmark's phantom tasks read.
    """
    from semantic_genesis.data.phantoms import PhantomConfig, generate_phantoms
    from semantic_genesis.discovery import DiscoverConfig, discover
    from semantic_genesis.prepare.cohort import PrepareConfig, prepare

    src, tgt = out / "phantoms-pretrain", out / "phantoms-target"
    _stage(
        out,
        "phantoms-pretrain",
        times,
        generate_phantoms,
        src,
        from_dict(PhantomConfig, config.pretrain_phantoms, "pretrain_phantoms"),
    )
    _stage(
        out,
        "phantoms-target",
        times,
        generate_phantoms,
        tgt,
        from_dict(PhantomConfig, config.target_phantoms, "target_phantoms"),
    )
    _stage(
        out,
        "prepare",
        times,
        prepare,
        [src / "images"],
        out / "cohort",
        from_dict(PrepareConfig, config.prepare, "prepare"),
    )
    _stage(
        out,
        "discover",
        times,
        discover,
        out / "cohort",
        out / "patterns",
        from_dict(DiscoverConfig, config.discover, "discover"),
    )
    return tgt


def _pretrain_stages(
    config: ExperimentConfig, out: Path, times: dict[str, float], tgt: Path | None = None
) -> dict[str, str]:
    """Pretrain (or resume) one model per method; return the benchmark's inits by name.
    ``probe: target-phantoms`` (:data:`TARGET_PROBE`) makes the online probe (method.md §7.3)
    read the target phantoms ``tgt`` (another cohort than the pre-training one)."""
    from semantic_genesis.pretrain import PretrainConfig, pretrain

    inits = {"scratch": "scratch"}
    for name, method in config.methods.items():
        run_dir = out / "pretrain" / name
        settings = {**config.pretrain, **method, "resume": True}
        if settings.get("probe") == TARGET_PROBE and tgt is not None:
            settings["probe"] = str(tgt.resolve())
        cfg = from_dict(PretrainConfig, settings, f"methods.{name}")
        _stage(out, f"pretrain-{name}", times, pretrain, out / "patterns", run_dir, cfg)
        inits[name] = str((run_dir / "checkpoints" / "best.pt").resolve())
    return inits


def _benchmark_stage(
    config: ExperimentConfig,
    out: Path,
    tgt: Path,
    inits: dict[str, str],
    benchmark_overrides: dict[str, Any] | None,
    times: dict[str, float],
) -> BenchmarkResult:
    """Fine-tune every init on the benchmark's tasks (phantom tasks read ``tgt``)."""
    from semantic_genesis.benchmark.grid import run_benchmark

    bench = copy.deepcopy({**config.benchmark, **(benchmark_overrides or {}), "inits": inits})
    for task in bench.get("tasks", []):
        if task.get("target", "").startswith("phantom-"):
            task["target_options"] = {"data": str(tgt.resolve())}
    t0 = time.perf_counter()
    result = run_benchmark(
        benchmark_config_from_dict(bench, source="experiment benchmark"), out / "benchmark"
    )
    times["benchmark"] = round(time.perf_counter() - t0, 1)
    return result
