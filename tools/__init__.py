"""Audio in, numbers out: loading, validation, measurement, summing, bundles, rendering, plots;
the guarded writer and the one way inputs are read; and, in :mod:`faderwise.tools.daw`, DAW
sessions (REAPER and Ardour projects, the track-to-stem mapping, export, OSC and the push).

Pure functions on ``(channels, samples)`` float32 arrays and stem sets. No LangChain, no Textual,
no torch.
"""

from faderwise.tools.errors import (
    AudioReadError,
    FaderwiseError,
    InvalidAudioError,
    MissingDependencyError,
    OutputExistsError,
    StemSetError,
)

__all__ = [
    "AudioReadError",
    "FaderwiseError",
    "InvalidAudioError",
    "MissingDependencyError",
    "OutputExistsError",
    "StemSetError",
]
