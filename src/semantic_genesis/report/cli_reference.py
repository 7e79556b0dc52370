"""The CLI reference in docs/cli.md is generated from the parser itself, so it cannot drift.

Regenerate with ``python -m semantic_genesis.report.cli_reference > docs/cli.md`` (or
``make docs``); a test fails when the committed file differs from what the parser says.
"""

from __future__ import annotations

import os

from semantic_genesis.cli import COMMANDS, build_parser


def cli_reference_markdown() -> str:
    """Markdown with the usage and options of every `semgen` verb."""
    os.environ["COLUMNS"] = "100"  # stable wrapping regardless of the terminal
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    parts = ["# `semgen` command reference", "",
             "Generated from the command-line parser "
             "(`python -m semantic_genesis.report.cli_reference`); do not edit by hand.", ""]
    for verb, help_text in COMMANDS.items():
        parts += [f"## `semgen {verb}`", "", help_text[0].upper() + help_text[1:] + ".", "",
                  "```text", sub.choices[verb].format_help().rstrip(), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":  # pragma: no cover
    print(cli_reference_markdown(), end="")
