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
        pytest.skip(f"{MUSDB_SAMPLE} is missing: this MUSDB18 excerpt sits beside the repository in CI, not in a "
                    "fresh clone")
    return MUSDB_SAMPLE


@pytest.fixture(scope="session")
def stempeg_sample() -> Path:
    pytest.importorskip("stempeg", reason="the stempeg wheel ships a MUSDB18 excerpt; it is part of the [dev] extra")
    path = Path(str(resources.files("stempeg") / "data" / "The Easton Ellises - Falcon 69.stem.mp4"))
    assert path.is_file(), "the stempeg wheel ships this MUSDB18 excerpt; install the [dev] extra"
    return path


# -- what runs: slow tests on request, and no silent skips in CI --------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run the tests marked slow (minutes each)")
    parser.addoption("--no-skips", action="store_true",
                     help="fail the run when any test is skipped (CI: every test must run, extras and data present)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    slow = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(slow)


_SKIPPED: list[pytest.TestReport | pytest.CollectReport] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _SKIPPED.append(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped:  # a whole module skipped (importorskip at its top)
        _SKIPPED.append(report)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if session.config.getoption("--no-skips") and _SKIPPED and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    if config.getoption("--no-skips") and _SKIPPED:
        terminalreporter.section("skipped under --no-skips", red=True)
        for report in _SKIPPED:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            terminalreporter.line(f"{report.nodeid}: {reason}", red=True)
        terminalreporter.line(f"{len(_SKIPPED)} test(s) skipped, and --no-skips says every test must run", red=True)


@pytest.fixture
def demo_session(demo_dir: Path, tmp_path: Path) -> object:
    """A chat session with the offline planner on the demo song: Version A, and B as the reference."""
    from langgraph.checkpoint.memory import InMemorySaver

    from faderwise.agent.llm import LLMSpec
    from faderwise.agent.session import AgentSession
    from faderwise.agent.workspace import Workspace

    workspace = Workspace(output_dir=tmp_path / "out")
    workspace.load_stems(demo_dir / "version_a")
    workspace.set_reference(demo_dir / "version_b")
    return AgentSession(workspace=workspace, llm=LLMSpec("offline"), checkpointer=InMemorySaver(), thread_id="demo")
