"""A tiny grid: results table and plot, and a resumed run that skips finished cells."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml

from semantic_genesis.cli import main
from semantic_genesis.finetune import load_benchmark_config, run_benchmark
from semantic_genesis.models import ModelCard, create_model
from semantic_genesis.models.checkpoint import save_checkpoint
from semantic_genesis.utils.errors import SemgenError


def _config(tmp_path: Path, data: Path, epochs: int = 1) -> Path:
    torch.manual_seed(0)
    model = create_model("ynet3d", width=8, n_classes=3)
    save_checkpoint(
        {
            "state_dict": model.state_dict(),
            "model_card": ModelCard(architecture="ynet3d", width=8, n_classes=3).to_dict(),
        },
        tmp_path / "mg.pt",
    )
    cfg = {
        "inits": {"scratch": "scratch", "mg": "mg.pt"},
        "seeds": [0, 1],
        "label_fractions": [1.0],
        "settings": {
            "epochs": epochs,
            "patch": [16, 16, 16],
            "batch_size": 4,
            "steps_per_epoch": 1,
        },
        "tasks": [{"name": "tiny-ncc", "data": str(data), "task": "classify"}],
    }
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_tiny_grid_table_plot_and_resume(tiny_data: Path, tmp_path: Path) -> None:
    path = _config(tmp_path, tiny_data)
    config = load_benchmark_config(path)
    assert config.inits["mg"] == str((tmp_path / "mg.pt").resolve())
    out = tmp_path / "out"
    first = run_benchmark(config, out)
    assert (first.ran, first.skipped) == (4, 0)
    with open(out / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and {r["init"] for r in rows} == {"scratch", "mg"}
    md = (out / "results.md").read_text()
    assert "## tiny-ncc" in md and "±" in md and "p vs scratch" in md and "labels saved" in md
    assert (out / "results.png").stat().st_size > 5000
    assert len(list((out / "cells").glob("*.json"))) == 4
    # scratch trains the same width as the checkpoint it is compared with
    scratch = json.loads((out / "runs" / "tiny-ncc__scratch__f1__s0" / "metrics.json").read_text())
    assert scratch["initialisation"]["width"] == 8
    # resume: nothing reruns; a changed setting reruns every cell it touches
    again = run_benchmark(config, out)
    assert (again.ran, again.skipped) == (0, 4)
    assert [r["score"] for r in again.rows] == [r["score"] for r in first.rows]
    config.seeds = [0, 1, 2]
    more = run_benchmark(config, out)
    assert (more.ran, more.skipped) == (2, 4)


def test_benchmark_cli_and_bad_configs(tmp_path: Path, capsys) -> None:
    (tmp_path / "b.yaml").write_text("inits: {scratch: scratch}\ntasks: []\n")
    assert main(["benchmark", str(tmp_path / "b.yaml"), "--out", str(tmp_path / "o")]) == 2
    assert "no tasks" in capsys.readouterr().err
    (tmp_path / "c.yaml").write_text("inits: {sg: x.pt}\ntasks: [{name: a, data: d}]\n")
    with pytest.raises(SemgenError, match="baseline 'scratch'"):
        load_benchmark_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("tasks: [{name: a, data: d}]\nsettings: {epoch: 3}\n")
    with pytest.raises(SemgenError, match="unknown setting.*epoch"):
        load_benchmark_config(tmp_path / "d.yaml")
    (tmp_path / "e.yaml").write_text("tasks: [{name: a, data: d}]\n")
    with pytest.raises(SemgenError, match="needs 'task: classify'"):
        run_benchmark(load_benchmark_config(tmp_path / "e.yaml"), tmp_path / "o")
    assert load_benchmark_config("benchmark-targets").tasks[0].target == "phantom-ncc"


def test_cells_claimed_by_another_live_process_are_left_to_it(
    tiny_data: Path, tmp_path: Path
) -> None:
    """Two processes share one benchmark folder: a cell locked by a live process is not run
    here and no results are written until it is finished; a lock left by a dead process is
    taken over."""
    import socket
    import subprocess
    import sys

    config = load_benchmark_config(_config(tmp_path, tiny_data))
    out = tmp_path / "out"
    cells = out / "cells"
    cells.mkdir(parents=True)
    busy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    try:
        host = socket.gethostname()
        (cells / "tiny-ncc__mg__f1__s1.lock").write_text(f"{host} {busy.pid}")
        (cells / "tiny-ncc__mg__f1__s0.lock").write_text(f"{host} {dead.stdout.strip()}")
        first = run_benchmark(config, out)
        assert (first.ran, first.running) == (3, 1) and first.summaries == []
        assert not (out / "results.md").exists()
        assert not (cells / "tiny-ncc__mg__f1__s0.lock").exists()  # stale: taken, released
        assert not (cells / "tiny-ncc__mg__f1__s1.json").exists()
    finally:
        busy.kill()
        busy.wait()
    second = run_benchmark(config, out)  # the holder died: its cell is run now
    assert (second.ran, second.skipped, second.running) == (1, 3, 0)
    assert (out / "results.md").is_file() and not list(cells.glob("*.lock"))


def test_worker_processes_give_the_sequential_results(tiny_data: Path, tmp_path: Path) -> None:
    """``processes=2`` runs cells in a spawned helper process too; every cell must score exactly
    as in a one-process run, and the results are written once all cells are done."""
    config = load_benchmark_config(_config(tmp_path, tiny_data))
    alone = run_benchmark(config, tmp_path / "alone")
    config.processes = 2
    shared = run_benchmark(config, tmp_path / "shared")
    assert shared.running == 0 and shared.skipped == 0 and len(shared.rows) == 4
    key = lambda r: (r["init"], r["seed"])  # noqa: E731
    assert sorted((key(r), r["score"]) for r in shared.rows) == sorted(
        (key(r), r["score"]) for r in alone.rows
    )
    assert (tmp_path / "shared" / "results.md").is_file()
    assert not list((tmp_path / "shared" / "cells").glob("*.lock"))
