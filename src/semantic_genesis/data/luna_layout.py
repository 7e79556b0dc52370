"""The phantom cohort in LUNA16's layout (``semgen phantoms --layout luna16``).

LUNA16 ships ten folders ``subset0`` .. ``subset9``, each holding ``<seriesuid>.mhd`` headers
with their ``.raw`` data, and ``candidates.csv`` / ``annotations.csv`` in world millimetres at
the top. The papers pre-train on subsets 0-6 and test the target tasks on 7-9 (method.md §1.1),
so this layout is what the leakage rules are tested on: ``semgen prepare`` records each case's
subset as its group, ``semgen discover`` leaves subsets 7-9 out by default, and
``semgen finetune`` splits such a folder by the Models Genesis folds (0-4 train, 5-6 val, 7-9
test, ``finetune.data``).

Patient ``i`` goes to ``subset{i % 10}``. The phantoms are generated in our own layout into the
hidden folder ``.phantoms/`` inside the output (re-runs reuse the patients already made; hidden,
so ``semgen prepare OUT`` finds each scan once), and each image is written again as int16 HU
MetaImage with the same spacing, origin and direction, so the candidates' world coordinates
still point at their voxels.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from semantic_genesis.data.phantoms import PhantomConfig, generate_phantoms
from semantic_genesis.utils.atomic import TMP_PREFIX, atomic_path
from semantic_genesis.utils.errors import SemgenError

#: LUNA16's subset folders
N_SUBSETS = 10
#: the phantoms in our own layout, inside the output folder (hidden: see the module docstring)
SOURCE = ".phantoms"
#: the tables copied to the top of the LUNA16 folder
TABLES = ("candidates.csv", "annotations.csv")
_NIFTI = ".nii.gz"


def luna_subset(index: int, n_subsets: int = N_SUBSETS) -> str:
    """The subset folder of patient ``index``: ``subset{index % n_subsets}``."""
    return f"subset{index % n_subsets}"


def _write_mhd(image: Path, header: Path) -> None:
    """``image`` (any format SimpleITK reads) as ``header`` (.mhd) + its ``.raw``, both
    renamed into place from a temporary folder (the header names its data file, so the pair
    is written under the final names first)."""
    import SimpleITK as sitk

    header.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=header.parent))
    try:
        try:
            source = sitk.ReadImage(str(image))
            clean = sitk.GetImageFromArray(sitk.GetArrayViewFromImage(source))
            clean.CopyInformation(source)  # the geometry, not the NIfTI header's own fields
            sitk.WriteImage(clean, str(tmp / header.name), False)
        except RuntimeError as exc:
            raise SemgenError(f"cannot write MetaImage ({str(exc).splitlines()[-1]})",
                              header) from None
        raw = header.with_suffix(".raw")
        os.replace(tmp / raw.name, raw)  # the data first: a header never names a missing file
        os.replace(tmp / header.name, header)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale(out: Path, keep: set[str]) -> None:
    """Remove phantom cases an earlier, larger run wrote (and half-written temporaries)."""
    for folder in sorted(out.glob("subset*")):
        for path in folder.glob("phantom-*"):
            if path.suffix in (".mhd", ".raw") and path.with_suffix(".mhd").name not in keep:
                path.unlink()
        for tmp in folder.glob(TMP_PREFIX + "*"):
            with contextlib.suppress(OSError):
                shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()


def write_luna_layout(phantoms_dir: str | Path, out_dir: str | Path,
                      n_subsets: int = N_SUBSETS) -> dict[str, str]:
    """Write the phantoms of ``phantoms_dir`` (``images/<id>.nii.gz``, ``candidates.csv``,
    ``annotations.csv``) as LUNA16's layout in ``out_dir``; patient ``i`` (in id order) goes
    to :func:`luna_subset`.

    Returns:
        case id -> subset folder name.

    Raises:
        SemgenError: ``phantoms_dir`` holds no ``images/*.nii.gz``.
    """
    src, out = Path(phantoms_dir), Path(out_dir)
    images = sorted((src / "images").glob(f"*{_NIFTI}"))
    if not images:
        raise SemgenError("no images/*.nii.gz to lay out as LUNA16", src)
    subsets: dict[str, str] = {}
    for i, image in enumerate(images):
        case = image.name[: -len(_NIFTI)]
        subsets[case] = luna_subset(i, n_subsets)
        _write_mhd(image, out / subsets[case] / f"{case}.mhd")
    _remove_stale(out, {f"{c}.mhd" for c in subsets})
    for name in TABLES:
        if (src / name).is_file():
            with atomic_path(out / name) as tmp:
                shutil.copyfile(src / name, tmp)
    return subsets


def write_luna_phantoms(out_dir: str | Path, config: PhantomConfig | None = None
                        ) -> dict[str, str]:
    """Generate the phantoms into ``out_dir/.phantoms`` and lay them out as LUNA16 in
    ``out_dir`` (:func:`write_luna_layout`); returns case id -> subset."""
    out = Path(out_dir)
    generate_phantoms(out / SOURCE, config)
    return write_luna_layout(out / SOURCE, out)
