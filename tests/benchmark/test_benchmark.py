"""A tiny grid: results table and plot, and a resumed run that skips finished cells."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml

from semantic_genesis.benchmark import load_benchmark_config, run_benchmark
from semantic_genesis.cli import main
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
    tiny_data: Path, tmp_path: Path, capsys
) -> None:
    """Two processes share one benchmark folder: a cell locked by a live process is not run
    here and no results are written until it is finished; a lock file left behind, even one
    naming a live process id (PIDs are reused), does not block its cell."""
    import os
    import socket
    import subprocess
    import sys

    path = _config(tmp_path, tiny_data)
    config = load_benchmark_config(path)
    out = tmp_path / "out"
    cells = out / "cells"
    cells.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from semantic_genesis.utils.claim import try_claim\n"
         "print(try_claim(sys.argv[1]) is not None, flush=True); time.sleep(120)",
         str(cells / "tiny-ncc__mg__f1__s1.lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "True"
        left = cells / "tiny-ncc__mg__f1__s0.lock"
        left.write_text(f"{socket.gethostname()} {os.getppid()}")  # alive, holds nothing
        code = main(["benchmark", str(path), "--out", str(out)])
        assert code == 0
        said = capsys.readouterr().out
        assert "1 still running in other processes" in said and "last process" in said
        assert not (out / "results.md").exists()
        assert (cells / "tiny-ncc__mg__f1__s0.json").is_file() and not left.exists()
        assert not (cells / "tiny-ncc__mg__f1__s1.json").exists()
    finally:
        holder.kill()
        holder.wait()
    second = run_benchmark(config, out)  # the holder died: its cell is run now
    assert (second.ran, second.skipped, second.running) == (1, 3, 0)
    assert (out / "results.md").is_file() and not list(cells.glob("*.lock"))


def test_a_failed_cell_is_listed_and_the_exit_status_says_so(
    tiny_data: Path, tmp_path: Path, capsys
) -> None:
    """A cell whose run fails does not stop the grid, is listed on the console and in
    results.md, and the exit status is 1; a re-run tries it again."""
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_data, broken)
    rows = (broken / "candidates.csv").read_text().splitlines()
    (broken / "candidates.csv").write_text(  # every candidate a nodule: nothing to classify
        "\n".join([rows[0]] + [r.rsplit(",", 1)[0] + ",1" for r in rows[1:]]) + "\n")
    path = _config(tmp_path, tiny_data)
    cfg = yaml.safe_load(path.read_text())
    cfg["seeds"] = [0]
    cfg["inits"] = {"scratch": "scratch"}
    cfg["tasks"].append({"name": "broken", "data": str(broken), "task": "classify"})
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "out"
    from semantic_genesis.finetune.metrics import MetricWarning

    with pytest.warns(MetricWarning, match="broken__scratch__f1__s0 FAILED"):
        code = main(["benchmark", str(path), "--out", str(out)])
    said = capsys.readouterr().out
    assert code == 1 and "1 FAILED" in said and "broken__scratch__f1__s0" in said
    md = (out / "results.md").read_text()
    assert "Runs to read with care" in md and "broken__scratch__f1__s0" in md
    assert "## tiny-ncc" in md  # the good task is still reported
    again = run_benchmark(load_benchmark_config(path), out)  # a re-run tries it again
    assert again.ran == 0 and list(again.failed) == ["broken__scratch__f1__s0"]


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


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("tasks: [{name: ../escape, data: d, task: classify}]", r"tasks\[\].name = '../escape'"),
        ("tasks: [{name: a/b, data: d, task: classify}]", r"tasks\[\].name = 'a/b'"),
        ("tasks: [{name: '', data: d, task: classify}]", r"tasks\[\].name = ''"),
        ("inits: {scratch: scratch, ../up: x.pt}\ntasks: [{name: a, data: d, task: classify}]",
         r"inits \(name\) = '../up'"),
        ("inits: {scratch: scratch, /abs: x.pt}\ntasks: [{name: a, data: d, task: classify}]",
         r"inits \(name\) = '/abs'"),
        ("processes: -2\ntasks: [{name: a, data: d, task: classify}]", "processes = -2"),
        ("processes: two\ntasks: [{name: a, data: d, task: classify}]", "whole number"),
        ("settings: {epochs: -3}\ntasks: [{name: a, data: d, task: classify}]",
         "epochs = -3: must be at least 1"),
        ("settings: {lr: fast}\ntasks: [{name: a, data: d, task: classify}]", "lr = 'fast'"),
        ("seeds: [0, -1]\ntasks: [{name: a, data: d, task: classify}]", "seeds"),
        ("seeds: 3\ntasks: [{name: a, data: d, task: classify}]", "seeds"),
        ("label_fractions: [0]\ntasks: [{name: a, data: d, task: classify}]", "label_fractions"),
        ("tasks: {name: a}", "must be a list"),
        ("tasks: [[1, 2]]", "must be a mapping"),
        ("settings: [1]\ntasks: [{name: a, data: d, task: classify}]", "must be a mapping"),
        ("tasks: [{name: a, target: phantom-ncx}]", "unknown target"),
        ("tasks: [{name: a, target: phantom-ncc, task: segment}]", "is a classify task"),
    ],
)
def test_bad_benchmark_configs_are_one_error_naming_the_file(
    tmp_path: Path, yaml_text: str, message: str
) -> None:
    """Issue 14: names with ../ made folders outside --out; bad values and types were
    accepted or ended in a traceback."""
    path = tmp_path / "bench.yaml"
    path.write_text(yaml_text + "\n")
    with pytest.raises(SemgenError, match=message) as err:
        load_benchmark_config(path)
    assert err.value.path == path


def test_the_grid_claims_its_folder_but_shares_it(tiny_data: Path, tmp_path: Path) -> None:
    """A folder of the user's files is refused; two benchmark processes may hold the folder
    at once (shared lock), while another verb holding it keeps the benchmark out."""
    from semantic_genesis.utils.outdir import claim_output

    config = load_benchmark_config(_config(tmp_path, tiny_data))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(SemgenError, match="did not write"):
        run_benchmark(config, mine)
    assert (mine / "notes.txt").read_text() == "keep me" and len(list(mine.iterdir())) == 1
    with pytest.raises(SemgenError, match="contains .*input"):
        run_benchmark(config, tiny_data.parent)
    out = tmp_path / "grid"
    with claim_output(out, "benchmark", shared=True), claim_output(  # two grid processes
        out, "benchmark", shared=True
    ):
        pass
    with claim_output(out, "benchmark"), pytest.raises(SemgenError, match="another"):
        run_benchmark(config, out)


def test_finetune_inits_keep_full_fine_tuning_for_some_inits(
        tiny_data: Path, tmp_path: Path) -> None:
    """``finetune_inits``: the other inits are probed only (none of their cells is trained);
    a name outside inits, or a list without the baseline, is refused."""
    config = load_benchmark_config(_config(tmp_path, tiny_data))
    config.finetune_inits = ["scratch"]
    config.seeds = [0]
    result = run_benchmark(config, tmp_path / "out")
    assert result.ran == 1 and {r["init"] for r in result.rows} == {"scratch"}
    raw = yaml.safe_load((tmp_path / "bench.yaml").read_text())
    for bad, why in ((["nope"], "among inits"), (["mg"], "must include the baseline")):
        (tmp_path / "bad.yaml").write_text(yaml.safe_dump({**raw, "finetune_inits": bad}))
        with pytest.raises(SemgenError, match=why):
            load_benchmark_config(tmp_path / "bad.yaml")
