"""`semgen samples`: real scans that a package registry can deliver (docs/design.md,
"Built-in data").

- Chest CT with tumour masks and brain MR with tumour masks: the ``data/`` folder of the
  pyradiomics 3.0.1 *source* archive on PyPI (BSD-3; the wheels do not carry it). It is fetched
  with ``pip download`` (the only network this project may use), checked against its sha256,
  and only the eight NRRD files are read out of the tar (nothing is built or installed).
  ``lung1``: 512 x 512 x 48, 0.57 x 0.57 x 5.0 mm; ``lung2``: 512 x 512 x 61, 0.63 x 0.63 x 5 mm;
  ``brain1``/``brain2``: 256 x 256 x 25/23, 0.78 x 0.78 x 6.5 mm.
- The MNI152 (ICBM 2009) T1 template with grey- and white-matter probability maps, shipped in the
  nilearn wheel (the optional ``brain`` extra): :func:`mni152`.

Everything is cached (``~/.cache/semantic-genesis``, or ``$SEMGEN_CACHE``); a cached file is
trusted only if its sha256 matches, and a re-run downloads nothing.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from semantic_genesis.utils.atomic import atomic_path, atomic_write_text, link_or_copy
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.progress import say

PYRADIOMICS = "pyradiomics==3.0.1"
ARCHIVE = "pyradiomics-3.0.1.tar.gz"
ARCHIVE_SHA256 = "47c57f441d6cb7973fa3b2ea48d3948df78e3348e1c69e1e2ff19001601fc2f5"
_DATA = "pyradiomics-3.0.1/data/"
#: sample name -> sha256 of the NRRD file inside the archive (name = file stem).
SAMPLES: dict[str, str] = {
    "lung1_image": "379fa48bf34cfa961e6f5ec19c0c38757a30b9aa884212ef28dc29b5061c64ed",
    "lung1_label": "e9d9a88054d7bc1d3034193ff907ce6b8c6ba28a7bc3a16f23728982d1b6b50a",
    "lung2_image": "aa2b94eec79127ed786798ac8dc3c013010e1692d5787bebfae1a1e9685a4651",
    "lung2_label": "cef52738dc51aab69a48fe30639da956d2b911b1c2920439c091fab84727657a",
    "brain1_image": "fffdb111ee8b428ede7256707393c927a7d5be912f0604cf3c6f1bd5fc9644cf",
    "brain1_label": "ae6d8e6b84f7e99d68c210ee2fa6aaaefa0b2df0a84f55efca4feebe2b216059",
    "brain2_image": "d35a1c6a3e1eb72bae97c5515472fbe057fb38ee8e1e199215d1c3c6f292332e",
    "brain2_label": "15189c024936ecc337649b9a10c475117c7c40df0d53c22163f9a2023ed741a5",
}
NOTICE = """\
The files lung1/lung2 (chest CT with tumour masks) and brain1/brain2 (brain MR with tumour masks)
in this folder come unchanged from the data/ folder of the pyradiomics 3.0.1 source archive
(pyradiomics-3.0.1.tar.gz on PyPI, sha256 {sha}), https://github.com/AIM-Harvard/pyradiomics,
van Griethuysen et al., Cancer Research 77(21):e104-e107, 2017. pyradiomics license:

{license}"""
MNI_NOTICE = """\
MNI152 template (ICBM 2009c nonlinear symmetric, 1 mm): T1 and grey/white-matter probability
maps, as shipped in the nilearn wheel (nilearn.datasets.load_mni152_template,
load_mni152_gm_template, load_mni152_wm_template). Fonov et al., NeuroImage 54(1):313-327, 2011;
Fonov et al., NeuroImage 47:S102, 2009.

Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging Centre, Montreal Neurological
Institute, McGill University. Permission to use, copy, modify, and distribute this software and
its documentation for any purpose and without fee is hereby granted, provided that the above
copyright notice appear in all copies. The authors and McGill University make no representations
about the suitability of this software for any purpose. It is provided "as is" without express
or implied warranty.
"""


def cache_root() -> Path:
    """``$SEMGEN_CACHE`` if set, else ``~/.cache/semantic-genesis``."""
    env = os.environ.get("SEMGEN_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "semantic-genesis"


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_samples(cache_dir: str | Path | None = None) -> dict[str, Path]:
    """The pyradiomics sample scans, fetched once and cached.

    Args:
        cache_dir: where the NRRD files live; default ``cache_root() / "samples"``.

    Returns:
        ``{"lung1_image": path, "lung1_label": path, ...}`` for lung1, lung2, brain1, brain2.

    Raises:
        SemgenError: offline or pip failed, or the archive's checksum is wrong.
    """
    folder = Path(cache_dir).expanduser() if cache_dir else cache_root() / "samples"
    paths = {name: folder / f"{name}.nrrd" for name in SAMPLES}
    if all(_valid(paths[name], sha) for name, sha in SAMPLES.items()):
        return paths
    say(f"samples: downloading {ARCHIVE} (34.5 MB) from the package registry")
    with tempfile.TemporaryDirectory(prefix="semgen-samples-") as tmp:
        archive = _download(Path(tmp))
        _extract(archive, folder)
    return paths


def _valid(path: Path, sha: str) -> bool:
    return path.is_file() and sha256_file(path) == sha


def _download(tmp: Path) -> Path:
    """``pip download`` the source archive (design.md, "Built-in data": needs
    --no-build-isolation, with numpy, setuptools and wheel in this Python) and check its sha256."""
    flags = "--no-deps --no-build-isolation --no-binary pyradiomics --disable-pip-version-check"
    cmd = [sys.executable, "-m", "pip", "download", *flags.split(), PYRADIOMICS, "-d", str(tmp)]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SemgenError(
            f"could not download {PYRADIOMICS.replace('==', ' ')} from the "
            f"package registry: {exc}; are you offline?"
        ) from None
    archive = tmp / ARCHIVE
    if result.returncode != 0 or not archive.is_file():
        output = result.stderr + result.stdout
        lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
        reason = next(
            (ln for ln in reversed(lines) if "ERROR" in ln),
            lines[-1] if lines else f"pip exited with status {result.returncode}",
        )
        hint = "are you offline?"
        if "No module named" in output:  # the sdist's metadata step runs setup.py here
            hint = "this Python needs numpy, setuptools and wheel (pip install setuptools wheel)"
        raise SemgenError(
            f"could not download {PYRADIOMICS.replace('==', ' ')} from the "
            f"package registry: {reason}; {hint}"
        )
    actual = sha256_file(archive)
    if actual != ARCHIVE_SHA256:
        raise SemgenError(
            f"sha256 is {actual}, expected {ARCHIVE_SHA256}: the registry served "
            "a different file; nothing was cached",
            archive,
        )
    return archive


def _extract(archive: Path, folder: Path) -> None:
    """Copy the eight NRRD members (and the license) out of the tar, each checked and written
    atomically. Member names are looked up, never used as output paths (no path traversal)."""
    with tarfile.open(archive, "r:gz") as tar:
        for name, sha in SAMPLES.items():
            data = _member(tar, _DATA + f"{name}.nrrd", archive)
            actual = hashlib.sha256(data).hexdigest()
            if actual != sha:
                raise SemgenError(f"{name}.nrrd has sha256 {actual}, expected {sha}", archive)
            with atomic_path(folder / f"{name}.nrrd") as tmp:
                tmp.write_bytes(data)
        license_text = _member(tar, "pyradiomics-3.0.1/LICENSE.txt", archive).decode()
    atomic_write_text(
        folder / "NOTICE.txt", NOTICE.format(sha=ARCHIVE_SHA256, license=license_text)
    )


def _member(tar: tarfile.TarFile, name: str, archive: Path) -> bytes:
    try:
        member = tar.getmember(name)
    except KeyError:
        raise SemgenError(f"{name} is missing from the archive", archive) from None
    handle = tar.extractfile(member) if member.isfile() else None
    if handle is None:
        raise SemgenError(f"{name} is not a regular file in the archive", archive)
    return handle.read()


def copy_samples(out_dir: str | Path, cache_dir: str | Path | None = None) -> dict[str, Path]:
    """Fetch (or reuse) the samples and place them in ``out_dir`` (hard links where the file
    system allows, else copies), with the NOTICE; returns the new paths."""
    cached = fetch_samples(cache_dir)
    out = Path(out_dir)
    placed = {}
    for name, src in cached.items():
        placed[name] = _place(src, out / src.name)
    _place(next(iter(cached.values())).parent / "NOTICE.txt", out / "NOTICE.txt")
    return placed


def _place(src: Path, dst: Path) -> Path:
    if (
        dst.is_file()
        and dst.stat().st_size == src.stat().st_size
        and sha256_file(dst) == sha256_file(src)
    ):
        return dst
    return link_or_copy(src, dst)


def mni152(cache_dir: str | Path | None = None) -> dict[str, Path]:
    """The MNI152 1 mm T1 template and its grey/white-matter probability maps (float32 in
    [0, 1], 197 x 233 x 189), saved as NIfTI in the cache (default ``cache_root()/"mni152"``).

    The files come from the nilearn wheel, offline; nilearn is the optional ``brain`` extra.

    Returns:
        ``{"t1": path, "gm": path, "wm": path}``.
    """
    folder = Path(cache_dir).expanduser() if cache_dir else cache_root() / "mni152"
    paths = {k: folder / f"mni152_{k}_1mm.nii.gz" for k in ("t1", "gm", "wm")}
    if all(p.is_file() for p in paths.values()):
        return paths
    try:
        from nilearn import datasets
    except ImportError:
        raise SemgenError(
            "the MNI152 brain template needs nilearn: pip install 'semantic-genesis[brain]'"
        ) from None
    loaders = {
        "t1": datasets.load_mni152_template,
        "gm": datasets.load_mni152_gm_template,
        "wm": datasets.load_mni152_wm_template,
    }
    for key, load in loaders.items():
        with atomic_path(paths[key], suffix=".nii.gz") as tmp:
            load(resolution=1).to_filename(tmp)
    atomic_write_text(folder / "NOTICE.txt", MNI_NOTICE)
    return paths
