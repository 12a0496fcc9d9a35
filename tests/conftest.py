"""Shared fixtures: signals built in code, stem folders, the demo song, the real MUSDB18 excerpts."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from faderwise.tools.demo_song import write_demo
from faderwise.tools.outputs import command_inputs

REPO = Path(__file__).resolve().parents[1]
MUSDB_SAMPLE = REPO.parent / "shared" / "data" / "musdb18-sample" / "Music Delta - 80s Rock.stem.mp4"


def sine(
    *, frequency: float, peak_dbfs: float, seconds: float, rate: int, channels: int = 2, phase: float = 0.0
) -> np.ndarray:
    """A sine of the given peak level on every channel, float32 ``(channels, samples)``."""
    t = np.arange(int(round(seconds * rate))) / rate
    wave = 10 ** (peak_dbfs / 20) * np.sin(2 * np.pi * frequency * t + phase)
    return np.tile(wave, (channels, 1)).astype(np.float32)


def write_stems(folder: Path, stems: Mapping[str, np.ndarray], rate: int, *, suffix: str = ".wav",
                subtype: str | None = "FLOAT") -> Path:
    """Write ``name → (channels, samples)`` as ``folder/name<suffix>``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, audio in stems.items():
        sf.write(folder / f"{name}{suffix}", audio.T, rate, subtype=subtype)
    return folder


def noise_stems(seed: int = 0, *, seconds: float = 4.0, rate: int = 44_100) -> dict[str, np.ndarray]:
    """Three stereo stems of noise at different levels; their mix peaks well under full scale."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    return {
        "vocals": (0.05 * rng.standard_normal((2, n))).astype(np.float32),
        "drums": (0.08 * rng.standard_normal((2, n))).astype(np.float32),
        "bass": (0.03 * rng.standard_normal((2, n))).astype(np.float32),
    }


@pytest.fixture(autouse=True)
def fresh_inputs() -> Iterator[None]:
    """Each test is one command: what earlier tests read is not its input."""
    with command_inputs():
        yield


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo song written once per test session (read-only for tests)."""
    return write_demo(tmp_path_factory.mktemp("demo") / "demo")


@pytest.fixture(scope="session")
def musdb_sample() -> Path:
    if not MUSDB_SAMPLE.is_file():
        pytest.fail(f"{MUSDB_SAMPLE} is missing: the shared MUSDB18 excerpt should sit beside the repo")
    return MUSDB_SAMPLE


@pytest.fixture(scope="session")
def stempeg_sample() -> Path:
    path = Path(str(resources.files("stempeg") / "data" / "The Easton Ellises - Falcon 69.stem.mp4"))
    assert path.is_file(), "the stempeg wheel ships this MUSDB18 excerpt; install the [dev] extra"
    return path
