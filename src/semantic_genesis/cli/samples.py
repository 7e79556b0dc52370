"""Fetch the real sample scans: chest CTs with tumour masks (lung1, lung2) and brain MRs
(brain1, brain2) from the pyradiomics 3.0.1 source archive on PyPI (sha256-checked, cached;
a re-run downloads nothing), and optionally the MNI152 brain template from nilearn.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from semantic_genesis.cli.options import add_config_options, config_from_args
from semantic_genesis.utils.config import setting, validate


@dataclass
class SamplesOptions:
    """Where `semgen samples` keeps its downloads and what it adds (``--out`` is not a
    setting: it names the folder)."""

    cache: str | None = setting(None, help="cache folder (default: $SEMGEN_CACHE/samples or "
                                "~/.cache/semantic-genesis/samples)")
    mni152: bool = setting(False, help="also write the MNI152 T1 + grey/white-matter maps "
                           "(needs nilearn)")

    def __post_init__(self) -> None:
        validate(self)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``semgen samples``."""
    parser.add_argument(
        "--out", default=None, help="copy the files here: a new, empty or earlier samples "
        "folder (default: only fill the cache)"
    )
    add_config_options(parser, SamplesOptions)


def run(args: argparse.Namespace) -> int:
    """Run ``semgen samples``; a user folder (``--out``) is claimed like every verb's."""
    import contextlib
    from pathlib import Path

    from semantic_genesis.data.samples import copy_samples, fetch_samples, mni152
    from semantic_genesis.utils.outdir import claim_output

    options = config_from_args(SamplesOptions, args)
    claim = (
        claim_output(args.out, "samples", inputs=[options.cache] if options.cache else [],
                     legacy=("NOTICE.txt",), settings={"mni152": options.mni152})
        if args.out else contextlib.nullcontext()
    )
    with claim:
        paths = copy_samples(args.out, options.cache) if args.out else fetch_samples(options.cache)
        if options.mni152:
            mni_dir = Path(args.out) / "mni152" if args.out else None
            paths.update({f"mni152_{k}": v for k, v in mni152(mni_dir).items()})
    for name, path in paths.items():
        print(f"{name}\t{path}")
    return 0
