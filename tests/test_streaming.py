"""Streaming: sessions are measured, advised and rendered in blocks, on every core, with the numbers
the whole-file analysis gave (tests/data/whole_file_golden.npz, measured before streaming existed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from streaming_inputs import GOLDEN, measurement_arrays, write_inputs

import faderwise.tools.analysis
import faderwise.tools.render
import faderwise.tools.stem_files
from conftest import noise_stems, write_stems
from faderwise.advisor.measured import MeasuredAdvisor
from faderwise.agent.config import ConfigError, load_config
from faderwise.cli import main
from faderwise.tools.align import align_versions
from faderwise.tools.analysis import analyze_stem_set, block_length
from faderwise.tools.audio_io import resample
from faderwise.tools.levels import sample_peak_dbfs, true_peak_context, true_peak_dbtp
from faderwise.tools.render import mix_peaks
from faderwise.tools.stem_files import BlockReader, decoded_size, in_memory_if_small, open_stem_set
from faderwise.tools.stems import StemSet

RATE = 44_100
TOLERANCE_DB = 0.01  # the bar; the largest difference measured is 1.4e-4 dB


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_inputs(tmp_path_factory.mktemp("streaming"))


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of 3 FFT frames (0.56 s) and segments of 2 blocks: the 30 s songs cross 26 segment
    edges and 53 block edges, each cutting hops, frames and the filters' state somewhere new."""
    monkeypatch.setattr(faderwise.tools.analysis, "BLOCK_FRAMES", 3)
    monkeypatch.setattr(faderwise.tools.analysis, "SEGMENT_BLOCKS", 2)
    monkeypatch.setattr(faderwise.tools.analysis, "PARALLEL_MIN_STEM_S", 0.0)  # workers start for any set


def assert_matches_golden(name: str, arrays: dict[str, np.ndarray]) -> None:
    golden = np.load(GOLDEN)
    keys = [key for key in golden.files if key.startswith(f"{name}/")]
    assert sorted(arrays) == sorted(keys)
    for key in keys:
        expected, found = golden[key], arrays[key]
        assert found.shape == expected.shape, key
        if expected.dtype == bool:  # activity per 100 ms hop
            assert np.array_equal(found, expected), key
            continue
        finite = np.isfinite(expected)
        assert np.array_equal(np.isfinite(found), finite) and np.array_equal(np.isnan(found), np.isnan(expected)), key
        np.testing.assert_allclose(found[finite], expected[finite], rtol=0, atol=TOLERANCE_DB, err_msg=key)


@pytest.mark.parametrize("name", ["demo_a", "demo_b", "uneven", "late_b"])
@pytest.mark.parametrize("blocks", ["default", "small"])
def test_streaming_gives_the_whole_file_numbers(inputs: dict[str, Path], name: str, blocks: str,
                                                request: pytest.FixtureRequest) -> None:
    if blocks == "small":
        request.getfixturevalue("small_blocks")
    source = open_stem_set(inputs[name])
    analysis = analyze_stem_set(source)
    assert_matches_golden(name, measurement_arrays(name, analysis))
    if name == "uneven":  # a stem at 48 kHz, a mono one, one 3 s short: said, naming the files
        assert analysis.warnings == (
            f"{inputs[name] / 'drums.wav'}: resampled from 48000 Hz to 44100 Hz",
            f"{inputs[name] / 'vocals.wav'}: 3.00 s shorter than bass.wav; padded with silence at the end",
        )


@pytest.mark.parametrize("reference", ["demo_b", "late_b"])
def test_advice_from_blocks_is_the_whole_file_advice(inputs: dict[str, Path], reference: str, small_blocks: None) -> None:
    golden = np.load(GOLDEN)
    advisor = MeasuredAdvisor()
    version_a, version_b = open_stem_set(inputs["demo_a"]), open_stem_set(inputs[reference])
    moves = {move.stem: move.delta_db for move in advisor.advise(version_a, version_b).moves}
    expected = dict(zip(golden[f"advice_{reference}/stems"].tolist(), golden[f"advice_{reference}/delta_db"]))
    assert moves == pytest.approx(expected, abs=TOLERANCE_DB)
    assert advisor.prepare(version_a, version_b).alignment.lag == int(golden[f"lag_{reference}"])  # 0.3 s: 13230


def test_two_workers_give_exactly_what_one_gives(inputs: dict[str, Path], small_blocks: None,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    source = open_stem_set(inputs["uneven"])
    one = measurement_arrays("uneven", analyze_stem_set(source, workers=1))
    two = measurement_arrays("uneven", analyze_stem_set(source, workers=2))  # 27 segments over two processes
    monkeypatch.setattr(faderwise.tools.analysis, "PARALLEL_MIN_STEM_S", 1e9)
    threads = measurement_arrays("uneven", analyze_stem_set(source, workers=2))  # a short set: two threads
    assert sorted(one) == sorted(two) == sorted(threads)
    for key in one:
        assert np.array_equal(one[key], two[key], equal_nan=one[key].dtype != bool), key
        assert np.array_equal(one[key], threads[key], equal_nan=one[key].dtype != bool), key


def test_blocks_read_anywhere_equal_the_whole_load(inputs: dict[str, Path]) -> None:
    """Resampled, mono, short and moved (a lag, as for an aligned reference): any cut gives the
    samples a whole-file load gives."""
    source = open_stem_set(inputs["uneven"])
    whole = source.load()
    drums = resample(sf.read(inputs["uneven"] / "drums.wav", dtype="float32", always_2d=True)[0].T, 48_000, RATE)
    np.testing.assert_allclose(whole.stems["drums"][:, : drums.shape[1]], drums, atol=1e-6)
    assert np.array_equal(whole.stems["bass"][0], whole.stems["bass"][1])  # mono plays on both channels
    assert not whole.stems["vocals"][:, -3 * RATE :].any()  # padded
    moved = source.aligned(-1234, source.n_samples + 5000)
    expected = {name: np.pad(audio, ((0, 0), (1234, 5000 - 1234))) for name, audio in whole.stems.items()}
    rng = np.random.default_rng(3)
    cuts = np.sort(rng.choice(moved.n_samples, size=40, replace=False))
    with moved.reader() as reader:
        for start, stop in zip([-700, *cuts], [*cuts, moved.n_samples + 900]):
            for name, block in zip(moved.names, reader.read(int(start), int(stop))):
                lo, hi = max(int(start), 0), min(int(stop), moved.n_samples)
                np.testing.assert_allclose(block[:, lo - start : hi - start], expected[name][:, lo:hi], atol=1e-6,
                                           err_msg=f"{name} {start}:{stop}")
                assert not block[:, : lo - start].any() and not block[:, hi - start :].any()


def test_no_read_is_longer_than_a_block(inputs: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    """What bounds memory: analysis, alignment and rendering each read every stem a block at a time
    (once a set is too big to keep decoded: here, any set)."""
    monkeypatch.setattr(faderwise.tools.stem_files, "IN_MEMORY_LIMIT_BYTES", 0)
    spans: list[int] = []
    original = BlockReader.read
    monkeypatch.setattr(BlockReader, "read", lambda self, start, stop: spans.append(stop - start) or
                        original(self, start, stop))
    version_a, version_b = open_stem_set(inputs["demo_a"]), open_stem_set(inputs["late_b"])
    MeasuredAdvisor().advise(version_a, version_b)
    assert max(spans) <= block_length(RATE) + 2 * true_peak_context(RATE)  # 131072 + 24: 3 s
    assert len(spans) > 20
    spans.clear()
    advice = tmp_path / "advice.json"
    advice.write_text(json.dumps({"advisor": "measured", "moves": [{"stem": "vocals", "delta_db": -4.0}]}))
    assert main(["apply", str(inputs["demo_a"]), "--advice", str(advice), "--out", str(tmp_path / "out")]) == 0
    assert max(spans) <= int(faderwise.tools.render.RENDER_BLOCK_S * RATE) + 2 * true_peak_context(RATE)


def test_a_bad_stem_among_many_is_one_line_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      small_blocks: None) -> None:
    """Found by a worker process (two segments, two workers), said in the main one."""
    stems = {f"track{index:02d}": noise_stems(index, seconds=2.0)["vocals"] for index in range(24)}
    broken = stems["track17"].copy()
    broken[1, int(1.5 * RATE)] = np.nan
    folder = write_stems(tmp_path / "a", {**stems, "track17": broken}, RATE)
    plot = tmp_path / "levels.png"
    assert main(["analyze", str(folder), "--workers", "2", "--plot", str(plot)]) == 2
    out, err = capsys.readouterr()
    assert err == (f"faderwise: error: {folder / 'track17.wav'}: contains 1 NaN or infinite sample (first at 1.500 s, "
                   "channel 1)\n")
    assert out == "" and not plot.exists()
    (folder / "track05.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    assert main(["advise", str(folder), "--reference", str(folder)]) == 2
    assert capsys.readouterr().err.startswith(f"faderwise: error: {folder / 'track05.wav'}: not a readable audio file")


def test_a_full_disk_during_apply_is_one_line_and_leaves_nothing(demo_dir: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    advice = tmp_path / "advice.json"
    advice.write_text(json.dumps({"advisor": "measured", "moves": [{"stem": "vocals", "delta_db": -4.0}]}))
    writes: list[int] = []
    original = sf.SoundFile.write

    def full_after_a_while(self: sf.SoundFile, data: np.ndarray) -> None:
        writes.append(len(data))
        if len(writes) > 20:  # the fifth block of six files
            raise AssertionError("libsndfile wrote fewer frames than it was given")
        original(self, data)

    monkeypatch.setattr(sf.SoundFile, "write", full_after_a_while)
    monkeypatch.setattr(faderwise.tools.render.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 4096))
    out = tmp_path / "out"
    assert main(["apply", str(demo_dir / "version_a"), "--advice", str(advice), "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"faderwise: error: {out}: cannot write it: No space left on device\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["advice.json"]  # no partial folder, no staging left


def test_workers_option_and_setting(demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit) as usage:
        main(["analyze", str(demo_dir / "version_a"), "--workers", "0"])
    assert usage.value.code == 2
    assert "argument --workers: workers must be a whole number from 1 up or 'auto', got '0'" in capsys.readouterr().err
    config = tmp_path / "config.toml"
    config.write_text('workers = "many"\n')
    with pytest.raises(ConfigError) as bad:
        load_config({"FADERWISE_CONFIG": str(config)})
    assert str(bad.value) == f"{config}: workers must be a whole number from 1 up or 'auto', got 'many'"
    config.write_text("workers = 3\n")
    assert load_config({"FADERWISE_CONFIG": str(config)}).workers == 3
    assert load_config({"FADERWISE_CONFIG": str(config), "FADERWISE_WORKERS": "1"}).workers == 1
    monkeypatch.setenv("FADERWISE_CONFIG", str(config))
    seen: list[int] = []
    original = faderwise.tools.analysis.analyze_stem_set
    monkeypatch.setattr(faderwise.tools.analysis, "analyze_stem_set",
                        lambda *a, workers, **k: seen.append(workers) or original(*a, workers=workers, **k))
    assert main(["analyze", str(demo_dir / "version_a"), "--json"]) == 0
    assert main(["analyze", str(demo_dir / "version_a"), "--json", "--workers", "2"]) == 0
    assert seen == [3, 2]


def test_a_set_in_memory_reads_like_one_on_disk() -> None:
    stems = noise_stems(seconds=1.0)
    stem_set = StemSet(stems=stems, rate=RATE)
    vocals, drums = stem_set.read(-10, 50, names=["vocals", "DRUMS"])
    assert vocals.shape == (2, 60) and not vocals[:, :10].any()
    assert np.array_equal(vocals[:, 10:], stems["vocals"][:, :50]) and np.array_equal(drums[:, 10:], stems["drums"][:, :50])
    moved = stem_set.aligned(100, RATE)
    assert np.array_equal(moved.stems["bass"][:, : RATE - 100], stems["bass"][:, 100:])
    assert not moved.stems["bass"][:, RATE - 100 :].any()


def test_alignment_and_peaks_over_workers_are_the_whole_file_ones(inputs: dict[str, Path], small_blocks: None) -> None:
    """The other passes over a session (the reference's alignment, the adjusted mix's peaks) run a
    segment per task too: the same with one worker or two, and the same as on the whole mix."""
    version_a, late = open_stem_set(inputs["demo_a"]), open_stem_set(inputs["late_b"])
    one, two = align_versions(version_a, late, workers=1), align_versions(version_a, late, workers=2)
    assert one == two and one.lag == 13230 and one.correlation == pytest.approx(0.986, abs=0.001)
    gains = {"vocals": 9.0, "drums": -2.0}
    whole = version_a.load().with_gains(gains).mix()
    for workers in (1, 2):
        sample_peak, true_peak, clipped = mix_peaks(version_a, gains, workers=workers)
        assert sample_peak == pytest.approx(sample_peak_dbfs(whole), abs=1e-6)
        assert true_peak == pytest.approx(true_peak_dbtp(whole, RATE), abs=1e-4)
        assert clipped == int(np.count_nonzero(np.abs(whole) > 1.0)) > 10_000  # +9 dB of vocals clips it


def test_a_small_set_is_decoded_once_and_a_big_one_is_not(inputs: dict[str, Path],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    source = open_stem_set(inputs["demo_a"])  # 5 stems × 30 s stereo at 44.1 kHz: 52.9 MB decoded
    assert decoded_size(source) == 5 * 2 * 30 * RATE * 4
    kept = in_memory_if_small(source)
    assert isinstance(kept, StemSet) and kept.names == source.names and kept.sources == source.sources
    assert in_memory_if_small(source, limit=decoded_size(source) - 1) is source
