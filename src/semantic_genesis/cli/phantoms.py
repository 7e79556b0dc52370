"""Generate a synthetic chest-CT cohort with nodules: the built-in data for the demo and tests.

Writes images/<id>.nii.gz (int16 HU), labels/<id>.nii.gz (nodule masks), LUNA16-style
annotations.csv and candidates.csv (world mm), patients.csv, phantoms.json and
phantoms-config.yaml (the settings; --config re-runs them). Deterministic for a seed; a re-run
with the same settings keeps the patients already written.
"""

from __future__ import annotations

import argparse
import os
import sys

from semantic_genesis.cli.options import Option, add_config_options, config_from_args

#: the config of a phantoms folder, as `--config` takes it (phantoms.json holds it too)
CONFIG_YAML = "phantoms-config.yaml"
#: folder layouts --layout writes (nnunet: data/nnunet_layout.py; luna16: data/luna_layout.py)
LAYOUTS = ("default", "nnunet", "luna16")
#: PhantomConfig's fields as options; the command line uses every CPU by default
OPTIONS = {
    "nodules": Option(metavar=("MIN", "MAX")),
    "nodule_diameter_mm": Option(metavar=("MIN", "MAX")),
    "noise_hu": Option(metavar=("MIN", "MAX")),
    "workers": Option(default=os.cpu_count() or 1, show_default=False,
                      help="processes (default: one per CPU)"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``semgen phantoms``: one per PhantomConfig field."""
    from semantic_genesis.data.phantoms import PhantomConfig

    parser.add_argument("--out", required=True, help="output folder (new, empty, or an earlier "
                        "phantoms run's: its patients are reused)")
    parser.add_argument("--layout", choices=LAYOUTS, default="default", help=(
        "default: our LUNA16-style folder; nnunet: nnU-Net v2's raw dataset (--out named "
        "DatasetXXX_Name: imagesTr, labelsTr, dataset.json; data/nnunet_layout.py); luna16: "
        "LUNA16's subset0..9/<id>.mhd + candidates.csv, patient i in subset i mod 10 (the "
        "leakage rules' test layout, method.md §1.1)"))
    add_config_options(parser, PhantomConfig, OPTIONS)


def run(args: argparse.Namespace) -> int:
    """Run ``semgen phantoms``: the config is checked, then ``--out`` claimed, then written."""
    from semantic_genesis.data.phantoms import PhantomConfig, generate_phantoms
    from semantic_genesis.io.manifests import read_csv
    from semantic_genesis.utils.config import save_config, to_dict
    from semantic_genesis.utils.outdir import claim_output

    config = config_from_args(PhantomConfig, args, OPTIONS)
    layout = getattr(args, "layout", "default")
    source = args.out
    if layout == "nnunet":
        from semantic_genesis.data.nnunet_layout import SOURCE, check_dataset_folder

        check_dataset_folder(args.out)  # before anything is claimed
        source = os.path.join(args.out, SOURCE)
    with claim_output(args.out, "phantoms", legacy=("phantoms.json", "patients.csv"),
                      settings={**to_dict(config), "layout": layout}):
        if layout == "nnunet":
            from semantic_genesis.data.nnunet_layout import write_nnunet_phantoms

            write_nnunet_phantoms(args.out, config)
        elif layout == "luna16":
            from semantic_genesis.data.luna_layout import write_luna_phantoms

            write_luna_phantoms(args.out, config)
        else:
            generate_phantoms(args.out, config)
        save_config(config, os.path.join(args.out, CONFIG_YAML))  # what --config re-runs
    n_nod = len(read_csv(os.path.join(source, "annotations.csv"), []))
    n_cand = len(read_csv(os.path.join(source, "candidates.csv"), []))
    shape = "x".join(map(str, config.grid_shape()))
    spacing = "x".join(f"{s:g}" for s in config.spacing)
    print(
        f"{args.out}: {config.n} phantom patients ({shape} voxels of {spacing} mm), "
        f"{n_nod} nodules, {n_cand} candidates",
        file=sys.stdout,
    )
    return 0
