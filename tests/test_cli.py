"""The `semgen` router: every verb is reachable and errors are one clear line."""

from __future__ import annotations

import os
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


CHECK = (
    "import os, sys; from semantic_genesis.cli import main; main([]); "
    "sys.stderr.write(os.environ.get('OMP_WAIT_POLICY', 'unset'))"
)


def _policy(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", CHECK], env=env, capture_output=True, text=True
    )
    return done.stderr.strip().splitlines()[-1]


def test_passive_wait_policy_is_the_default_and_a_user_choice_wins() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _policy(env) == "PASSIVE"
    assert _policy({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"
