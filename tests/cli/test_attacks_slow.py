"""The attack pass of every writing verb, as a careless user and a hostile disk would run it.

For each verb (phantoms, prepare, discover, pretrain, finetune, export, benchmark): an ``--out``
that holds the user's files, an ``--out`` that is the verb's own input, a read-only disk and a
full disk. Each must end with exit status 2 and one line on stderr (no traceback, no abort),
leave the user's files byte for byte, create nothing outside ``--out`` and leave no temporary
file behind. Every verb runs in its own process so an abort (a C++ exception, SIGBUS) is seen.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.disks import mounted_tmpfs, remount_tmpfs

pytestmark = pytest.mark.slow

TINY = {"pretrain": ["--width", "4", "--epochs", "1", "--batch-size", "2", "--no-figures",
                     "--device", "cpu"],
        "finetune": ["--task", "classify", "--init", "scratch", "--epochs", "1", "--width", "4",
                     "--patch", "16", "16", "16", "--device", "cpu"]}


def semgen(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SEMGEN_QUIET": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "semantic_genesis", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny real chain: phantoms -> cohort -> patterns -> run, plus a benchmark config."""
    root = tmp_path_factory.mktemp("chain")
    steps = [
        ["phantoms", "--out", root / "ph", "--n", "3", "--shape", "96", "96", "64",
         "--spacing", "3.6", "3.6", "4.6", "--workers", "1"],
        ["prepare", root / "ph" / "images", "--out", root / "cohort"],
        ["discover", root / "cohort", "--out", root / "patterns", "--classes", "2",
         "--instances", "2", "--val-instances", "1", "--patch", "16", "16", "8",
         "--ae-epochs", "1", "--ae-width", "2", "--device", "cpu"],
        ["pretrain", root / "patterns", "--out", root / "run", *TINY["pretrain"]],
    ]
    for argv in steps:
        done = semgen(*argv)
        assert done.returncode == 0, (argv[0], done.stderr[-3000:])
    (root / "grid.yaml").write_text(yaml.safe_dump({
        "inits": {"scratch": "scratch"}, "seeds": [0],
        "settings": {"epochs": 1, "width": 4, "patch": [16, 16, 16], "batch_size": 4,
                     "steps_per_epoch": 1},
        "tasks": [{"name": "tiny", "data": str(root / "ph"), "task": "classify"}]}))
    return {"root": root, "ph": root / "ph", "cohort": root / "cohort",
            "patterns": root / "patterns", "run": root / "run",
            "ckpt": root / "run" / "checkpoints" / "best.pt", "grid": root / "grid.yaml"}


def command(verb: str, chain: dict[str, Path], out: Path) -> list:
    """The verb's smallest real invocation writing into ``out``."""
    return {
        "phantoms": ["phantoms", "--out", out, "--n", "1", "--shape", "96", "96", "64",
                     "--spacing", "3.6", "3.6", "4.6", "--workers", "1"],
        "prepare": ["prepare", chain["ph"] / "images", "--out", out],
        "discover": ["discover", chain["cohort"], "--out", out, "--classes", "2", "--instances",
                     "2", "--val-instances", "1", "--patch", "16", "16", "8", "--ae-epochs", "1",
                     "--ae-width", "2", "--device", "cpu"],
        "pretrain": ["pretrain", chain["patterns"], "--out", out, *TINY["pretrain"]],
        "finetune": ["finetune", "--data", chain["ph"], "--out", out, *TINY["finetune"]],
        "export": ["export", chain["ckpt"], "--out", out / "encoder.pt", "--encoder-only"],
        "benchmark": ["benchmark", chain["grid"], "--out", out],
    }[verb]


#: for each verb, an input it reads that a user might give as --out
OWN_INPUT = {"prepare": "ph", "discover": "cohort", "pretrain": "patterns", "finetune": "ph",
             "benchmark": "ph"}
VERBS = ["phantoms", "prepare", "discover", "pretrain", "finetune", "export", "benchmark"]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the hash of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_one_line_error(done: subprocess.CompletedProcess, words: str = "") -> None:
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
    lines = [line for line in done.stderr.strip().splitlines()
             if not line.startswith("semgen: warning:")]
    assert len(lines) == 1 and "error" in lines[0], done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert words in lines[0], lines[0]


@pytest.mark.parametrize("verb", VERBS)
def test_a_folder_of_user_files_is_refused_and_untouched(verb, chain, tmp_path) -> None:
    out = tmp_path / "mine"
    (out / "volumes").mkdir(parents=True)
    (out / "notes.txt").write_text("my notes")
    (out / "volumes" / "scan.npy").write_bytes(b"my scan")
    if verb == "export":  # a single file: an existing file of the user's
        (out / "encoder.pt").write_bytes(b"my model")
    before = snapshot(tmp_path)
    assert_one_line_error(semgen(*command(verb, chain, out)))
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("verb", sorted(OWN_INPUT))
def test_an_out_that_is_the_input_is_refused(verb, chain) -> None:
    target = chain[OWN_INPUT[verb]]
    before = snapshot(chain["root"])
    argv = command(verb, chain, target)
    assert_one_line_error(semgen(*argv))
    assert snapshot(chain["root"]) == before


def test_export_onto_its_own_checkpoint_is_refused(chain) -> None:
    before = snapshot(chain["root"])
    done = semgen("export", chain["ckpt"], "--out", chain["ckpt"], "--encoder-only",
                  "--overwrite")
    assert_one_line_error(done)
    assert snapshot(chain["root"]) == before


@pytest.mark.parametrize("verb", VERBS)
def test_a_read_only_disk_is_one_line(verb, chain, tmp_path) -> None:
    with mounted_tmpfs(tmp_path / "disk", "1m") as disk:
        remount_tmpfs(disk, "ro")
        assert_one_line_error(semgen(*command(verb, chain, disk / "out")), "read-only")


@pytest.mark.parametrize("verb", VERBS)
def test_a_full_disk_is_one_line_and_leaves_no_temporary(verb, chain, tmp_path) -> None:
    with mounted_tmpfs(tmp_path / "disk", "48k") as disk:
        done = semgen(*command(verb, chain, disk / "out"))
        assert_one_line_error(done, "no space left")
        leftovers = [p for p in disk.rglob("*") if p.name.startswith(".tmp")]
        assert not leftovers, leftovers
