"""faderwise: a terminal mixing assistant. This folder holds the command line (``faderwise.cli``);
the work is done in ``faderwise.tools``, ``faderwise.advisor``, ``faderwise.agent``,
``faderwise.training`` and ``faderwise.evals`` (the top-level folders ``tools/``, ``advisor/``…
of the source tree, mapped into this namespace by the install). Nothing below those imports the
command line."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("faderwise")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
