"""Loading stem sets from folders and MUSDB18 layouts; summing, backings, gains."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import noise_stems, sine, write_stems
from faderwise.tools.audio_io import ffmpeg_executable
from faderwise.tools.errors import MissingDependencyError, StemSetError
from faderwise.tools.family import sum_signals
from faderwise.tools.stem_files import load_stem_set, open_stem_set
from faderwise.tools.stems import StemSet, find_stem_files

RATE = 44_100


@pytest.mark.parametrize(("suffix", "subtype"), [
    (".wav", "PCM_24"), (".flac", "PCM_16"), (".aiff", "PCM_16"), (".ogg", "VORBIS"), (".mp3", "MPEG_LAYER_III"),
])
def test_reads_every_supported_format(tmp_path: Path, suffix: str, subtype: str) -> None:
    tone = sine(frequency=440, peak_dbfs=-6.0, seconds=1.0, rate=RATE)
    write_stems(tmp_path, {"lead": tone, "pad": tone * 0.5}, RATE, suffix=suffix, subtype=subtype)
    stem_set = load_stem_set(tmp_path)
    assert stem_set.names == ["lead", "pad"]
    assert stem_set.rate == RATE and stem_set.channels == 2
    # Lossy codecs add delay and padding; the level survives.
    lead = stem_set.stems["lead"]
    assert 20 * np.log10(np.max(np.abs(lead))) == pytest.approx(-6.0, abs=0.5)


def test_stems_at_other_rates_are_resampled_to_the_most_common(tmp_path: Path) -> None:
    write_stems(tmp_path, {"a": sine(frequency=440, peak_dbfs=-6, seconds=1, rate=48_000),
                           "b": sine(frequency=440, peak_dbfs=-6, seconds=1, rate=48_000)}, 48_000)
    write_stems(tmp_path, {"c": sine(frequency=440, peak_dbfs=-6, seconds=1, rate=RATE)}, RATE)
    stem_set = load_stem_set(tmp_path)
    assert stem_set.rate == 48_000
    assert stem_set.stems["c"].shape == (2, 48_000)
    assert stem_set.warnings == (f"{tmp_path / 'c.wav'}: resampled from 44100 Hz to 48000 Hz",)
    spectrum = np.abs(np.fft.rfft(stem_set.stems["c"][0]))  # one second: 1 Hz bins
    assert int(np.argmax(spectrum)) == 440


def test_explicit_rate_wins(tmp_path: Path) -> None:
    write_stems(tmp_path, noise_stems(seconds=1.0), RATE)
    assert load_stem_set(tmp_path, rate=22_050).stems["bass"].shape == (2, 22_050)


def test_mono_stem_plays_centred_in_a_stereo_set(tmp_path: Path) -> None:
    """A mono stem of a folder plays on both channels at the −3 dB equal-power pan law, so it
    measures as loud as alone (BS.1770 adds the channels' powers); ``pan_law_db`` changes it."""
    mono = sine(frequency=220, peak_dbfs=-10, seconds=1, rate=RATE, channels=1)
    stereo = sine(frequency=330, peak_dbfs=-10, seconds=1, rate=RATE, channels=2)
    write_stems(tmp_path, {"mono": mono, "stereo": stereo}, RATE)
    stem_set = load_stem_set(tmp_path)
    law = np.float32(10 ** (-3.0 / 20))
    np.testing.assert_allclose(stem_set.stems["mono"], np.repeat(mono, 2, axis=0) * law, rtol=1e-6)
    np.testing.assert_allclose(stem_set.mix(), np.repeat(mono, 2, axis=0) * law + stereo, atol=1e-6)
    from faderwise.tools.loudness import integrated_loudness

    # −3.0 dB a side is 0.0103 dB over half the power each (−3.0103 dB): the pair measures 0.0103 LU louder
    assert integrated_loudness(stem_set.stems["mono"], RATE) == pytest.approx(integrated_loudness(mono, RATE) + 0.0103,
                                                                              abs=0.001)
    flat = open_stem_set(tmp_path, pan_law_db=0.0).load()
    np.testing.assert_array_equal(flat.stems["mono"], np.repeat(mono, 2, axis=0))


def test_surround_and_stereo_stems_do_not_mix(tmp_path: Path) -> None:
    write_stems(tmp_path, {"six": np.zeros((6, RATE), np.float32), "two": np.zeros((2, RATE), np.float32)}, RATE)
    with pytest.raises(StemSetError) as raised:
        load_stem_set(tmp_path)
    assert str(raised.value) == (
        f"{tmp_path / 'two.wav'}: has 2 channels but other stems have 6; "
        "only mono stems can be mixed into a set with more channels"
    )


def test_short_stems_are_padded_and_a_long_gap_is_reported(tmp_path: Path) -> None:
    write_stems(tmp_path, {
        "long": sine(frequency=100, peak_dbfs=-6, seconds=4.0, rate=RATE),
        "slightly": sine(frequency=100, peak_dbfs=-6, seconds=3.5, rate=RATE),
        "short": sine(frequency=100, peak_dbfs=-6, seconds=1.5, rate=RATE),
    }, RATE)
    stem_set = load_stem_set(tmp_path)
    assert {audio.shape for audio in stem_set.stems.values()} == {(2, 4 * RATE)}
    assert np.all(stem_set.stems["short"][:, int(1.5 * RATE):] == 0)
    assert stem_set.warnings == (
        f"{tmp_path / 'short.wav'}: 2.50 s shorter than long.wav; padded with silence at the end",
    )


def test_musdb_hq_folder_keeps_the_mixture_apart(tmp_path: Path) -> None:
    stems = noise_stems(seconds=1.0)
    write_stems(tmp_path, {**stems, "mixture": sum_signals(stems.values())}, RATE)
    stem_set = load_stem_set(tmp_path)
    assert stem_set.names == ["bass", "drums", "vocals"]
    np.testing.assert_allclose(stem_set.mixture, stem_set.mix(), atol=1e-6)


def test_hidden_and_non_audio_files_are_ignored(tmp_path: Path) -> None:
    write_stems(tmp_path, noise_stems(seconds=1.0), RATE)
    (tmp_path / "notes.txt").write_text("session notes")
    (tmp_path / "._vocals.wav").write_bytes(b"AppleDouble junk")
    (tmp_path / "bounces").mkdir()
    assert sorted(find_stem_files(tmp_path)) == ["bass", "drums", "vocals"]


def test_unreadable_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Path) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "iterdir", refuse)
    with pytest.raises(StemSetError) as raised:
        load_stem_set(tmp_path)
    assert str(raised.value) == f"{tmp_path}: cannot read folder (Permission denied)"


def test_sum_is_exact_and_backing_is_the_other_stems() -> None:
    stems = noise_stems(seconds=1.0)
    stem_set = StemSet(stems=stems, rate=RATE)
    exact = sum(audio.astype(np.float64) for audio in stems.values())
    assert np.max(np.abs(stem_set.mix() - exact)) < 1e-6  # float32 rounding only
    np.testing.assert_array_equal(stem_set.backing("vocals"), stems["drums"] + stems["bass"])
    np.testing.assert_array_equal(StemSet(stems={"solo": stems["bass"]}, rate=RATE).backing("solo"), 0)


def test_with_gains_scales_only_the_named_stems_and_resolves_case() -> None:
    stems = noise_stems(seconds=1.0)
    adjusted = StemSet(stems=stems, rate=RATE).with_gains({"Vocals": 6.0})
    np.testing.assert_allclose(adjusted.stems["vocals"], stems["vocals"] * 10 ** (6 / 20), rtol=1e-6)
    assert adjusted.stems["drums"] is stems["drums"]


def test_unknown_stem_names_the_choices() -> None:
    with pytest.raises(StemSetError) as raised:
        StemSet(stems=noise_stems(seconds=1.0), rate=RATE).with_gains({"guitar": 1.0})
    assert str(raised.value) == "stem set: has no stem 'guitar' (it has: vocals, drums, bass)"


def test_input_files_are_not_modified(tmp_path: Path) -> None:
    write_stems(tmp_path, noise_stems(seconds=1.0), RATE)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    load_stem_set(tmp_path).with_gains({"vocals": -3.0}).mix()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_stem_mp4_with_wrong_stream_count(tmp_path: Path) -> None:
    source = write_stems(tmp_path / "src", {"x": sine(frequency=440, peak_dbfs=-6, seconds=1, rate=RATE)}, RATE)
    target = tmp_path / "two.stem.mp4"
    subprocess.run([ffmpeg_executable(), "-v", "error", "-i", str(source / "x.wav"), "-i", str(source / "x.wav"),
                    "-map", "0:a", "-map", "1:a", "-c:a", "aac", str(target)], check=True)
    with pytest.raises(StemSetError) as raised:
        load_stem_set(target)
    assert str(raised.value) == (
        f"{target}: a .stem.mp4 holds 5 audio streams (mixture, drums, bass, other, vocals), this one has 2"
    )


def test_stem_mp4_without_ffmpeg_on_path_uses_the_wheel_binary(
    musdb_sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert "imageio_ffmpeg" in ffmpeg_executable()
    assert load_stem_set(musdb_sample).names == ["drums", "bass", "other", "vocals"]


def test_stem_mp4_without_any_ffmpeg(musdb_sample: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import fails
    with pytest.raises(MissingDependencyError) as raised:
        load_stem_set(musdb_sample)
    assert str(raised.value) == ("reading .stem.mp4 files needs ffmpeg: install it (e.g. apt-get install ffmpeg) "
                                 "or pip install imageio-ffmpeg")


def test_a_file_that_is_not_a_stem_set(tmp_path: Path) -> None:
    path = tmp_path / "mix.wav"
    sf.write(path, np.zeros((RATE, 2)), RATE)
    with pytest.raises(StemSetError) as raised:
        load_stem_set(path)
    assert str(raised.value) == (f"{path}: a stem set is a folder of audio files, a .stem.mp4 file or a REAPER (.RPP) "
                                 "or Ardour (.ardour) project with its bounced stems beside it")
