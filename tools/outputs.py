"""New output folders, written whole or not at all.

Outputs are built in a hidden temporary folder beside the destination and renamed into place when
complete, so an interrupted run leaves no half-written folder. An existing destination is replaced
only when asked, and never when it holds (or is) the input audio.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tools.errors import OutputExistsError


def slug(text: str) -> str:
    """``text`` as a file name: lower-case letters and digits, runs of anything else as one
    ``-`` (``procedural/0007`` → ``procedural-0007``, ``alm:/models/x`` → ``alm-models-x``)."""
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in text.casefold())
    return "-".join(part for part in cleaned.split("-") if part)


@contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); on a clean exit it is renamed to
    ``path``, otherwise deleted. Readers never see a half-written file."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp_name)
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)


@contextmanager
def new_output_folder(
    path: str | os.PathLike[str], *, force: bool = False, inputs: Iterable[str | os.PathLike[str]] = ()
) -> Iterator[Path]:
    """Yield an empty temporary folder; on a clean exit it becomes ``path``.

    Args:
        path: the folder to create. Its parent is created if missing.
        force: replace an existing ``path`` (only once the new folder is complete).
        inputs: files or folders the outputs are made from; ``path`` may not be one of them or
            contain one, so input audio is never overwritten or deleted.

    Raises:
        OutputExistsError: ``path`` exists and ``force`` is false, or ``path`` holds an input.
    """
    path = Path(path)
    target = path.resolve()
    for source in inputs:
        source = Path(source).resolve()
        if source == target or target in source.parents:
            raise OutputExistsError(f"{path}: holds the input audio ({source}); choose a new output folder")
    if path.exists() and not force:
        raise OutputExistsError(f"{path}: already exists; choose a new folder or pass --force to replace it")
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"{path}: exists and is not a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
    try:
        yield staging
        if path.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, retired / path.name)
            os.replace(staging, path)
            shutil.rmtree(retired)
        else:
            os.replace(staging, path)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
