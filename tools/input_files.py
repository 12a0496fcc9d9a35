"""What faderwise reads is a regular file, read with a bound.

A path given as an input may name anything: a named pipe (FIFO), whose ``open()`` waits for a
writer that may never come; a socket; a device such as ``/dev/zero``, which never ends. Every
reader of a file a user names goes through this module:

* :func:`check_regular_file` stats the path (following symlinks) **before anything opens it** and
  refuses, in one line naming the path, anything that is not a regular file (a FIFO, a socket, a
  character or block device), and a file larger than the reader's limit;
* :func:`open_regular_file` then opens it without blocking (``O_NONBLOCK``: a FIFO swapped in
  between the stat and the open cannot block either) and checks the opened descriptor again;
* :func:`read_bytes_bounded` / :func:`read_text_bounded` read a whole file (a project, a map file,
  a config, advice, a script, a manifest) and refuse one over its limit, checked from the size
  before reading and by counting while reading (a file that grows, or a size the kernel does not
  state, cannot pass it either).

Audio files are decoded by libsndfile in blocks, so for them the check is the file's type, not its
size: libsndfile reads from the checked descriptor
(:func:`faderwise.tools.audio_io.open_sound_file`). A ``.stem.mp4`` is checked by its path before
ffmpeg opens it. A folder listing keeps a special file that has an audio file's name
(:func:`is_special_file`), so that it is refused by name, never passed over.

A missing path and a folder are not refused here: the openers raise the :class:`OSError` that
``open()`` raises (:class:`FileNotFoundError`, :class:`IsADirectoryError`), so each caller keeps its
own message for them.

All sizes and limits are in bytes.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO

from faderwise.tools.errors import InputTooLargeError, NotAFileError

KIB = 1024
"""Bytes in a kibibyte."""
MIB = 1024 * KIB
"""Bytes in a mebibyte."""
GIB = 1024 * MIB
"""Bytes in a gibibyte."""

PROJECT_LIMIT_BYTES = 256 * MIB
"""A REAPER (.RPP) or Ardour (.ardour) project: text, read whole (big sessions with long
automation run to tens of MiB)."""
MAP_LIMIT_BYTES = 4 * MIB
"""A track-to-stem map file (YAML, one line per track)."""
CONFIG_LIMIT_BYTES = 4 * MIB
"""A config: the chat's TOML file, a synthesis, training or evaluation YAML."""
SCRIPT_LIMIT_BYTES = 4 * MIB
"""A ``faderwise run`` script (YAML)."""
ADVICE_LIMIT_BYTES = 16 * MIB
"""An advice file (JSON: moves, explanation text and evidence per stem)."""
JSON_LIMIT_BYTES = 64 * MIB
"""Any other JSON file faderwise reads: bundle.json, a synthesis item, push and undo records, a
checkpoint's state, cached answers and verdicts, study keys and answers."""
MANIFEST_LIMIT_BYTES = 512 * MIB
"""A dataset's manifest (JSON lines, one item a line), a MixParams table (CSV or JSON lines)."""
LOG_LIMIT_BYTES = 256 * MIB
"""A training run's ``log.jsonl`` (one line per step), a scripted run's transcript."""
MODEL_SETTINGS_LIMIT_BYTES = 1 * MIB
"""A model folder's ``faderwise_alm.json``."""
MIDI_LIMIT_BYTES = 16 * MIB
"""A General MIDI file of a synthesis dataset (songs are tens of KiB)."""

_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)
_OTHER_KIND = "a special file"  # a door, an event port, a whiteout: whatever else a system has
_READ_CHUNK_BYTES = 1 * MIB


def not_a_file_error(path: str | os.PathLike[str], mode: int) -> NotAFileError:
    """The one-line refusal of ``path`` whose ``st_mode`` is ``mode``: neither a regular file nor a folder."""
    kind = next((name for test, name in _KINDS if test(mode)), _OTHER_KIND)
    return NotAFileError(f"{path}: is {kind}, not a file; faderwise reads only regular files")


def size_text(size: int) -> str:
    """A size in bytes as people read it, exact: ``11 bytes``, ``4 MiB``, ``4,194,305 bytes (4.0 MiB)``
    (a size one byte over a limit never reads as the limit)."""
    if size < KIB:
        return f"{size} byte{'' if size == 1 else 's'}"
    unit, scale = next((unit, scale) for unit, scale in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)) if size >= scale)
    if size % scale == 0:
        return f"{size // scale} {unit}"
    return f"{size:,} bytes ({size / scale:.1f} {unit})"


def _too_large(path: str | os.PathLike[str], size: int | None, limit: int, what: str) -> InputTooLargeError:
    held = f"is {size_text(size)}" if size is not None else f"holds more than {size_text(limit)}"
    return InputTooLargeError(f"{path}: {held}; faderwise reads at most {size_text(limit)} as {what}")


def check_regular_file(path: str | os.PathLike[str], *, what: str,
                       limit: int | None = None) -> os.stat_result | None:
    """Refuse ``path`` unless it is a regular file (symlinks followed), from its ``stat`` alone:
    nothing is opened.

    Args:
        path: the file to be read.
        what: what the file is, as it reads after "as" in the size refusal: ``"a project"``,
            ``"a map file"``, ``"advice"``.
        limit: the largest size accepted, in bytes; ``None``: any size (audio, read in blocks).

    Returns:
        The file's ``stat``; ``None`` when ``path`` cannot be stat'ed (missing, a parent that is
        no folder, no permission) or is a folder: the caller's own check or ``open()`` then says so
        in the caller's words.

    Raises:
        NotAFileError: a named pipe, a socket, a character or block device (or another kind of
            special file).
        InputTooLargeError: a regular file larger than ``limit`` bytes.
    """
    try:
        found = os.stat(path)
    except (OSError, ValueError):  # ValueError: a NUL byte in the name; open() says so as well
        return None
    if stat.S_ISDIR(found.st_mode):
        return None
    if not stat.S_ISREG(found.st_mode):
        raise not_a_file_error(path, found.st_mode)
    if limit is not None and found.st_size > limit:
        raise _too_large(path, found.st_size, limit, what)
    return found


def exists_as_file(path: str | os.PathLike[str], *, what: str, limit: int | None = None) -> bool:
    """Whether an optional input is there to read: ``True`` for a regular file, ``False`` when
    nothing (or a folder) is at ``path``; a special file is refused, never passed over as absent.

    Raises:
        NotAFileError, InputTooLargeError: as :func:`check_regular_file`.
    """
    return check_regular_file(path, what=what, limit=limit) is not None


def is_special_file(path: str | os.PathLike[str]) -> bool:
    """Whether something other than a regular file or a folder is at ``path`` (symlinks followed):
    a listing of a folder keeps such an entry, so that it is refused by name rather than passed
    over. Nothing is opened."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def open_regular_file(path: str | os.PathLike[str], *, what: str, limit: int | None = None) -> int:
    """A read-only file descriptor of ``path``, which :func:`check_regular_file` accepted before
    the open and whose opened descriptor is checked again (``fstat``); opened with ``O_NONBLOCK``
    so that nothing swapped in between can block, which is then cleared. The caller closes it.

    Raises:
        NotAFileError, InputTooLargeError: as :func:`check_regular_file`.
        OSError: what ``open()`` raises: :class:`FileNotFoundError`, :class:`IsADirectoryError`
            (a folder), :class:`PermissionError` …
    """
    check_regular_file(path, what=what, limit=limit)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        found = os.fstat(fd)
        if stat.S_ISDIR(found.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(found.st_mode):
            raise not_a_file_error(path, found.st_mode)
        if limit is not None and found.st_size > limit:
            raise _too_large(path, found.st_size, limit, what)
        if getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)  # a regular file never blocks; readers given the descriptor expect it clear
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_binary(path: str | os.PathLike[str], *, what: str) -> BinaryIO:
    """``path`` opened for reading bytes (``"rb"``) through :func:`open_regular_file`: for a
    reader that streams a file of any size (hashing it, reading a model's arrays)."""
    return os.fdopen(open_regular_file(path, what=what), "rb")


def read_bytes_bounded(path: str | os.PathLike[str], *, limit: int, what: str) -> bytes:
    """The whole of the regular file ``path``, at most ``limit`` bytes of it.

    Args:
        path: the file.
        limit: the largest size accepted, in bytes (a named constant of this module).
        what: what the file is, for the size refusal (see :func:`check_regular_file`).

    Raises:
        NotAFileError: a named pipe, a socket, a device.
        InputTooLargeError: more than ``limit`` bytes, said from its size or found while reading.
        OSError: what ``open()`` or ``read()`` raises (missing, a folder, no permission …).
    """
    fd = open_regular_file(path, what=what, limit=limit)
    try:
        chunks: list[bytes] = []
        total = 0
        while chunk := os.read(fd, min(_READ_CHUNK_BYTES, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise _too_large(path, None, limit, what)
    finally:
        os.close(fd)
    return b"".join(chunks)


def read_text_bounded(path: str | os.PathLike[str], *, limit: int, what: str, encoding: str = "utf-8",
                      newline: str | None = None) -> str:
    """:func:`read_bytes_bounded`, decoded. ``newline`` as :func:`open` takes it: ``None``
    (default) turns ``\\r\\n`` and ``\\r`` into ``\\n`` as :meth:`pathlib.Path.read_text` does; ``""``
    keeps line ends as they are (CSV).

    Raises:
        UnicodeDecodeError: the bytes are not ``encoding``; and what :func:`read_bytes_bounded` raises.
    """
    text = read_bytes_bounded(path, limit=limit, what=what).decode(encoding)
    if newline is None:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


__all__ = ["ADVICE_LIMIT_BYTES", "CONFIG_LIMIT_BYTES", "JSON_LIMIT_BYTES", "LOG_LIMIT_BYTES", "MANIFEST_LIMIT_BYTES",
           "MAP_LIMIT_BYTES", "MIDI_LIMIT_BYTES", "MODEL_SETTINGS_LIMIT_BYTES", "PROJECT_LIMIT_BYTES", "SCRIPT_LIMIT_BYTES",
           "check_regular_file", "exists_as_file", "is_special_file", "not_a_file_error", "open_binary",
           "open_regular_file", "read_bytes_bounded", "read_text_bounded", "size_text"]
