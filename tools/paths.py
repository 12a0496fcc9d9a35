"""Where faderwise keeps its own files: ``$FADERWISE_DATA_DIR``, else the platform's user data
folder (the demo song, sessions, caches). The library and the command line both ask here."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

DATA_DIR_ENV = "FADERWISE_DATA_DIR"


def data_dir() -> Path:
    """The folder for the demo song, sessions and other files faderwise writes for itself."""
    configured = os.environ.get(DATA_DIR_ENV)
    return Path(configured) if configured else Path(platformdirs.user_data_dir("faderwise", appauthor=False))
