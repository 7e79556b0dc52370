"""The phantom cohort in nnU-Net v2's raw-dataset layout (``semgen phantoms --layout nnunet``).

nnU-Net reads a dataset from ``$nnUNet_raw/DatasetXXX_Name/`` (XXX: a three-digit id)::

    imagesTr/<case>_0000.nii.gz   one file per case and input channel (0000: the only channel, CT)
    labelsTr/<case>.nii.gz        integer label map on the image's grid (0 background, 1 nodule)
    dataset.json                  channel_names, labels, numTraining, file_ending

(nnU-Net's documentation on the dataset format). The phantoms themselves are generated in our
own layout into ``phantoms/`` inside the dataset folder (annotations, candidates, patients
tables; re-runs reuse the patients already made), and each image and mask is hard-linked into
``imagesTr`` / ``labelsTr`` (a copy where links are not possible), so the folder costs no second
copy of the volumes and nnU-Net ignores what it does not read. The images are int16 HU with
their spacing and origin in the header, so nnU-Net's planner sees a CT dataset (CT
normalisation) with the phantoms' spacing.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

from semantic_genesis.data.phantoms import PhantomConfig, generate_phantoms
from semantic_genesis.utils.atomic import link_or_copy, write_json
from semantic_genesis.utils.errors import SemgenError

#: nnU-Net's dataset folder name: ``Dataset`` + three digits + ``_`` + a name
DATASET_FOLDER = re.compile(r"^Dataset(\d{3})_([A-Za-z0-9][A-Za-z0-9_.-]*)$")
#: the phantoms in our own layout, inside the dataset folder
SOURCE = "phantoms"
FILE_ENDING = ".nii.gz"
#: the label values of the masks (data/phantoms.py), as nnU-Net's dataset.json names them
LABELS = {"background": 0, "nodule": 1}


def check_dataset_folder(out: str | Path) -> tuple[int, str]:
    """The (id, name) of an nnU-Net dataset folder name.

    Raises:
        SemgenError: the folder is not named ``DatasetXXX_Name``, which nnU-Net requires.
    """
    match = DATASET_FOLDER.match(Path(out).name)
    if match is None:
        raise SemgenError(
            "with --layout nnunet, --out is the nnU-Net dataset folder and must be named "
            "DatasetXXX_Name (XXX: three digits), e.g. $nnUNet_raw/Dataset501_Phantoms", out)
    return int(match.group(1)), match.group(2)


def dataset_json(name: str, n_training: int) -> dict[str, Any]:
    """nnU-Net v2's ``dataset.json`` for ``n_training`` single-channel CT phantom cases."""
    return {
        "name": name,
        "description": "semantic-genesis synthetic chest-CT phantoms with nodule masks",
        "reference": "semgen phantoms --layout nnunet",
        "licence": "CC0 (synthetic data)",
        "channel_names": {"0": "CT"},
        "labels": dict(LABELS),
        "numTraining": n_training,
        "file_ending": FILE_ENDING,
    }


def _remove_stale(folder: Path, keep: set[str]) -> None:
    """Remove the phantom cases an earlier, larger run linked here (and half-written files)."""
    for path in folder.glob(f"phantom-*{FILE_ENDING}"):
        if path.name not in keep:
            path.unlink()
    for path in folder.glob(".tmp-*"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def write_nnunet_phantoms(out_dir: str | Path, config: PhantomConfig | None = None) -> Path:
    """Generate the phantoms into ``out_dir/phantoms`` and lay them out as nnU-Net's raw
    dataset ``out_dir`` (``imagesTr``, ``labelsTr``, ``dataset.json``); returns ``out_dir``.

    Raises:
        SemgenError: ``out_dir`` is not named ``DatasetXXX_Name``.
    """
    out = Path(out_dir)
    _, name = check_dataset_folder(out)
    images = generate_phantoms(out / SOURCE, config)
    wanted: dict[str, set[str]] = {"imagesTr": set(), "labelsTr": set()}
    for image in images:
        case = image.name[: -len(FILE_ENDING)]
        label = image.parent.parent / "labels" / image.name
        for folder, src, dst in (("imagesTr", image, f"{case}_0000{FILE_ENDING}"),
                                 ("labelsTr", label, f"{case}{FILE_ENDING}")):
            link_or_copy(src, out / folder / dst)
            wanted[folder].add(dst)
    for folder, keep in wanted.items():
        _remove_stale(out / folder, keep)
    write_json(out / "dataset.json", dataset_json(name, len(images)))
    return out
