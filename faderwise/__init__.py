"""faderwise: a terminal mixing assistant. This package holds the command line; the work is done
in ``tools/``, ``advisor/``, ``agent/``, ``training/`` and ``evals/``."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("faderwise")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
