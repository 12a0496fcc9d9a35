"""Reading a DAW project file: a REAPER ``.RPP`` or an Ardour ``.ardour``, by its suffix
(:mod:`faderwise.tools.daw.reaper`, :mod:`faderwise.tools.daw.ardour`). The file is an input,
never written; it is read whole, within a bound, and a named pipe or a device is refused before
it is opened."""

from __future__ import annotations

import os
from pathlib import Path

from faderwise.tools.daw.ardour import read_ardour
from faderwise.tools.daw.model import Project
from faderwise.tools.daw.reaper import read_reaper
from faderwise.tools.errors import ProjectError
from faderwise.tools.input_files import PROJECT_LIMIT_BYTES
from faderwise.tools.json_files import read_input_bytes

READERS = {".rpp": read_reaper, ".ardour": read_ardour}


def is_project_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a REAPER or Ardour project by its suffix."""
    return Path(path).suffix.casefold() in READERS


def read_project(path: str | os.PathLike[str]) -> Project:
    """A REAPER or Ardour project's tracks and faders; the file is an input, never written.
    Tracks may share a name: each is its position (and id) in the project.

    Raises:
        ProjectError: missing or unreadable, not a project of either DAW, truncated, a format
            version faderwise does not know.
        NotAFileError: a named pipe (FIFO), a socket or a device (refused before it is opened).
        InputTooLargeError: larger than :data:`~faderwise.tools.input_files.PROJECT_LIMIT_BYTES`.
    """
    path = Path(path)
    reader = READERS.get(path.suffix.casefold())
    if reader is None:
        raise ProjectError(f"{path}: not a REAPER (.RPP) or Ardour (.ardour) project")
    raw = read_input_bytes(path, error=ProjectError, limit=PROJECT_LIMIT_BYTES, what="a project")
    if not raw.strip():
        raise ProjectError(f"{path}: is empty")
    return reader(path, raw.decode("utf-8", "surrogateescape"))
