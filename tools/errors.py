"""One exception hierarchy for all of faderwise.

Every message names the file or folder it is about and the problem, in one line, so the CLI can
print it as it is (``faderwise: error: <message>``) and exit with status 2.

    FaderwiseError
    ├── InvalidAudioError        samples that cannot be measured (NaN/Inf, too short, too many channels)
    │   └── AudioReadError       a file that cannot be decoded (empty, corrupt, not audio)
    ├── StemSetError             a folder or stem set that does not make sense (empty, duplicates, missing stem)
    ├── OutputError              an output that cannot or may not be written (the path named)
    │   ├── OutputExistsError    it exists and may not be replaced (no --force, or not faderwise's own)
    │   └── InputOverlapError    it is, holds or lies inside an input of the command
    ├── ProjectError             a DAW project that cannot be read or mapped (not one, truncated, unknown
    │                            version, duplicate track names, a track with no bounced stem)
    ├── DawConnectionError       a DAW that does not answer over OSC (host unknown or unreachable, no reply)
    ├── NotAFileError            an input that is a named pipe (FIFO), a socket or a device, not a regular file
    ├── InputTooLargeError       an input file larger than faderwise reads for its kind (tools/input_files.py)
    ├── ResourceLimitError       the input needs more memory than the machine has free
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


class OutputError(FaderwiseError):
    """An output that cannot be written: its parent is a file, no permission, a full disk."""


class OutputExistsError(OutputError, FileExistsError):
    """An output exists and may not be replaced: no ``--force``, or not a faderwise output, or
    it appeared while faderwise was writing."""


class InputOverlapError(OutputError):
    """An output that is, holds or lies inside an input of the command."""


class ProjectError(FaderwiseError, ValueError):
    """A REAPER or Ardour project that cannot be read, or whose tracks cannot be mapped to stems."""


class DawConnectionError(FaderwiseError, ConnectionError):
    """A DAW that cannot be reached over OSC, or does not answer."""


class NotAFileError(FaderwiseError, ValueError):
    """An input that is not a regular file: a named pipe (FIFO), a socket, a character or block
    device. Refused from its ``stat`` before anything opens it (an open of a FIFO would wait for a
    writer forever; ``/dev/zero`` never ends)."""


class InputTooLargeError(FaderwiseError, ValueError):
    """An input file larger than the limit faderwise reads for its kind (a project, a map file, a
    config, advice …; :mod:`faderwise.tools.input_files`)."""


class ResourceLimitError(FaderwiseError, MemoryError):
    """A command that would need more memory than is free (said before decoding, not mid-run)."""


class MissingDependencyError(FaderwiseError, RuntimeError):
    """An external program (ffmpeg) or an optional extra is missing."""


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters shown as escapes, so an error stays one
    line whatever a file name holds (the command line's ``faderwise: error: …``, an MCP tool's error)."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
