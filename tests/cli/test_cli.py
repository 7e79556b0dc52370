"""The `semgen` router: every verb is reachable and errors are one clear line."""

from __future__ import annotations

import argparse
import json
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


def test_info_system_prints_versions_devices_and_kernels(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from semantic_genesis.transforms import native

    monkeypatch.setenv("SEMGEN_NATIVE", "0")
    assert main(["info", "--system"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("semantic-genesis ")
    for word in ("python", "torch", "numpy", "SimpleITK", "monai", "faiss", "CPU", "CUDA", "MPS"):
        assert word in out, word
    kernels = next(line for line in out.splitlines() if line.startswith("CPU kernels"))
    assert ("not in use" in kernels) and (("SEMGEN_NATIVE=0" in kernels) == native.built())


def test_info_system_json(capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEMGEN_NATIVE", raising=False)
    assert main(["info", "--system", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {"semantic_genesis", "python", "libraries", "devices", "native_kernels"} <= set(info)
    assert info["devices"]["cpu_count"] >= 1 and "cuda" in info["devices"]
    assert set(info["native_kernels"]) >= {"built", "in_use", "avx2", "summary", "reason"}


def test_info_needs_a_checkpoint_or_system(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 2
    assert "--system" in capsys.readouterr().err
    assert main(["info", "x.pt", "--system"]) == 2
    assert "x.pt: give either a checkpoint or --system" in capsys.readouterr().err
    assert main(["info", "--system", "--width", "8", "--strict"]) == 2
    assert "(--width, --strict)" in capsys.readouterr().err


def test_export_still_needs_its_checkpoint(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["export"])
    assert "checkpoint" in capsys.readouterr().err


def _options(parser: argparse.ArgumentParser):  # noqa: ANN202
    sub = next(a for a in parser._actions if a.dest == "command")
    for verb, p in sub.choices.items():
        for action in p._actions:
            if not isinstance(action, argparse._HelpAction):
                yield verb, action, p


def test_every_option_has_help_and_negated_flags_read_right() -> None:
    """Every option of every verb says what it does; a flag that is only ``--no-x`` never shows
    ``(default: True)``, which reads as if the negation were on (``--x, --no-x ... (default:
    True)`` reads right)."""
    parser = build_parser()
    missing, backwards = [], []
    for verb, action, p in _options(parser):
        name = action.option_strings[-1] if action.option_strings else action.dest
        if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
            missing.append(f"{verb} {name}")
        formatter = p._get_formatter()
        shown = formatter._expand_help(action) if action.help else ""
        negated = action.option_strings and all(o.startswith("--no-") for o in action.option_strings)
        if negated and "default: True" in shown:
            backwards.append(f"{verb} {name}")
    assert not missing, f"options without help: {missing}"
    assert not backwards, f"negated flags showing (default: True): {backwards}"


@pytest.mark.parametrize("verb", ["info", "export"])
def test_architecture_options_say_the_card_decides(verb: str) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    text = " ".join(sub.choices[verb].format_help().split())
    assert "base channels (default: the card's) --in-channels" in text
    assert "the card's) (default: None)" not in text


def test_help_and_light_verbs_do_not_import_torch() -> None:
    """Only the chosen verb's options are built: its config may import torch, others' not."""
    check = ("import sys; from semantic_genesis.cli import main\n"
             "for argv in (['--help'], ['prepare', '--help'], ['phantoms', '--help']):\n"
             "    try: main(argv)\n"
             "    except SystemExit: pass\n"
             "sys.stderr.write(str('torch' in sys.modules))")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert done.stderr.strip().splitlines()[-1] == "False"
