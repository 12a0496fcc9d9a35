"""Gains, rendering, clipping reports, the peak-safe trim, atomic output folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import faderwise.tools.render
from conftest import noise_stems, write_stems
from faderwise.tools.errors import InputOverlapError, OutputError, OutputExistsError
from faderwise.tools.levels import true_peak_dbtp
from faderwise.tools.outputs import command_inputs
from faderwise.tools.render import render_mix, write_render
from faderwise.tools.stem_files import load_stem_set
from faderwise.tools.stems import StemSet

RATE = 44_100


def loud_set() -> StemSet:
    rng = np.random.default_rng(5)
    return StemSet(stems={"a": (0.6 * rng.standard_normal((2, RATE))).astype(np.float32),
                          "b": (0.6 * rng.standard_normal((2, RATE))).astype(np.float32)}, rate=RATE)


def test_gains_are_applied_per_stem() -> None:
    stems = noise_stems(seconds=1.0)
    rendered = render_mix(StemSet(stems=stems, rate=RATE), gains_db={"vocals": -6.0, "bass": 3.0})
    expected = stems["vocals"] * 10 ** (-6 / 20) + stems["drums"] + stems["bass"] * 10 ** (3 / 20)
    np.testing.assert_allclose(rendered.read(0, RATE)[1], expected, atol=1e-6)
    assert rendered.gains_db == {"vocals": -6.0, "drums": 0.0, "bass": 3.0}
    assert rendered.trim_db == 0.0 and rendered.clipped_samples == 0 and rendered.warnings == ()


def test_clipping_is_reported_not_hidden() -> None:
    rendered = render_mix(loud_set())
    mix = rendered.read(0, RATE)[1]
    over = int(np.count_nonzero(np.abs(mix) > 1.0))
    assert over > 0 and rendered.clipped_samples == over
    assert rendered.trim_db == 0.0
    assert np.max(np.abs(mix)) > 1.0  # float: nothing clipped inside faderwise
    assert rendered.true_peak_dbtp == pytest.approx(true_peak_dbtp(mix, RATE), abs=1e-9)
    assert rendered.warnings == (
        f"the mix peaks at {rendered.sample_peak_dbfs:+.2f} dBFS: {over} samples above full scale would clip "
        "in a fixed-point export (the float WAV keeps them); apply --peak-safe trims every stem by the same "
        f"{rendered.true_peak_dbtp + 1.0:.2f} dB to peak at -1 dBTP and keeps the balance",
    )


def test_peak_safe_trim_lands_on_the_ceiling_and_keeps_the_balance() -> None:
    stem_set = loud_set()
    plain = render_mix(stem_set)
    trimmed = render_mix(stem_set, peak_safe=True, ceiling_dbtp=-1.0)
    assert trimmed.trim_db == pytest.approx(-1.0 - plain.true_peak_dbtp, abs=1e-6)
    assert trimmed.gains_db == {"a": 0.0, "b": 0.0}  # what was asked; the trim is said apart (render.json too)
    stems, mix = trimmed.read(0, RATE)
    assert true_peak_dbtp(mix, RATE) == pytest.approx(-1.0, abs=0.01)
    assert trimmed.clipped_samples == 0 and np.count_nonzero(np.abs(mix) > 1.0) == 0
    assert trimmed.warnings[0] == (
        f"peak-safe trim: every stem lowered by {-trimmed.trim_db:.2f} dB so the mix peaks at -1.0 dBTP"
    )
    ratio = stems[0] / stem_set.stems["a"]
    assert np.allclose(ratio[np.isfinite(ratio)], 10 ** (trimmed.trim_db / 20), rtol=1e-5)


def test_write_render_creates_a_new_folder_and_refuses_to_overwrite(tmp_path: Path) -> None:
    source = write_stems(tmp_path / "in", noise_stems(seconds=1.0), RATE)
    before = {p.name: p.read_bytes() for p in source.iterdir()}
    rendered = render_mix(load_stem_set(source), gains_db={"drums": -2.0})
    out = write_render(rendered, tmp_path / "out")
    assert sorted(p.name for p in out.iterdir()) == [".faderwise-output.json", "mix.wav", "render.json", "stems"]
    assert json.loads((out / "render.json").read_text())["gains_db"] == {"bass": 0.0, "drums": -2.0, "vocals": 0.0}
    with command_inputs():  # another command reads the render back
        rendered_drums = rendered.read(0, RATE)[0][rendered.source.names.index("drums")]
        assert load_stem_set(out / "stems").stems["drums"] == pytest.approx(rendered_drums, abs=1e-7)
    with pytest.raises(OutputExistsError) as raised:
        write_render(rendered, tmp_path / "out")
    assert str(raised.value) == f"{tmp_path / 'out'}: already exists; choose a new folder or pass --force to replace it"
    write_render(rendered, tmp_path / "out", force=True)
    assert {p.name: p.read_bytes() for p in source.iterdir()} == before


def test_never_writes_into_the_input_folder(tmp_path: Path) -> None:
    source = write_stems(tmp_path / "in", noise_stems(seconds=1.0), RATE)
    rendered = render_mix(load_stem_set(source))
    refusals = {source: f"{source}: is an input of this command", tmp_path: f"{tmp_path}: holds the input {source}",
                source / "out": f"{source / 'out'}: lies inside the input {source}"}
    for target, problem in refusals.items():
        with pytest.raises(InputOverlapError) as raised:
            write_render(rendered, target, force=True)
        assert str(raised.value) == f"{problem}; faderwise never writes over its input: choose another place"
    assert sorted(p.name for p in source.iterdir()) == ["bass.wav", "drums.wav", "vocals.wav"]


def test_a_disk_that_fills_mid_render_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The third block write fails as libsndfile fails on a full disk (it writes fewer frames)."""
    monkeypatch.setattr(faderwise.tools.render, "RENDER_BLOCK_S", 0.25)
    rendered = render_mix(StemSet(stems=noise_stems(seconds=1.0), rate=RATE))
    calls = []

    def fail_on_third(self, data):
        calls.append(len(data))
        if len(calls) == 3:
            raise AssertionError("libsndfile wrote fewer frames than it was given")
        return original(self, data)

    original = sf.SoundFile.write
    monkeypatch.setattr(sf.SoundFile, "write", fail_on_third)
    monkeypatch.setattr(faderwise.tools.render.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1, 1, 0))
    with pytest.raises(OutputError) as raised:
        write_render(rendered, tmp_path / "out")
    assert str(raised.value) == f"{tmp_path / 'out'}: cannot write it: No space left on device"
    assert list(tmp_path.iterdir()) == []
