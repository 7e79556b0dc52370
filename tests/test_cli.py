"""The `semgen` router: every verb is reachable and errors are one clear line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from semantic_genesis.cli import COMMANDS, build_parser, main


def test_every_verb_has_a_parser() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS)


def test_no_verb_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_python_dash_m_works() -> None:
    out = subprocess.run([sys.executable, "-m", "semantic_genesis", "--version"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.startswith("semantic-genesis ")


def test_warnings_are_one_line() -> None:
    from semantic_genesis.cli import _one_line_warning

    line = _one_line_warning("K clipped to 4", UserWarning, "x.py", 3)
    assert line == "semgen: warning: K clipped to 4\n"
