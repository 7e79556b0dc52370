"""Hand SimpleITK only file names it can take.

SimpleITK passes names to C++ as UTF-8; a name that is not valid UTF-8 (Python keeps its bytes as
surrogates, e.g. ``scan_\\udcff.nii.gz`` for the byte ``0xff``) makes it throw an exception no one
catches, and the whole process aborts (``terminate called``). Such a scan is read through
symbolic links with UTF-8 names (each bad byte written as ``_``; no backslash, which MetaIO
would take for a folder separator) in a temporary folder: the links point at the user's files,
which are never moved or changed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from semantic_genesis.io.formats import is_utf8
from semantic_genesis.utils.errors import SemgenError


@contextlib.contextmanager
def itk_readable(path: Path, files: list[Path]) -> Iterator[Path]:
    """Yield ``path`` itself when it and ``files`` (what it is read from, see
    ``formats.source_files``) have UTF-8 names; otherwise an equivalent path of links in a
    temporary folder, removed afterwards.

    Raises:
        SemgenError: when the links cannot reproduce the layout (a header naming data outside
            its folder, or a data file whose own name is not UTF-8).
    """
    if all(is_utf8(os.path.abspath(f)) for f in [path, *files]):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="semgen-read-") as tmp:
        yield _links(path, files, Path(tmp))


def _utf8_name(name: str, taken: set[str]) -> str:
    """``name`` with each byte that is not UTF-8 as ``_`` (numbered when that clashes)."""
    clean = os.fsencode(name).decode("utf-8", "replace").replace("\ufffd", "_")
    candidate, n = clean, 1
    while candidate in taken:
        n += 1
        candidate = f"{n}_{clean}"
    taken.add(candidate)
    return candidate


def _links(path: Path, files: list[Path], tmp: Path) -> Path:
    if path.is_dir():  # a DICOM folder: GDCM orders slices by position, not by name
        folder = tmp / _utf8_name(path.name, set())
        folder.mkdir()
        taken: set[str] = set()
        for f in files:
            (folder / _utf8_name(f.name, taken)).symlink_to(os.path.abspath(f))
        return folder
    link = tmp / _utf8_name(path.name, set())
    link.symlink_to(os.path.abspath(path))
    for data in files[1:]:  # data files named (relatively) by the header
        rel = Path(os.path.relpath(os.path.abspath(data), os.path.abspath(path.parent)))
        if ".." in rel.parts or not is_utf8(rel):
            raise SemgenError("the file name is not valid UTF-8 and its data file cannot be "
                              "linked beside it; rename the files to UTF-8 names", path)
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).symlink_to(os.path.abspath(data))
    return link
