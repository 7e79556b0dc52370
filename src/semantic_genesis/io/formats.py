"""Which format a path holds, which files make it up, and a first look at their bytes.

Used before the real readers run, so that the common mistakes (a text file named ``.nii.gz``, an
``.mhd`` whose ``.raw`` is missing or short, an empty file) get a clear reason instead of an ITK
message, and so that ``prepare`` can hash exactly the files a volume was read from.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from semantic_genesis.utils.errors import SemgenError

#: suffix -> format name; the longest matching suffix wins (".nii.gz" before ".gz").
SUFFIXES: dict[str, str] = {
    ".nii.gz": "nifti", ".nii": "nifti",
    ".mhd": "metaimage", ".mha": "metaimage",
    ".nrrd": "nrrd", ".nhdr": "nrrd",
    ".npy": "npy",
    ".dcm": "dicom", ".ima": "dicom", ".dicom": "dicom",
}

_MET_BYTES = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4,
              "MET_UINT": 4, "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8,
              "MET_ULONG_LONG": 8, "MET_FLOAT": 4, "MET_DOUBLE": 8}


def scan_format(path: str | Path) -> str | None:
    """``nifti``, ``metaimage``, ``nrrd``, ``npy``, ``dicom`` (file), ``dicom-folder`` or None."""
    path = Path(path)
    if path.is_dir():
        return "dicom-folder"
    name = path.name.lower()
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return SUFFIXES[suffix]
    return None


def has_dicom_preamble(path: Path) -> bool:
    """True when ``path`` carries the DICOM Part 10 marker ``DICM`` at byte 128."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def looks_like_text(head: bytes) -> bool:
    """True when the first bytes of a file are plain text (no NUL, valid UTF-8)."""
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable >= 0.95 * len(text)


def check_binary(path: Path, what: str, gzip: bool = False) -> None:
    """Refuse an empty file, a text file, or a non-gzip file named ``.gz`` with a clear reason."""
    with open(path, "rb") as fh:
        head = fh.read(1024)
    if not head:
        raise SemgenError(f"empty file (0 bytes), not a {what}", path)
    if gzip and head[:2] != b"\x1f\x8b":
        kind = "a text file" if looks_like_text(head) else "not gzip-compressed"
        raise SemgenError(f"{kind}, although named .gz; not a {what}", path)
    if not gzip and looks_like_text(head):
        raise SemgenError(f"a text file, not a {what}", path)


def _header_fields(path: Path, separator: str) -> tuple[dict[str, str], list[str]]:
    """Key/value fields of a text header (MetaImage ``k = v`` or NRRD ``k: v``) and the lines
    after the data-file key (for ``LIST`` data files)."""
    fields: dict[str, str] = {}
    with open(path, "rb") as fh:
        raw = fh.read(65536)
    lines = raw.decode("latin-1").splitlines()
    for i, line in enumerate(lines):
        if separator not in line or line.startswith("#"):
            if not line.strip() and separator == ":":  # NRRD: a blank line ends the header
                break
            continue
        key, value = line.split(separator, 1)
        key = key.strip().lower().replace(" ", "")
        fields[key] = value.strip()
        if key in {"elementdatafile", "datafile"}:
            return fields, lines[i + 1:]
    return fields, []


def _data_files(header: Path, value: str, rest: list[str]) -> list[Path]:
    parts = value.split()
    if not parts or parts[0].upper() == "LOCAL":
        return []
    if parts[0].upper() == "LIST":
        names = [ln.strip() for ln in rest if ln.strip()]
    elif "%" in value:  # a printf pattern of slice files: the pattern itself (not hashed)
        names = [parts[0]]
    else:
        names = [value]
    return [header.parent / name for name in names]


def _inside(data: Path, folder: Path) -> bool:
    """True when ``data`` (as named, without following links) lies in ``folder`` or below."""
    data_n, folder_n = Path(os.path.abspath(data)), Path(os.path.abspath(folder))
    return data_n == folder_n or folder_n in data_n.parents


#: header suffix -> (field key as parsed, field name as written, separator, key is required)
_HEADERS = {".mhd": ("elementdatafile", "ElementDataFile", "=", True),
            ".mha": ("elementdatafile", "ElementDataFile", "=", False),
            ".nhdr": ("datafile", "data file", ":", True),
            ".nrrd": ("datafile", "data file", ":", False)}


def source_files(path: str | Path, allow_external: bool = False) -> list[Path]:
    """The files a scan is read from: the file itself, plus the data file(s) named by a
    MetaImage (``.mhd``/``.mha``) or NRRD (``.nhdr``/``.nrrd``) header, or the files of a DICOM
    folder.

    A header may name any path; reading one outside the header's folder would let a crafted
    header pull any file on the disk into a cohort, so that is refused unless
    ``allow_external`` (``semgen prepare --allow-external-data``).

    Raises:
        SemgenError: when the path is missing, or a data file named by its header is missing or
            (without ``allow_external``) outside the header's folder.
    """
    path = Path(path)
    if not path.exists():
        raise SemgenError("not found", path)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    files = [path]
    suffix = next((s for s in _HEADERS if path.name.lower().endswith(s)), None)
    if suffix is None:
        return files
    key, label, separator, required = _HEADERS[suffix]
    fields, rest = _header_fields(path, separator)
    if key not in fields:
        if required:
            raise SemgenError(f"header has no '{label}' line; not a MetaImage/NRRD header", path)
        return files
    for data in _data_files(path, fields[key], rest):
        if not allow_external and not _inside(data, path.parent):
            raise SemgenError(f"the header's '{label}' names '{fields[key]}', outside the "
                              "header's folder; refused (pass --allow-external-data if you "
                              "trust this header)", path)
        if "%" in data.name:
            continue  # slice files named by a pattern: the reader finds (or misses) them
        if not data.is_file():
            raise SemgenError(f"data file '{data.name}' named in the header is missing", path)
        files.append(data)
    return files


def check_metaimage(path: Path) -> None:
    """Check that an ``.mhd``'s data file holds as many bytes as its header says."""
    fields, rest = _header_fields(path, "=")
    if "elementdatafile" not in fields:
        return
    data = _data_files(path, fields["elementdatafile"], rest)
    size = fields.get("dimsize", "").split()
    nbytes = _MET_BYTES.get(fields.get("elementtype", ""))
    if len(data) != 1 or "%" in data[0].name or not size or nbytes is None:
        return
    try:
        if fields.get("compresseddata", "false").lower() == "true":
            expected = int(fields.get("compresseddatasize", "0") or 0)
        else:
            expected = nbytes * int(fields.get("elementnumberofchannels", "1") or 1)
            for s in size:
                expected *= int(s)
    except ValueError:
        raise SemgenError("the header's DimSize, ElementNumberOfChannels or CompressedDataSize "
                          "is not a whole number", path) from None
    actual = data[0].stat().st_size
    if actual < expected:
        raise SemgenError(f"data file '{data[0].name}' is truncated ({actual} of {expected} "
                          "bytes)", path)


def sha256_of(files: list[Path], relative_to: Path | None = None) -> str:
    """SHA-256 over the contents (and, for folders, the names) of ``files``."""
    h = hashlib.sha256()
    for f in files:
        if relative_to is not None:
            h.update(f.relative_to(relative_to).as_posix().encode() + b"\x00")
        with open(f, "rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def source_sha256(path: str | Path, allow_external: bool = False) -> str:
    """SHA-256 of everything a scan is read from (see :func:`source_files`)."""
    path = Path(path)
    return sha256_of(source_files(path, allow_external),
                     relative_to=path if path.is_dir() else None)


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def strip_suffix(name: str) -> str:
    """A file name without its scan suffix (``ct.nii.gz`` -> ``ct``)."""
    lower = name.lower()
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def sanitise(name: str) -> str:
    """A name safe as a file stem and CSV field: letters, digits, ``._-``; never empty."""
    return _SAFE.sub("_", name).strip("._-") or "volume"


def display_path(path: str | Path) -> str:
    """``path`` as printable UTF-8 text: bytes that are not valid UTF-8 in a file name (kept by
    Python as surrogates) become ``\\xff`` escapes, so CSV files and the console can show it."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def is_utf8(path: str | Path) -> bool:
    """True when ``path`` is valid UTF-8 (the only file names SimpleITK can take)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
