"""Output folders belong to the verb that made them: inputs are never inside, foreign folders are
refused, two runs never share a folder, a killed run never blocks it."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.outdir import LOCK, MARKER, claim_output, disk_error, read_marker


def test_new_folder_is_claimed_and_marked(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    with claim_output(out, "prepare", settings={"seed": 3}) as claimed:
        assert claimed == out
    marker = read_marker(out)
    assert marker["kind"] == "prepare" and marker["settings"] == {"seed": 3}


def test_folder_of_the_same_kind_is_reused(tmp_path: Path) -> None:
    with claim_output(tmp_path / "o", "prepare"):
        (tmp_path / "o" / "cohort.csv").write_text("x")
    with claim_output(tmp_path / "o", "prepare"):
        pass
    assert (tmp_path / "o" / "cohort.csv").read_text() == "x"


def test_folder_of_another_kind_is_refused(tmp_path: Path) -> None:
    with claim_output(tmp_path / "o", "prepare"):
        pass
    with pytest.raises(SemgenError, match="semgen prepare"), claim_output(tmp_path / "o",
                                                                           "discover"):
        pass


def test_folder_with_user_files_is_refused_and_untouched(tmp_path: Path) -> None:
    out = tmp_path / "o"
    (out / "volumes").mkdir(parents=True)
    (out / "volumes" / "mine.npy").write_bytes(b"user data")
    with pytest.raises(SemgenError, match="did not write"), claim_output(out, "prepare"):
        pass
    assert sorted(p.name for p in out.iterdir()) == ["volumes"]
    assert (out / "volumes" / "mine.npy").read_bytes() == b"user data"


def test_legacy_folder_of_the_same_verb_is_accepted(tmp_path: Path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / "prepare-config.yaml").write_text("seed: 0\n")
    with claim_output(out, "prepare", legacy=("prepare-config.yaml",)):
        pass
    assert (out / MARKER).exists()


@pytest.mark.parametrize("where", ["equal", "inside"])
def test_input_inside_the_output_is_refused(tmp_path: Path, where: str) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    out = scans if where == "equal" else tmp_path
    with pytest.raises(SemgenError, match="contains"), claim_output(out, "prepare",
                                                                     inputs=[scans]):
        pass
    assert not (scans / MARKER).exists()


def test_output_beside_or_inside_an_input_folder_is_fine(tmp_path: Path) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    with claim_output(tmp_path / "cohort", "prepare", inputs=[scans]):
        pass


_HOLD = textwrap.dedent("""
    import sys, time
    from semantic_genesis.utils.outdir import claim_output
    with claim_output(sys.argv[1], "prepare"):
        print("held", flush=True)
        time.sleep(60)
""")


def _holder(out: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(out)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_is_refused_while_the_first_holds_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "o"
    proc = _holder(out)
    try:
        with pytest.raises(SemgenError, match="another"), claim_output(out, "prepare"):
            pass
    finally:
        proc.kill()
        proc.wait()


def test_a_killed_run_does_not_block_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "o"
    proc = _holder(out)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (out / LOCK).exists()  # the file stays; the lock died with its process
    deadline = time.monotonic() + 10
    while True:
        try:
            with claim_output(out, "prepare"):
                break
        except SemgenError:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_marker_written_by_another_version_is_read(tmp_path: Path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / MARKER).write_text(json.dumps({"kind": "discover"}))
    with claim_output(out, "discover"):
        pass


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "no space"), (errno.EROFS, "read-only"),
                                         (errno.EACCES, "permission")])
def test_disk_errors_name_the_path_and_the_need(code: int, words: str) -> None:
    error = disk_error(OSError(code, os.strerror(code), "/some/file.npy"))
    assert isinstance(error, SemgenError)
    assert str(error).startswith("/some/file.npy: ") and words in str(error)


def test_other_os_errors_are_left_alone() -> None:
    exc = OSError(errno.EIO, "I/O error")
    assert disk_error(exc) is exc


def test_cli_reports_a_disk_fault_in_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    from semantic_genesis import cli

    def full(args):  # noqa: ANN001
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.npy"))

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda only=None: parser)
    parser._subparsers._group_actions[0].choices["info"].set_defaults(_run=full)
    assert cli.main(["info", "ckpt.pt"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "x.npy: no space left" in err[0]


_PRINTS = textwrap.dedent("""
    from semantic_genesis import cli
    parser = cli.build_parser()
    cli.build_parser = lambda only=None: parser
    def chatty(args):
        for i in range(200000):
            print("line", i)
        return 0
    parser._subparsers._group_actions[0].choices["info"].set_defaults(_run=chatty)
    raise SystemExit(cli.main(["info", "ckpt.pt"]))
""")


def test_cli_closed_pipe_is_quiet(tmp_path: Path) -> None:
    """`semgen info ... | head -1`: the reader goes away; no BrokenPipeError traceback."""
    script = tmp_path / "chatty.py"
    script.write_text(_PRINTS)
    proc = subprocess.run(f"{sys.executable} {script} | head -1; exit ${{PIPESTATUS[0]}}",
                          shell=True, executable="/bin/bash", capture_output=True, text=True)
    assert proc.stdout == "line 0\n"
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
    assert proc.returncode == 0


@pytest.mark.parametrize("where", ["under_a_file", "in_proc"])
def test_an_output_that_cannot_be_a_folder_is_one_error(tmp_path: Path, where: str) -> None:
    """ENOTDIR / ENOENT from mkdir used to reach the user as a traceback."""
    if where == "under_a_file":
        (tmp_path / "afile").write_text("x")
        out = tmp_path / "afile" / "sub"
    else:
        out = Path("/proc/semgen-demo")
    with pytest.raises(SemgenError, match="cannot create the output folder|not a folder"), \
            claim_output(out, "demo"):
        pass
