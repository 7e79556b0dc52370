"""The one exception type users see.

Every error a user can cause (a bad file, a bad argument, a cohort that does not fit) is raised
as :class:`SemgenError` with a single line that names the file and what is wrong. The CLI prints
that line and exits with status 2; library users can catch it.
"""

from __future__ import annotations

from pathlib import Path


class SemgenError(Exception):
    """A user-facing error: one clear line, no traceback needed.

    Args:
        message: what is wrong, in words a user understands.
        path: the file or folder concerned, if any; it is put in front of the message.
    """

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        self.reason = message
        super().__init__(f"{path}: {message}" if path is not None else message)
