"""One exception hierarchy for all of faderwise.

Every message names the file or folder it is about and the problem, in one line, so the CLI can
print it as it is (``faderwise: error: <message>``) and exit with status 2.

    FaderwiseError
    ├── InvalidAudioError        samples that cannot be measured (NaN/Inf, too short, too many channels)
    │   └── AudioReadError       a file that cannot be decoded (empty, corrupt, not audio)
    ├── StemSetError             a folder or stem set that does not make sense (empty, duplicates, missing stem)
    ├── OutputExistsError        refusing to overwrite an existing output
    └── MissingDependencyError   an external program or optional extra is not installed
"""

from __future__ import annotations


class FaderwiseError(Exception):
    """Base class of every error faderwise raises on purpose."""


class InvalidAudioError(FaderwiseError, ValueError):
    """Audio samples that cannot be measured: wrong shape, NaN/Inf, too short, too many channels."""


class AudioReadError(InvalidAudioError):
    """A file that cannot be decoded as audio."""


class StemSetError(FaderwiseError, ValueError):
    """A stem set that does not make sense: empty folder, duplicate names, missing stem, mixed layouts."""


class OutputExistsError(FaderwiseError, FileExistsError):
    """An output folder or file exists and overwriting was not asked for."""


class MissingDependencyError(FaderwiseError, RuntimeError):
    """An external program (ffmpeg) or an optional extra is missing."""
