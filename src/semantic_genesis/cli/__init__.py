"""`semgen`: one verb per stage (docs/design.md). Each verb lives in
``semantic_genesis.cli.<verb>`` and provides ``add_arguments(parser)`` and
``run(args) -> int``; heavy imports happen inside ``run`` so ``semgen --help`` stays fast.

Exit status: 0 success, 2 bad input or arguments (one clear line on stderr), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from collections.abc import Sequence

from semantic_genesis import __version__
from semantic_genesis.cli.options import add_file_options
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.memory import keep_freed_memory
from semantic_genesis.utils.outdir import disk_error

#: verb -> one-line help. The module is ``semantic_genesis.cli.<verb>``.
COMMANDS: dict[str, str] = {
    "phantoms": "generate a synthetic chest-CT cohort with nodules (built-in data)",
    "samples": "fetch the real pyradiomics chest CTs and brain MRs (cached, sha256-checked)",
    "prepare": "read scans (NIfTI, MHD, NRRD, DICOM, npy) into a cohort folder",
    "discover": "self-discovery: auto-encoder features, neighbours, coordinates, patterns",
    "pretrain": "pre-train: self-classification + self-restoration (and the add-on pretexts)",
    "finetune": "fine-tune on a target task (classify candidates or segment) and evaluate",
    "benchmark": "grid of initialisations x seeds x label fractions x tasks, with t-tests",
    "demo": "the whole chain on built-in data, with an HTML report",
    "info": "print a checkpoint's model card, parameter counts and load report",
    "export": "export a checkpoint: encoder-only, TorchScript, ONNX, Hugging Face, MONAI bundle",
    "convert": "official Semantic Genesis / Models Genesis .pt / .h5 -> Hugging Face format",
    "predict": "run a fine-tuned checkpoint on scans: label maps on each scan's grid, or "
               "candidate probabilities",
}


def _command_module(verb: str):
    return importlib.import_module(f"semantic_genesis.cli.{verb}")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default, except "None" and a switch's "False" (nothing to say)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full `semgen` parser with every verb's arguments; with ``only``, just that verb's
    (its options come from its config, whose package may import torch: `semgen --help` and
    the other verbs should not pay for it); ``only=""`` lists the verbs without options."""
    parser = argparse.ArgumentParser(
        prog="semgen",
        description="Semantic Genesis (Haghighi et al., MICCAI 2020): self-supervised 3D "
                    "pre-training for medical images.",
    )
    parser.add_argument("--version", action="version", version=f"semantic-genesis {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for verb, help_text in COMMANDS.items():
        if only is not None and verb != only:
            sub.add_parser(verb, help=help_text)
            continue
        module = _command_module(verb)
        p = sub.add_parser(verb, help=help_text, description=(module.__doc__ or help_text).strip(),
                           formatter_class=_HelpFormatter)
        module.add_arguments(p)
        add_file_options(p)
        p.set_defaults(_run=module.run)
    return parser


def _one_line_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001
    """Warnings from the library are for users: one line, no source location."""
    return f"semgen: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `semgen` console script (see :func:`_main`).

    A worker that torchrun started (``WORLD_SIZE`` > 1) leaves with ``os._exit`` once the
    command has returned: everything is written and the process group destroyed by then, and
    the interpreter's own teardown of gloo's threads was seen to abort now and then
    ("terminate called without an active exception"), which torchrun reports as a failed run
    and answers by killing the other ranks.
    """
    code = _main(argv)
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and "TORCHELASTIC_RUN_ID" in os.environ:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the verb; the exit status.

    OpenMP threads sleep instead of spinning between parallel regions unless the user chose a
    policy (``OMP_WAIT_POLICY``): on a shared or oversubscribed CPU spinning threads made a
    training step up to 10x slower (engine/speed.py). It must be set before torch loads, which
    the commands do lazily. glibc keeps freed memory for reuse (``utils.memory``): the
    perturbations' per-batch blocks otherwise cost page faults on every batch.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    keep_freed_memory()
    warnings.formatwarning = _one_line_warning
    argv = sys.argv[1:] if argv is None else list(argv)
    verb = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(verb if verb in COMMANDS else "")  # no verb: the verb list only
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except SemgenError as exc:
        print(f"semgen {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return _closed_pipe()
    except OSError as exc:
        error = disk_error(exc)
        if not isinstance(error, SemgenError):
            raise
        print(f"semgen {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"semgen {args.command}: interrupted", file=sys.stderr)
        return 130


def _closed_pipe() -> int:
    """The reader of our output went away (``semgen info ... | head -1``): not an error. Point
    stdout at /dev/null so the interpreter's final flush does not raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
