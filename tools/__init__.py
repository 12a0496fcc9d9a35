"""Audio in, numbers out: loading, validation, measurement, summing, bundles, rendering, plots.

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
