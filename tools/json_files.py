"""JSON files written atomically; JSON and YAML files read with one clear error per problem."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from faderwise.tools.errors import FaderwiseError
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


def read_json(path: str | os.PathLike[str], *, error: type[FaderwiseError], missing: str = "no such file") -> object:
    """Parse a JSON file; a missing or malformed file raises ``error`` naming the file.

    Args:
        path: the file.
        error: the exception class to raise (the caller's domain: advice, bundle …).
        missing: what to say when the file does not exist.
    """
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise error(f"{path}: {missing}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid JSON ({exc})") from exc


def read_yaml(path: str | os.PathLike[str], *, error: type[FaderwiseError], missing: str = "no such file") -> object:
    """Parse a YAML file (configs, scripts); a missing or malformed file raises ``error`` naming
    the file, like :func:`read_json`."""
    import yaml  # only the commands that read YAML pay for the import

    path = Path(path)
    note_input(path)  # configs and scripts are inputs: no output may replace them
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: {missing}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid YAML: {exc}") from exc
