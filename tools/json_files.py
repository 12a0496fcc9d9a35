"""JSON files written atomically; JSON and YAML files read (regular files only, each kind with a size
limit: :mod:`faderwise.tools.input_files`) with one clear error per problem."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from faderwise.tools.errors import FaderwiseError
from faderwise.tools.input_files import CONFIG_LIMIT_BYTES, JSON_LIMIT_BYTES, read_bytes_bounded, read_text_bounded
from faderwise.tools.outputs import note_input, write_text


def is_number(value: object) -> bool:
    """Whether a value read from JSON or YAML is a finite number (``true`` is not a number)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def plain_json(payload: object) -> object:
    """``payload`` with numpy scalars turned into Python numbers and tuples into lists: what any
    JSON or msgpack serializer accepts."""
    return json.loads(json.dumps(payload, default=lambda value: value.item() if hasattr(value, "item") else str(value)))


def write_json(path: str | os.PathLike[str], payload: object, *, force: bool = False, private: bool = False) -> Path:
    """Write ``payload`` as indented JSON through the guarded writer (:func:`faderwise.tools.outputs.write_text`;
    replaced only with ``force``), creating the folder it goes in. NaN and infinities are
    refused: use null."""
    return write_text(path, json.dumps(payload, indent=2, allow_nan=False) + "\n", force=force, private=private)


def read_input_bytes(path: str | os.PathLike[str], *, error: type[FaderwiseError], limit: int, what: str,
                     missing: str = "no such file") -> bytes:
    """The whole of an input file (registered as an input: no output may replace it), at most
    ``limit`` bytes; a missing or unreadable file raises ``error`` naming the file.

    Raises:
        NotAFileError: a named pipe, socket or device; InputTooLargeError: over ``limit``.
    """
    path = Path(path)
    note_input(path)
    try:
        return read_bytes_bounded(path, limit=limit, what=what)
    except FileNotFoundError:
        raise error(f"{path}: {missing}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read it ({exc.strerror or exc})") from None


def read_input_text(path: str | os.PathLike[str], *, error: type[FaderwiseError], limit: int, what: str,
                    missing: str = "no such file") -> str:
    """:func:`read_input_bytes` as UTF-8 text (line ends as written); other bytes raise ``error``."""
    try:
        return read_input_bytes(path, error=error, limit=limit, what=what, missing=missing).decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{path}: not UTF-8 text") from None


def read_json(path: str | os.PathLike[str], *, error: type[FaderwiseError], missing: str = "no such file",
              limit: int = JSON_LIMIT_BYTES, what: str = "a JSON file") -> object:
    """Parse a JSON file; a missing, unreadable or malformed file raises ``error`` naming the file.

    Args:
        path: the file.
        error: the exception class to raise (the caller's domain: advice, bundle …).
        missing: what to say when the file does not exist.
        limit: the largest file read, in bytes (:mod:`faderwise.tools.input_files`).
        what: what the file is, for the size refusal (``"advice"``, ``"a JSON file"``).

    Raises:
        NotAFileError: a named pipe, socket or device; InputTooLargeError: over ``limit``.
    """
    path = Path(path)
    try:
        return json.loads(read_text_bounded(path, limit=limit, what=what))
    except FileNotFoundError as exc:
        raise error(f"{path}: {missing}") from exc
    except OSError as exc:
        raise error(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid JSON ({exc})") from exc


def read_yaml(path: str | os.PathLike[str], *, error: type[FaderwiseError], missing: str = "no such file",
              limit: int = CONFIG_LIMIT_BYTES, what: str = "a YAML file") -> object:
    """Parse a YAML file (configs, scripts, map files); a missing, unreadable or malformed file
    raises ``error`` naming the file, like :func:`read_json` (``limit`` in bytes, ``what`` as there)."""
    import yaml  # only the commands that read YAML pay for the import

    path = Path(path)
    note_input(path)  # configs and scripts are inputs: no output may replace them
    try:
        return yaml.safe_load(read_text_bounded(path, limit=limit, what=what))
    except FileNotFoundError:
        raise error(f"{path}: {missing}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid YAML: {exc}") from exc
