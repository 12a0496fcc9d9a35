"""JSON files written atomically; JSON and YAML files read with one clear error per problem."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tools.errors import FaderwiseError
from tools.outputs import atomic_file


def plain_json(payload: object) -> object:
    """``payload`` with numpy scalars turned into Python numbers and tuples into lists: what any
    JSON or msgpack serializer accepts."""
    return json.loads(json.dumps(payload, default=lambda value: value.item() if hasattr(value, "item") else str(value)))


def write_json(path: str | os.PathLike[str], payload: object) -> Path:
    """Write ``payload`` as indented JSON, atomically, creating the folder it goes in (NaN and
    infinities are refused: use null)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return Path(path)


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
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: {missing}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid YAML: {exc}") from exc
