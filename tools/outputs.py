"""The one guarded way faderwise writes anything.

Every output — renders, bundles, plots, exports, transcripts, session exports, synthesis,
training and evaluation outputs — is written through :func:`output_file` or
:func:`output_folder`, or, for a long run that fills one folder over time (synthesis, training,
evaluation), inside a folder claimed with :func:`claim_run_folder`. The rules, in the order they
are checked:

1. **Inputs are never touched.** A target that is, contains or lies inside an input of the
   running command is refused. The readers of audio, stem sets, advice, scripts, configs,
   bundles, datasets and models register what they read (:func:`note_input`); callers may name
   more (``inputs=``).
2. **Nothing is replaced without force**, and with force only an earlier faderwise output
   (:func:`is_faderwise_output`): a folder holding the marker :data:`MARKER`, or a file that
   carries faderwise's signature or lies in such a folder. An existing *empty* folder counts as
   free: nothing in it can be lost.
3. **Written whole or not at all.** Everything is built under a hidden staging name beside the
   target and renamed into place with no-replace semantics (Linux ``renameat2(RENAME_NOREPLACE)``,
   macOS ``renamex_np(RENAME_EXCL)``), so a target that appeared while the output was being built
   is never replaced: the existence check and the rename are one step.
4. **Nothing is deleted that faderwise did not create**: its own staging, and, with force, the
   earlier faderwise output being replaced (moved aside first, checked to be the very file or
   folder that was recognised, then removed once the new one is in place).
5. **Leftovers of a killed run are cleaned.** Staging names are locked (``flock``) while in use; the
   first write in a folder removes unlocked leftovers there, and puts back an earlier output that
   a killed replacement had moved aside.

Filesystem failures (a parent that is a file, no permission, a full disk) become one
:class:`~faderwise.tools.errors.OutputError` naming the path.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import errno
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from faderwise.tools.errors import InputOverlapError, OutputError, OutputExistsError
from faderwise.tools.input_files import JSON_LIMIT_BYTES, LOG_LIMIT_BYTES, open_binary, read_text_bounded
from faderwise.tools.remedies import remedies

try:  # POSIX; elsewhere staging leftovers are not cleaned (they cannot be told from live ones)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

MARKER = ".faderwise-output.json"
"""The file that marks a folder as written by faderwise (its manifest: kind, version, time)."""
MARKER_FORMAT = "faderwise.output/1"
STAGING_TAG = ".faderwise-partial-"
RETIRED_TAG = ".faderwise-old-"
LEFTOVER_MIN_AGE_S = 10.0
"""A staging leftover younger than this is left alone even when unlocked: it may be a writer
between creating its staging name and locking it."""
PNG_SOFTWARE = "faderwise"
"""The PNG ``Software`` text chunk every plot carries (:func:`png_metadata`)."""
TEXT_SIGNATURE = "<!-- written by faderwise"
"""The first line of every Markdown or HTML file faderwise writes on its own."""
_SIGNATURE_BYTES = 4096
MARKER_LIMIT_BYTES = 64 * 1024
"""The largest marker file read, bytes (faderwise's are about 150)."""


def slug(text: str) -> str:
    """``text`` as a file name: lower-case letters and digits, runs of anything else as one
    ``-`` (``procedural/0007`` → ``procedural-0007``, ``alm:/models/x`` → ``alm-models-x``)."""
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in text.casefold())
    return "-".join(part for part in cleaned.split("-") if part)


# -- inputs --------------------------------------------------------------------------------------


class _Inputs:
    """What the running command reads: resolved paths, their ancestors (to find a target that
    holds one) and their (device, inode) pairs (to find one reached by another name)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.paths: set[Path] = set()
        self.ancestors: set[Path] = set()
        self.inodes: set[tuple[int, int]] = set()

    def add(self, path: str | os.PathLike[str]) -> None:
        resolved = _resolve(path)
        with self.lock:
            if resolved in self.paths:
                return
            self.paths.add(resolved)
            self.ancestors.update(resolved.parents)
            with contextlib.suppress(OSError):
                stat = resolved.stat()
                self.inodes.add((stat.st_dev, stat.st_ino))


_command_inputs: contextvars.ContextVar[_Inputs | None] = contextvars.ContextVar("faderwise_command_inputs",
                                                                                default=None)
"""The register of the command (or tool call) running in this context. It travels with the call:
threads started by :func:`~faderwise.tools.workers.both` and :func:`~faderwise.tools.workers.map_in_workers`,
and anyio's and LangGraph's worker threads, run in a copy of the caller's context and so share its
register; two concurrent calls, each in its own :func:`command_inputs`, never see each other's."""


def _register() -> _Inputs:
    """This context's register; code that opened none (a library caller, a script) gets one of its
    own on first use, kept for the rest of its context."""
    register = _command_inputs.get()
    if register is None:
        register = _Inputs()
        _command_inputs.set(register)
    return register


def note_input(*paths: str | os.PathLike[str]) -> None:
    """Register files or folders the running command reads: no output may be, hold or lie
    inside them. Every reader of user-supplied material calls this."""
    register = _register()
    for path in paths:
        register.add(path)


def noted_inputs() -> frozenset[Path]:
    """The resolved paths registered so far by the running command."""
    register = _register()
    with register.lock:
        return frozenset(register.paths)


@contextmanager
def command_inputs(*paths: str | os.PathLike[str]) -> Iterator[None]:
    """A fresh register of inputs for one command or tool call, holding ``paths`` to begin with
    (the CLI opens one per command, the chat and the MCP server one per tool call, tests one per
    test). It is this context's until the block ends; what the block registers never reaches
    another call's."""
    token = _command_inputs.set(_Inputs())
    try:
        note_input(*paths)
        yield
    finally:
        _command_inputs.reset(token)


def _resolve(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.abspath(Path(path).expanduser())).resolve()


def check_not_input(path: str | os.PathLike[str], *, inputs: Iterable[str | os.PathLike[str]] = ()) -> None:
    """Refuse ``path`` as an output when it is, holds or lies inside an input.

    Raises:
        InputOverlapError: naming the input.
    """
    target = _resolve(path)
    registered = _Inputs()
    for extra in inputs:
        registered.add(extra)
    for register in (_register(), registered):
        with register.lock:
            hit = _overlap(target, register)
        if hit is not None:
            raise InputOverlapError(f"{path}: {hit}; faderwise never writes over its input: choose another place")


def _overlap(target: Path, register: _Inputs) -> str | None:
    if target in register.paths:
        return "is an input of this command"
    for parent in target.parents:
        if parent in register.paths:
            return f"lies inside the input {parent}"
    if target in register.ancestors:
        inside = next(p for p in sorted(register.paths) if target in p.parents)
        return f"holds the input {inside}"
    with contextlib.suppress(OSError):
        stat = target.stat()
        if (stat.st_dev, stat.st_ino) in register.inodes:
            return "is an input of this command (by another name)"
    return None


# -- recognising faderwise's own outputs ---------------------------------------------------------


def png_metadata() -> dict[str, str]:
    """The metadata a PNG plot is saved with (matplotlib's ``savefig(metadata=…)``): its
    ``Software`` chunk is how a later ``--force`` recognises it."""
    return {"Software": f"{PNG_SOFTWARE} {_version()}"}


def text_signature(what: str) -> str:
    """The first line of a Markdown/HTML file faderwise writes: an HTML comment (invisible when
    rendered) by which a later ``--force`` recognises it."""
    return f"{TEXT_SIGNATURE}: {what} -->"


def is_faderwise_output(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is something faderwise wrote, so ``--force`` may replace it.

    A folder: it (or a folder it lies in) holds :data:`MARKER`. A file: it lies in such a folder,
    or carries a signature of its kind: a PNG's ``Software`` chunk, a JSON object's (or a JSON
    Lines file's first record's) ``"format": "faderwise.…"``, the first line of Markdown or HTML.
    """
    path = Path(path)
    if path.is_symlink() or not (path.is_dir() or path.is_file()):
        return False
    if _marked(path):
        return True
    if path.is_dir():
        return False
    try:
        with open_binary(path, what="an earlier output") as handle:  # a named pipe there is no output of ours
            head = handle.read(_SIGNATURE_BYTES)
    except (OSError, ValueError):
        return False
    suffix = path.suffix.casefold()
    if suffix == ".png":
        return head.startswith(b"\x89PNG") and b"Software\x00" + PNG_SOFTWARE.encode() in head
    if suffix in (".md", ".html", ".htm"):
        return head.startswith(TEXT_SIGNATURE.encode())
    if suffix in (".json", ".jsonl"):
        try:
            text = read_text_bounded(path, limit=LOG_LIMIT_BYTES if suffix == ".jsonl" else JSON_LIMIT_BYTES,
                                     what="an earlier output")
            first = json.loads(text.splitlines()[0] if suffix == ".jsonl" and text else text)
        except (OSError, UnicodeDecodeError, ValueError, IndexError):
            return False
        return isinstance(first, dict) and str(first.get("format", "")).startswith("faderwise.")
    return False


def _marked(path: Path) -> bool:
    """Whether ``path`` is a marked folder or lies inside one."""
    resolved = _resolve(path)
    return any(_marker_kind(folder) is not None for folder in (resolved, *resolved.parents))


def output_kind(folder: str | os.PathLike[str]) -> str | None:
    """What faderwise wrote in ``folder`` ("render", "bundle", "plot"…), from its marker; None when it
    holds none (or a foreign one)."""
    return _marker_kind(Path(folder))


def _marker_kind(folder: Path) -> str | None:
    """The kind written in ``folder``'s marker, or None when it has none (or a foreign one)."""
    try:
        marker = json.loads(read_text_bounded(folder / MARKER, limit=MARKER_LIMIT_BYTES, what="an output marker"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if isinstance(marker, dict) and marker.get("format") == MARKER_FORMAT:
        return str(marker.get("kind", ""))
    return None


def _write_marker(folder: Path, kind: str, *, private: bool) -> None:
    """Write ``folder``'s marker whole (a reader never sees half of it).

    Raises:
        FileExistsError: the folder has a marker already.
    """
    payload = {"format": MARKER_FORMAT, "kind": kind, "faderwise_version": _version(),
               "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    fd, name = tempfile.mkstemp(prefix=f"{MARKER}{STAGING_TAG}", dir=folder)
    try:
        os.fchmod(fd, 0o600 if private else 0o666 & ~_UMASK)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2)
            handle.write("\n")
        rename_noreplace(name, folder / MARKER)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("faderwise")
    except PackageNotFoundError:
        return "source"


# -- writing -------------------------------------------------------------------------------------


def check_target(
    path: str | os.PathLike[str], *, folder: bool, force: bool = False,
    inputs: Iterable[str | os.PathLike[str]] = (),
) -> Path:
    """Everything that can be known before the work starts: refuse now rather than after a long
    render. (The final rename checks again.)

    Args:
        path: the file or folder to write.
        folder: whether the output is a folder.
        force: whether an earlier faderwise output there may be replaced.
        inputs: more inputs than the command registered.

    Raises:
        InputOverlapError: ``path`` is, holds or lies inside an input.
        OutputExistsError: ``path`` exists and may not be replaced.
        OutputError: ``path`` cannot be created (its parent is a file, …).
    """
    path = Path(path)
    check_not_input(path, inputs=inputs)
    _check_parents(path)
    if not (path.exists() or path.is_symlink()):
        return path
    if path.is_dir() != folder and not path.is_symlink():
        kind = "a folder" if path.is_dir() else "a file"
        raise OutputExistsError(f"{path}: is {kind}; name a new {'folder' if folder else 'file'}")
    if folder and _is_empty_folder(path):
        return path
    if not force:
        raise OutputExistsError(f"{path}: already exists; choose a new {'folder' if folder else 'file'} "
                                f"or {remedies().force}")
    if not is_faderwise_output(path):
        what = f"holds no {MARKER}" if folder else "carries no faderwise signature"
        raise OutputExistsError(f"{path}: not something faderwise wrote ({what}), so {remedies().force_word} will "
                                "not replace it; move it away yourself or choose another place")
    return path


def output_file(
    path: str | os.PathLike[str], *, force: bool = False, inputs: Iterable[str | os.PathLike[str]] = (),
    private: bool = False,
) -> contextlib.AbstractContextManager[Path]:
    """Yield a staging file beside ``path`` (same suffix); when the block ends cleanly it
    becomes ``path``.

    Args:
        path: the file to write.
        force: replace an earlier faderwise output at ``path`` (:func:`is_faderwise_output`).
        inputs: more inputs than the command registered.
        private: create it readable by the owner only (0600): conversations, transcripts.

    Raises:
        InputOverlapError, OutputExistsError, OutputError: see :func:`check_target`; also when
        ``path`` appeared while the file was written.
    """
    return _staged(Path(path), kind=None, force=force, inputs=tuple(inputs), private=private)


def output_folder(
    path: str | os.PathLike[str], *, kind: str, force: bool = False,
    inputs: Iterable[str | os.PathLike[str]] = (), private: bool = False,
) -> contextlib.AbstractContextManager[Path]:
    """Yield an empty staging folder beside ``path``; when the block ends cleanly it gets the
    marker (``kind``; unless a folder it lies in has one) and becomes ``path``.

    Args:
        path: the folder to write.
        kind: what the folder is ("render", "bundle", …), written in its marker.
        force: replace an earlier faderwise output at ``path``.
        inputs: more inputs than the command registered.
        private: owner-only permissions (0700).

    Raises:
        InputOverlapError, OutputExistsError, OutputError: see :func:`check_target`; also when
        ``path`` appeared while the folder was written.
    """
    return _staged(Path(path), kind=kind, force=force, inputs=tuple(inputs), private=private)


@contextmanager
def _staged(path: Path, *, kind: str | None, force: bool, inputs: tuple[str | os.PathLike[str], ...],
            private: bool) -> Iterator[Path]:
    """The staging of :func:`output_file` (``kind`` None) or :func:`output_folder`: checked,
    created locked beside ``path``, committed by :func:`_commit`, removed if anything fails."""
    folder = kind is not None
    check_target(path, folder=folder, force=force, inputs=inputs)
    parent = _make_parent(path)
    clean_leftovers(parent)
    prefix = f".{path.name}{STAGING_TAG}"
    try:
        if folder:
            staging = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
            fd = os.open(staging, os.O_RDONLY)
        else:
            # the staging name keeps the suffix: writers that infer the format from it (soundfile) see the right one
            fd, name = tempfile.mkstemp(prefix=prefix, suffix=path.suffix, dir=parent)
            staging = Path(name)
    except OSError as exc:
        raise _os_error(path, exc) from exc
    try:
        _lock(fd)
        os.fchmod(fd, (0o700 if folder else 0o600) if private else (0o777 if folder else 0o666) & ~_UMASK)
        yield staging
        if folder and not _marked(parent):  # inside a marked folder (a run's), the folder above says it already
            _write_marker(staging, kind, private=private)  # type: ignore[arg-type]
        _commit(staging, path, folder=folder, force=force, inputs=inputs)
    except OSError as exc:
        raise _os_error(path, exc) from exc
    finally:
        os.close(fd)
        if os.path.lexists(staging):
            with contextlib.suppress(OSError):  # never hide the error that got us here
                _remove(staging)


def check_run_folder(
    path: str | os.PathLike[str], *, kind: str, inputs: Iterable[str | os.PathLike[str]] = (),
    legacy: str | None = None,
) -> bool:
    """What :func:`claim_run_folder` checks, without writing anything (to refuse a run before it
    loads its models). Returns whether ``path`` is already a run folder of ``kind``.

    Raises:
        InputOverlapError, OutputExistsError, OutputError: as :func:`claim_run_folder`.
    """
    path = Path(path)
    check_not_input(path, inputs=inputs)
    _check_parents(path)
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"{path}: is a file; name a folder")
    found = _marker_kind(path) if path.is_dir() else None
    if found is not None and found != kind:
        raise OutputExistsError(f"{path}: holds a faderwise {found} output, not a {kind} run; choose another folder")
    ours = found is not None or (legacy is not None and (path / legacy).exists()) or _being_claimed(path)
    if path.is_dir() and not ours and not _is_empty_folder(path):
        raise OutputExistsError(f"{path}: already exists and is not a faderwise {kind} folder; choose a new folder")
    return found is not None


def claim_run_folder(
    path: str | os.PathLike[str], *, kind: str, inputs: Iterable[str | os.PathLike[str]] = (),
    legacy: str | None = None,
) -> Path:
    """Make ``path`` the folder of a run that fills it over time and resumes in it (synthesis,
    training, evaluation): a new folder, an empty one, or one a run of the same ``kind`` made
    (its marker; ``legacy``: a file or folder that marks such a folder written before markers existed).
    Files inside are then written with :func:`output_file` / :func:`output_folder`; replacing
    them needs ``force=True``, which the marker allows.

    Raises:
        InputOverlapError: ``path`` is, holds or lies inside an input.
        OutputExistsError: ``path`` holds something else.
        OutputError: ``path`` cannot be created.
    """
    path = Path(path)
    marked = check_run_folder(path, kind=kind, inputs=inputs, legacy=legacy)
    try:
        if not marked:
            _make_parent(path)
            path.mkdir(exist_ok=True)
            with contextlib.suppress(FileExistsError):  # another process of the same run marked it first
                _write_marker(path, kind, private=False)
        clean_leftovers(path)
    except OSError as exc:
        raise _os_error(path, exc) from exc
    return path


def write_text(
    path: str | os.PathLike[str], text: str, *, force: bool = False, private: bool = False,
    inputs: Iterable[str | os.PathLike[str]] = (),
) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`output_file`."""
    with output_file(path, force=force, private=private, inputs=inputs) as staging:
        staging.write_text(text, encoding="utf-8")
    return Path(path)


def output_identity(path: str | os.PathLike[str]) -> tuple[int, ...]:
    """What :func:`remove_output` checks before it removes an output faderwise wrote: a folder's
    device and inode; a file's device, inode, size and modification time (ns). Recorded right after
    the write."""
    stat = os.lstat(path)
    if Path(path).is_dir() and not Path(path).is_symlink():
        return (stat.st_dev, stat.st_ino)
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def remove_output(path: str | os.PathLike[str], identity: tuple[int, ...]) -> None:
    """Remove an output faderwise wrote, only if it is still exactly that: the same file or folder
    (``identity`` from :func:`output_identity`), never an input of the running call, a folder still
    carrying faderwise's marker, a file unchanged since.

    Raises:
        OutputError: it is gone, was replaced or changed since, or is an input.
    """
    path = Path(path)
    if not os.path.lexists(path):
        raise OutputError(f"{path}: is gone already")
    check_not_input(path)
    if path.is_symlink() or output_identity(path) != identity:
        raise OutputError(f"{path}: changed since faderwise wrote it (replaced or edited), so faderwise leaves it "
                          "alone; remove it yourself if you mean to")
    if path.is_dir() and _marker_kind(path) is None:
        raise OutputError(f"{path}: holds no {MARKER} any more, so faderwise leaves it alone")
    try:
        _remove(path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot remove it: {exc.strerror or exc}") from exc


def _check_parents(path: Path) -> None:
    """Refuse ``path`` when the nearest existing folder above it is a file."""
    for parent in path.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise OutputError(f"{path}: cannot be created: {parent} is a file, not a folder")
            return


def _make_parent(path: Path) -> Path:
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise OutputError(f"{path}: cannot be created: a file stands where a folder should be") from exc
    except OSError as exc:
        raise _os_error(path, exc) from exc
    return parent


def _commit(staging: Path, path: Path, *, folder: bool, force: bool, inputs: tuple[object, ...]) -> None:
    """Rename ``staging`` to ``path`` without replacing anything that is not allowed to go."""
    check_not_input(path, inputs=inputs)  # type: ignore[arg-type]
    if folder and _is_empty_folder(path):
        with contextlib.suppress(OSError):
            path.rmdir()  # an empty folder holds nothing to lose; if it filled meanwhile, it stays
    try:
        rename_noreplace(staging, path)
        return
    except FileExistsError:
        if not force:
            raise OutputExistsError(f"{path}: appeared while faderwise was writing it (another run?); "
                                    "nothing was replaced") from None
    # --force: move the earlier output aside, make sure it is what was recognised, then replace.
    before = os.lstat(path)
    if not is_faderwise_output(path):
        raise OutputExistsError(f"{path}: not something faderwise wrote, so {remedies().force_word} will not "
                                "replace it")
    trash = Path(tempfile.mkdtemp(prefix=f".{path.name}{RETIRED_TAG}", dir=path.parent))
    trash_fd = os.open(trash, os.O_RDONLY)
    try:
        _lock(trash_fd)
        retired = trash / path.name
        os.rename(path, retired)
        moved = os.lstat(retired)
        if (moved.st_dev, moved.st_ino) != (before.st_dev, before.st_ino):
            with contextlib.suppress(OSError):
                rename_noreplace(retired, path)
            raise OutputExistsError(f"{path}: changed while faderwise was replacing it; nothing was replaced")
        try:
            rename_noreplace(staging, path)
        except FileExistsError:
            raise OutputExistsError(f"{path}: appeared while faderwise was writing it (another run?)") from None
        _remove(retired)
    finally:
        os.close(trash_fd)
        if not any(trash.iterdir()):
            trash.rmdir()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _being_claimed(path: Path) -> bool:
    """Whether ``path`` holds only the marker that another process of the same run is writing
    (the processes of a ``torchrun`` claim one folder at once)."""
    try:
        entries = list(path.iterdir()) if path.is_dir() and not path.is_symlink() else []
    except OSError:
        return False
    return bool(entries) and all(entry.name.startswith(f"{MARKER}{STAGING_TAG}") for entry in entries)


def _is_empty_folder(path: Path) -> bool:
    try:
        return path.is_dir() and not path.is_symlink() and not any(path.iterdir())
    except OSError:
        return False


def _os_error(path: Path, exc: OSError) -> OutputError:
    if isinstance(exc, OutputError):
        return exc
    reason = exc.strerror or type(exc).__name__
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) and STAGING_TAG not in str(
        exc.filename) else ""
    return OutputError(f"{path}: cannot write it: {reason}{where}")


# -- atomic no-replace rename ----------------------------------------------------------------------


def rename_noreplace(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Rename ``source`` to ``target`` unless ``target`` exists, as one step.

    Raises:
        FileExistsError: ``target`` exists (nothing was renamed).
    """
    source, target = os.fsencode(source), os.fsencode(target)
    result = _native_noreplace(source, target)
    if result == 0:
        return
    code = -result if result is not None else errno.ENOSYS
    if code == errno.EEXIST:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fsdecode(target))
    if code not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        raise OSError(code, os.strerror(code), os.fsdecode(target))
    # A filesystem without a no-replace rename: a hard link is atomic for files; a folder is
    # renamed after a check (rename(2) refuses a non-empty target anyway).
    if not os.path.isdir(source):
        try:
            os.link(source, target)
        except FileExistsError:
            raise
        except OSError:
            pass
        else:
            os.unlink(source)
            return
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fsdecode(target))
    os.rename(source, target)


_AT_FDCWD = -100
_RENAME_NOREPLACE = 1  # linux/fs.h
_RENAME_EXCL = 4  # macOS sys/stdio.h


def _native_noreplace(source: bytes, target: bytes) -> int | None:
    """0 on success, ``-errno`` on failure, None when the system has no such call."""
    libc = _libc()
    if libc is None:
        return None
    if sys.platform.startswith("linux") and hasattr(libc, "renameat2"):
        status = libc.renameat2(_AT_FDCWD, source, _AT_FDCWD, target, _RENAME_NOREPLACE)
    elif sys.platform == "darwin" and hasattr(libc, "renamex_np"):
        status = libc.renamex_np(source, target, _RENAME_EXCL)
    else:
        return None
    return 0 if status == 0 else -ctypes.get_errno()


_LIBC: list[ctypes.CDLL | None] = []


def _libc() -> ctypes.CDLL | None:
    if not _LIBC:
        try:
            _LIBC.append(ctypes.CDLL(None, use_errno=True))
        except OSError:  # pragma: no cover
            _LIBC.append(None)
    return _LIBC[0]


# -- staging locks and leftovers -------------------------------------------------------------------


def _lock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


_swept: set[Path] = set()
_swept_lock = threading.Lock()


def clean_leftovers(folder: str | os.PathLike[str], *, again: bool = False) -> list[Path]:
    """Remove what killed faderwise runs left in ``folder``: unlocked staging files and folders,
    and put back an earlier output that a killed ``--force`` had moved aside (or remove it when
    a newer one took its place). Runs once per folder and process unless ``again``.

    Returns:
        The leftovers handled.
    """
    folder = Path(folder)
    key = _resolve(folder)
    with _swept_lock:
        if key in _swept and not again:
            return []
        _swept.add(key)
    if fcntl is None:
        return []
    handled = []
    try:
        entries = [entry for entry in os.scandir(folder) if STAGING_TAG in entry.name or RETIRED_TAG in entry.name]
    except OSError:
        return []
    for entry in entries:
        path = Path(entry.path)
        try:
            if time.time() - entry.stat(follow_symlinks=False).st_mtime < LEFTOVER_MIN_AGE_S:
                continue
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a live writer holds it
            if RETIRED_TAG in entry.name:
                for retired in list(path.iterdir()):
                    original = folder / retired.name
                    try:
                        rename_noreplace(retired, original)  # the replacement never landed: put it back
                    except FileExistsError:
                        _remove(retired)
                path.rmdir()
            else:
                _remove(path)
            handled.append(path)
        except OSError:
            continue
        finally:
            os.close(fd)
    return handled


def _current_umask() -> int:
    """The process umask (read once: setting it to read it is not thread-safe later)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()
