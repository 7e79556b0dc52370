"""The benchmark grid's config: tasks, initialisations, seeds, label fractions, settings.

Everything is checked when the config is built (YAML, Python or the experiment), before any
data is made or any network trained: types and ranges of every field, names that become folders
(:func:`~semantic_genesis.utils.names.safe_name`), known built-in targets, and each task's
fine-tuning settings (built once as a :class:`FinetuneConfig`). Errors name the config file and
the field.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semantic_genesis.finetune.config import FinetuneConfig
from semantic_genesis.utils.config import from_dict, read_yaml, setting, validate
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.names import safe_name

#: how an initialisation is evaluated: full fine-tuning, or probes on its frozen features
PROTOCOLS = ("finetune", "probe")


def _mapping(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise SemgenError(f"{where} = {value!r}: must be a mapping (key: value)")


@dataclass
class TaskSpec:
    """One target task of a benchmark: a data folder or a built-in target."""

    name: str = setting("", help="the task's name (a folder name: letters, digits, . _ -)")
    data: str = setting("", help="a data folder (relative paths: to the config file)")
    target: str = setting("", help="or a built-in target (finetune.targets.TARGETS)")
    target_options: dict[str, Any] = setting(default_factory=dict, help="the target's options")
    task: str = setting("", choices=("", "classify", "segment"), help="a built-in target sets it")
    settings: dict[str, Any] = setting(default_factory=dict, help="FinetuneConfig fields")

    def __post_init__(self) -> None:
        validate(self)
        safe_name(self.name, "tasks[].name")
        _mapping(self.target_options, f"task {self.name} target_options")
        _mapping(self.settings, f"task {self.name} settings")


@dataclass
class BenchmarkConfig:
    """The grid. ``inits`` maps a name to ``scratch`` or a checkpoint path."""

    tasks: list[TaskSpec] = field(default_factory=list)
    #: scratch runs take ``settings.width``, else the width every checkpoint shares, else 32
    inits: dict[str, str] = field(default_factory=lambda: {"scratch": "scratch"})
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    label_fractions: list[float] = field(default_factory=lambda: [1.0])
    settings: dict[str, Any] = field(default_factory=dict)  # FinetuneConfig fields, every run
    processes: int = setting(
        1, ge=0, help="cells run at once on this machine, each in its own process (0 = one per "
        "usable CPU core without a GPU, else 1); small CPU models train faster as N one-thread "
        "processes than as one N-thread process")
    scratch: str = setting("scratch", help="the init that t-tests and label efficiency compare "
                           "against")
    models_genesis: str = setting("mg", help="the second comparison (skipped when not in inits)")
    save_models: bool = setting(False, help="keep each run's model.pt")
    #: finetune (full fine-tuning, ``seeds``) and/or probe (frozen features, ``probe_seeds``)
    protocols: list[str] = field(default_factory=lambda: ["finetune"])
    probe_seeds: list[int] = field(default_factory=lambda: list(range(10)))  # the paper's 10
    #: the inits fully fine-tuned (empty: all); probes cost seconds and take every init, full
    #: fine-tuning costs minutes per cell, so a study may keep it for a few (docs/results.md)
    finetune_inits: list[str] = field(default_factory=list)
    probe_levels: str = setting("all", choices=("deepest", "all"), help=(
        "probe: every encoder level's pooled map concatenated, or the deepest only (method.md "
        "§7.3; docs/investigation-probe.md: a restoration-trained U-Net keeps lesion detail in "
        "its shallow levels)"))
    probe_c: float = setting(1.0, gt=0, help="probe: inverse L2 strength of the logistic "
                             "regression (on standardised features)")
    probe_k: int = setting(5, ge=1, help="probe: neighbours of the kNN probe (cosine)")
    probe_test_fraction: float = setting(0.3, gt=0, lt=1, help="probe: share of the patients "
                                         "tested in each seed's per-patient split")
    probe_scratch_encoders: int = setting(1, ge=1, help="probe: random encoders scratch draws "
                                          "(seed s uses encoder s mod n)")

    def __post_init__(self) -> None:
        validate(self)
        if not isinstance(self.tasks, list):
            raise SemgenError(f"tasks = {self.tasks!r}: must be a list of tasks")
        _mapping(self.inits, "inits")
        _mapping(self.settings, "settings")
        for name, init in self.inits.items():
            safe_name(name, "inits (name)")
            if not isinstance(init, str) or not init:
                raise SemgenError(f"inits.{name} = {init!r}: 'scratch' or a checkpoint path")
        if self.scratch not in self.inits:
            raise SemgenError(f"inits must include the baseline {self.scratch!r}")
        ok = isinstance(self.seeds, list) and self.seeds and all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in self.seeds)
        if not ok or len(set(self.seeds)) != len(self.seeds):
            raise SemgenError(f"seeds = {self.seeds!r}: a list of different whole numbers >= 0")
        ok = isinstance(self.label_fractions, list) and self.label_fractions and all(
            isinstance(f, numbers.Real) and not isinstance(f, bool) and math.isfinite(f)
            and 0 < f <= 1 for f in self.label_fractions)
        if not ok or len(set(self.label_fractions)) != len(self.label_fractions):
            raise SemgenError(f"label_fractions = {self.label_fractions!r}: a list of "
                              "different numbers in (0, 1]")
        ok = isinstance(self.protocols, list) and self.protocols and all(
            p in PROTOCOLS for p in self.protocols)
        if not ok or len(set(self.protocols)) != len(self.protocols):
            raise SemgenError(f"protocols = {self.protocols!r}: a list of different names "
                              f"among {', '.join(PROTOCOLS)}")
        ok = isinstance(self.finetune_inits, list) and all(
            isinstance(n, str) and n in self.inits for n in self.finetune_inits)
        if not ok:
            raise SemgenError(f"finetune_inits = {self.finetune_inits!r}: a list of names "
                              f"among inits ({', '.join(self.inits)}), or empty for all")
        if self.finetune_inits and self.scratch not in self.finetune_inits:
            raise SemgenError(f"finetune_inits must include the baseline {self.scratch!r} "
                              "(every fine-tuning comparison is against it)")
        ok = isinstance(self.probe_seeds, list) and self.probe_seeds and all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in self.probe_seeds)
        if not ok or len(set(self.probe_seeds)) != len(self.probe_seeds):
            raise SemgenError(f"probe_seeds = {self.probe_seeds!r}: a list of different whole "
                              "numbers >= 0")


def _check_task(spec: TaskSpec, config: BenchmarkConfig) -> None:
    """The task's data or target, and its fine-tuning settings, as one FinetuneConfig."""
    from semantic_genesis.data.targets import TARGET_TASKS, check_target

    known = {f.name for f in dataclasses.fields(FinetuneConfig)}
    for where, settings in (("settings", config.settings), (f"task {spec.name!r} settings",
                                                           spec.settings)):
        unknown = sorted(set(settings) - known)
        if unknown:
            raise SemgenError(f"unknown setting(s) {', '.join(unknown)} in {where}; see "
                              "FinetuneConfig for the known ones")
    if bool(spec.data) == bool(spec.target):
        raise SemgenError(f"task {spec.name!r} needs 'data' or 'target' (one of them)")
    if spec.target:
        check_target(spec.target, spec.task or None, spec.target_options)
    task = spec.task or TARGET_TASKS.get(spec.target, "")
    if task not in ("classify", "segment"):
        raise SemgenError(f"task {spec.name!r} needs 'task: classify' or 'task: segment'")
    FinetuneConfig(**{**config.settings, **spec.settings, "task": task})


def _at(source: str | Path | None, fn: Any, *args: Any) -> Any:
    """``fn(*args)``, with an error that names no file put on ``source``."""
    try:
        return fn(*args)
    except SemgenError as exc:
        if exc.path is None and source is not None:
            raise SemgenError(exc.reason, source) from None
        raise


def benchmark_config_from_dict(
    data: dict[str, Any], base_dir: Path | None = None, source: str | Path | None = None
) -> BenchmarkConfig:
    """Build and check a :class:`BenchmarkConfig`; relative data and checkpoint paths are taken
    relative to ``base_dir`` (the config file's folder)."""
    _at(source, _mapping, data, "the benchmark config")
    data = dict(data)
    tasks = data.pop("tasks", None) or []
    if not isinstance(tasks, list):
        raise SemgenError(f"tasks = {tasks!r}: must be a list of tasks", source)
    for t in tasks:
        _at(source, _mapping, t, "tasks[] (each task)")
    tasks = [_at(source, from_dict, TaskSpec, dict(t), source) for t in tasks]
    config = _at(source, from_dict, BenchmarkConfig, data, source)
    config.tasks = tasks
    if not tasks:
        raise SemgenError("the benchmark lists no tasks", source)
    if len({t.name for t in tasks}) != len(tasks):
        raise SemgenError("task names must be unique", source)
    if base_dir is not None:
        for t in tasks:
            if t.data:
                t.data = str((base_dir / t.data).resolve())
        config.inits = {
            k: v if v == "scratch" else str((base_dir / v).resolve())
            for k, v in config.inits.items()
        }
    for t in tasks:
        _at(source, _check_task, t, config)
    return config


def load_benchmark_config(path: str | Path) -> BenchmarkConfig:
    """Read a benchmark YAML file, or a shipped one by name (``semantic_genesis/configs/``,
    e.g. ``benchmark-targets``)."""
    from semantic_genesis.finetune.recipes import find_config

    path = find_config(path)
    return benchmark_config_from_dict(read_yaml(path, "benchmark config"), path.parent, path)
