"""Turn the paths a user gives to ``semgen prepare`` into a list of scans with patient ids.

Rules (documented in ``semgen prepare --help`` too):

- A file given explicitly is always a scan, whatever its name (a device, pipe or socket is
  skipped: reading it would never end).
- A folder given explicitly is searched recursively (hidden entries and the output folder are
  skipped). A file with a scan suffix (.nii, .nii.gz, .mhd, .mha, .nrrd, .nhdr, .npy) is a
  scan; a sub-folder holding DICOM files (.dcm/.ima/.dicom, or the ``DICM`` marker) is one
  DICOM-series scan. Other files (the ``.raw`` of an ``.mhd``, READMEs, CSVs) are ignored.
- Inside folders, files that look like label maps or masks (a name or parent-folder word among
  ``label``, ``mask``, ``seg``, ``segmentation``, ``annotation``, ``gt``, e.g. pyradiomics'
  ``lung1_label.nrrd`` or ``labels/<id>.nii.gz``) are skipped with that reason; give such a file
  explicitly to include it.
- A folder given explicitly in which nothing was found is read as a DICOM folder, so an empty or
  non-DICOM folder is reported rather than silently dropped.
- Each scan's id is its file name without the suffix (the folder name for DICOM), sanitised to
  ``[A-Za-z0-9._-]``; clashing ids get their parent folder names prepended, then ``-2``, ``-3``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from semantic_genesis.io.formats import has_dicom_preamble, sanitise, scan_format, strip_suffix

_LABEL_WORDS = {"label", "labels", "mask", "masks", "seg", "segmentation", "segmentations",
                "annotation", "annotations", "gt"}


@dataclass(frozen=True)
class Scan:
    """One input volume: its patient id and the file or DICOM folder it is read from."""

    id: str
    path: Path


@dataclass(frozen=True)
class Skipped:
    """An input that was not used, and why."""

    input: str
    reason: str


def _words(name: str) -> set[str]:
    return set(re.split(r"[^a-z0-9]+", strip_suffix(name).lower())) - {""}


def _is_dicom_file(path: Path) -> bool:
    return scan_format(path) == "dicom" or (not path.suffix and has_dicom_preamble(path))


def _walk(root: Path, exclude: set[Path]) -> tuple[list[Path], list[Skipped]]:
    """Scans below ``root`` (files and DICOM folders) and the label-like files skipped."""
    found: list[Path] = []
    skipped: list[Skipped] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames
                             if not d.startswith(".") and (here / d).resolve() not in exclude)
        label_folder = bool(_words(here.name) & _LABEL_WORDS) and here != root
        has_dicom = False
        for name in sorted(filenames):
            path = here / name
            if name.startswith(".") or not path.is_file():
                continue
            fmt = scan_format(path)
            if _is_dicom_file(path):
                has_dicom = True
            elif fmt is None:
                continue
            elif label_folder or _words(name) & _LABEL_WORDS:
                skipped.append(Skipped(str(path), "looks like a label map or mask (by its name); "
                                                  "give it explicitly to include it"))
            else:
                found.append(path)
        if has_dicom:
            found.append(here)
    return found, skipped


def find_scans(inputs: list[str | Path], exclude: list[Path] | None = None
               ) -> tuple[list[Scan], list[Skipped]]:
    """Expand ``inputs`` (files and folders) into scans with unique ids (see module docstring).

    Args:
        inputs: paths given by the user.
        exclude: folders never searched (the output folder).

    Returns:
        (scans sorted by id, inputs skipped before reading).
    """
    excluded = {Path(p).resolve() for p in exclude or []}
    paths: list[Path] = []
    skipped: list[Skipped] = []
    for item in inputs:
        path = Path(item)
        if not path.exists():
            skipped.append(Skipped(str(path), "not found"))
        elif path.resolve() in excluded:
            skipped.append(Skipped(str(path), "is the output folder"))
        elif path.is_dir():
            found, skip = _walk(path, excluded)
            paths.extend(found or [path])
            skipped.extend(skip)
        elif not path.is_file():  # reading a pipe or a device would never end
            skipped.append(Skipped(str(path), "not a regular file (a device, pipe or socket); "
                                              "give scan files or folders"))
        else:
            paths.append(path)
    unique = sorted({p.resolve(): p for p in paths}.values(), key=lambda p: str(p.resolve()))
    ids = assign_ids(unique)
    scans = sorted((Scan(i, p) for i, p in zip(ids, unique, strict=True)), key=lambda s: s.id)
    return scans, skipped


def assign_ids(paths: list[Path]) -> list[str]:
    """Unique, sanitised ids from file names (see the module docstring).

    Clashing names get the parent folders prepended down to the first folder that tells them
    apart (``a/ct.nii``, ``b/ct.nii`` -> ``a_ct``, ``b_ct``); names that clash within one folder
    (``ct.nii``, ``ct.nrrd``) get ``-2``, ``-3`` in path order.
    """
    chains = [[strip_suffix(p.name)] + [q.name for q in p.resolve().parents if q.name]
              for p in paths]
    depth = [1] * len(paths)

    def make(i: int) -> str:
        return sanitise("_".join(reversed(chains[i][: depth[i]])))

    ids = [make(i) for i in range(len(paths))]
    changed = True
    while changed:
        changed = False
        for group in _clashes(ids):
            start = max(depth[i] for i in group)
            level = next((k for k in range(start, max(len(chains[i]) for i in group))
                          if len({tuple(chains[i][1:k + 1]) for i in group}) > 1), None)
            if level is not None:
                for i in group:
                    depth[i] = level + 1
                    ids[i] = make(i)
                changed = True
    for group in _clashes(ids):  # paths are sorted, so the suffixes are deterministic
        for n, i in enumerate(group[1:], start=2):
            ids[i] = f"{ids[i]}-{n}"
    return ids


def _clashes(ids: list[str]) -> list[list[int]]:
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(ids):
        groups.setdefault(name.casefold(), []).append(i)
    return [g for g in groups.values() if len(g) > 1]
