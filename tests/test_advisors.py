"""The advisors on the demo song and on perturbed real material: numbers, words, evidence."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from faderwise.advisor import EqualLoudnessAdvisor, MeasuredAdvisor, SingleMixAdvisor
from faderwise.advisor.balance import moves_toward
from faderwise.advisor.baselines import Prior
from faderwise.advisor.measured import master_offset
from faderwise.advisor.parse import parse_moves
from faderwise.evals.advisor_accuracy import DEGRADATIONS, evaluate, make_case, summaries
from faderwise.tools.bundle import make_bundle
from faderwise.tools.errors import StemSetError
from faderwise.tools.stem_files import load_stem_set
from faderwise.tools.stems import StemSet

# Advice stays inside gain: no EQ, compression or effects, even when masking is the evidence.
OUTSIDE_GAIN = re.compile(r"\b(?:eq|equali[sz]\w*|compress\w*|limit\w*|reverb|delay|saturat\w*|sidechain|"
                          r"pan(?:ning)?|filter\w*|shelf|notch|de-?ess\w*)\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def demo(demo_dir: Path) -> tuple[StemSet, StemSet]:
    return load_stem_set(demo_dir / "version_a"), load_stem_set(demo_dir / "version_b")


@pytest.fixture(scope="module")
def demo_advice(demo: tuple[StemSet, StemSet]):
    return MeasuredAdvisor().advise(*demo)


def test_measured_finds_the_demo_perturbation(demo_advice) -> None:
    found = {move.stem: move for move in demo_advice.moves}
    assert set(found) == {"vocals", "drums"}
    assert found["vocals"].delta_db == pytest.approx(-4.0, abs=0.05)
    assert found["drums"].delta_db == pytest.approx(3.0, abs=0.05)
    assert found["vocals"].low_db <= -4.0 <= found["vocals"].high_db
    assert demo_advice.global_offset_db == 0.0
    assert demo_advice.evidence["mode"] == "same-material"
    assert demo_advice.evidence["alignment"]["lag_ms"] == 0.0


def test_measured_text_names_stems_direction_magnitude_and_numbers(demo_advice) -> None:
    text = demo_advice.text
    assert text.startswith("Lower the vocals by about 4 dB: in your mix this stem is 4.0 dB louder than in the "
                           "reference (-15.0 against -19.0 LUFS).")
    assert "Raise the drums by about 3 dB: in your mix this stem is 3.0 dB quieter than in the reference" in text
    assert "Leave the bass, the guitar and the keys as they are: each is within 0.5 dB of the reference." in text
    assert "Confidence: high" in text
    assert re.search(r"most buried around \d:\d\d–\d:\d\d", text)  # when the drums disappear
    assert OUTSIDE_GAIN.search(text) is None
    # The text commits to exactly the moves it carries, rounded to 0.5 dB, and to leaving the rest.
    parsed = {move.stem: move.delta_db for move in parse_moves(text, ["bass", "drums", "guitar", "keys", "vocals"])}
    assert parsed == {"vocals": -4.0, "drums": 3.0, "bass": 0.0, "guitar": 0.0, "keys": 0.0}


def test_measured_evidence_for_a_stem(demo_advice) -> None:
    vocals = demo_advice.evidence["stems"]["vocals"]
    assert vocals["level_a_lufs"] == -15.0 and vocals["level_b_lufs"] == -19.0
    assert vocals["stem_to_backing_a_lu"] == pytest.approx(4.7, abs=0.1)
    assert vocals["stem_to_backing_b_lu"] == pytest.approx(-0.4, abs=0.1)
    assert vocals["confidence"] == "high" and vocals["status"] == "measured"
    assert vocals["most_exposed_s"][1] - vocals["most_exposed_s"][0] == pytest.approx(3.0)
    drums = demo_advice.evidence["stems"]["drums"]
    assert drums["masking"][0]["bands"] == "80–200 Hz"  # the kick's body under bass and keys
    assert drums["masking"][0]["backing_over_stem_a_db"] > drums["masking"][0]["backing_over_stem_b_db"]


def test_only_the_asked_stem(demo: tuple[StemSet, StemSet]) -> None:
    advice = MeasuredAdvisor().advise(*demo, stems=["vox"])
    assert [move.stem for move in advice.moves] == ["vocals"]
    assert list(advice.evidence["stems"]) == ["vocals"]
    assert "drums" not in advice.text
    with pytest.raises(StemSetError) as raised:
        MeasuredAdvisor().advise(*demo, stems=["cowbell"])
    assert str(raised.value).endswith("has no stem 'cowbell' (it has: bass, drums, guitar, keys, vocals)")


def test_master_offset_is_reported_apart(demo: tuple[StemSet, StemSet]) -> None:
    version_a, version_b = demo
    louder = version_a.with_gains({name: 2.0 for name in version_a.names})
    advice = MeasuredAdvisor().advise(louder, version_b)
    assert advice.global_offset_db == pytest.approx(-2.0, abs=0.05)
    assert {m.stem: round(m.delta_db, 1) for m in advice.moves} == {"vocals": -4.0, "drums": 3.0}
    assert ("Overall your mix is 2.0 dB louder than the reference; that is master level, not balance: turn the "
            "master down by about 2 dB if you want to match it.") in advice.text


@pytest.mark.parametrize(("differences", "master"), [
    ({"a": 0.0, "b": 0.0, "c": 4.0, "d": -3.0}, 0.0),  # two agree, two moved: no majority, no master
    ({"a": 2.0, "b": 2.1, "c": 2.2, "d": 6.0}, 2.1),  # three agree on +2.1
    ({"a": 8.3, "b": -5.2, "c": -4.7, "d": 0.0}, 0.0),  # two moved stems happen to land close together
    ({"a": 1.0}, 0.0),
])
def test_master_offset_needs_a_majority(differences: dict[str, float], master: float) -> None:
    assert master_offset(differences) == pytest.approx(master)


def test_silent_stems_are_named_not_moved(demo: tuple[StemSet, StemSet]) -> None:
    version_a, version_b = demo
    muted_a = StemSet(stems={**version_a.stems, "guitar": np.zeros_like(version_a.stems["guitar"])}, rate=version_a.rate)
    advice = MeasuredAdvisor().advise(muted_a, version_b)
    assert advice.move_for("guitar") is None
    assert advice.evidence["stems"]["guitar"]["status"] == "silent-a"
    assert ("The guitar plays in the reference but is silent in your mix: check that its track is unmuted and its "
            "fader up.") in advice.text
    assert {m.stem for m in advice.moves} == {"vocals", "drums"}


def test_other_material_compares_balance_and_says_so(demo: tuple[StemSet, StemSet], musdb_sample: Path) -> None:
    version_a, _ = demo
    other_song = load_stem_set(musdb_sample)
    advice = MeasuredAdvisor().advise(version_a, other_song)
    assert advice.evidence["mode"] == "different-material"
    assert advice.evidence["pairs"] == {"bass": "bass", "drums": "drums", "vocals": "vocals"}
    assert advice.text.startswith("The reference is another song, so this compares balance only")
    assert "The reference has no stem to compare the guitar with, so it is not judged." in advice.text
    # After the moves, the paired stems sit against each other as the reference's do.
    analysis_b = {"vocals": -3.1, "drums": -8.4, "bass": -8.9}  # 80s Rock, stem-to-mix LU
    level_a = {name: advice.evidence["stems"][name]["level_a_lufs"] for name in analysis_b}
    after = {name: level_a[name] + (advice.move_for(name).delta_db if advice.move_for(name) else 0.0)
             for name in analysis_b}
    assert after["vocals"] - after["drums"] == pytest.approx(analysis_b["vocals"] - analysis_b["drums"], abs=0.15)
    assert after["vocals"] - after["bass"] == pytest.approx(analysis_b["vocals"] - analysis_b["bass"], abs=0.15)
    assert all(move.high_db - move.low_db >= 3.0 for move in advice.moves)  # a loose comparison
    assert OUTSIDE_GAIN.search(advice.text) is None


def test_bundle_advice_from_the_four_clips(demo: tuple[StemSet, StemSet]) -> None:
    bundle = make_bundle(*demo, "vocals", max_s=10.0)
    advice = MeasuredAdvisor().advise_bundle(bundle)
    assert [m.stem for m in advice.moves] == ["vocals"]
    assert advice.moves[0].delta_db == pytest.approx(-4.0, abs=0.05)
    # The vocal's backing holds the drums, 3 dB down in A, and three unchanged stems.
    assert -3.0 <= advice.evidence["target"]["backing_a_minus_b_db"] <= -0.5
    assert "The rest of the mix also differs: the backing is" in advice.text
    assert "quieter in your mix than in the reference." in advice.text


def test_accuracy_on_real_material_with_every_degradation(musdb_sample: Path) -> None:
    balanced = load_stem_set(musdb_sample)
    rng = np.random.default_rng(11)
    cases = [make_case("80s rock", balanced, degradation, rng) for degradation in DEGRADATIONS]
    table = summaries(evaluate(cases))
    for degradation in DEGRADATIONS:
        measured = table[("measured", degradation)]
        assert measured.mae_db <= (0.2 if degradation == "clean" else 0.5), degradation
        assert measured.direction_accuracy == 1.0, degradation
        # Hearing the reference is what makes the difference: the baselines are dB off.
        assert table[("single-mix", degradation)].mae_db > 1.0
        assert table[("equal-loudness", degradation)].mae_db > 1.0


def test_moves_toward_keeps_the_mix_level() -> None:
    levels = {"vocals": -15.0, "drums": -24.5, "bass": -24.0, "silent": -math.inf}
    moves = moves_toward(levels, {"vocals": 0.0, "drums": 0.0, "bass": 0.0})
    after = [levels[n] + moves[n] for n in ("vocals", "drums", "bass")]
    assert after == pytest.approx([after[0]] * 3)

    def power_sum(values: list[float]) -> float:
        return 10 * math.log10(sum(10 ** (v / 10) for v in values))

    assert power_sum(after) == pytest.approx(power_sum([-15.0, -24.5, -24.0]))
    assert "silent" not in moves


def test_single_mix_and_equal_loudness_baselines(demo: tuple[StemSet, StemSet]) -> None:
    version_a, _ = demo
    single = SingleMixAdvisor().advise(version_a)
    assert single.text.startswith("No reference was used, so each stem is compared with where its kind of stem sits")
    # A vocal 4 dB hot and drums 3 dB low are still where real mixes put them: the single-mix advisor
    # leaves them (its moves are for stems far outside that range; tests/test_single_mix_no_harm.py).
    assert single.moves == ()
    vocals, bass = single.evidence["stems"]["vocals"], single.evidence["stems"]["bass"]
    assert vocals["range_songs"] == 144 and vocals["range_source"] == "MUSDB18"
    assert vocals["status"] == "leave" and abs(vocals["move_db"]) < 0.5  # the hot vocal sits at the range's top
    assert ("Leave the vocals as they are: against the rest of the mix they sit at +4.7 LU, within 0.5 LU of"
            in single.text)
    low, high = bass["judged_range_lu"]
    assert bass["status"] == "leave" and low < bass["stem_to_rest_lu"] < high
    assert single.evidence["stems"]["guitar"]["status"] == "no-range"  # no real mix measured has a guitar stem
    equal = EqualLoudnessAdvisor().advise(version_a)
    after = {m.stem: version_a_level + m.delta_db for m in equal.moves
             for version_a_level in [equal.evidence["stems"][m.stem]["level_a_lufs"]]}
    assert max(after.values()) - min(after.values()) < 0.2
    assert OUTSIDE_GAIN.search(single.text) is None and OUTSIDE_GAIN.search(equal.text) is None


def test_prior_has_provenance() -> None:
    prior = Prior.bundled()
    assert set(prior.levels) == {"vocals", "drums", "bass", "other"}
    assert all(len(by_song) == 144 for by_song in prior.levels.values())
    assert set(prior.unmeasured) == {"guitar", "keys"}
    assert "MUSDB18" in prior.provenance and "02a669958fda94ed0915cbda1a31f97b57cb2e50" in prior.provenance


def test_a_baseline_sentence_adds_up_to_its_move(demo_dir: Path) -> None:
    """Equal loudness moves every stem at once, the mix kept as loud: each sentence says where
    its stem sits and where the move lands it, and the two differ by the move it states."""
    import re

    from faderwise.advisor import EqualLoudnessAdvisor
    from faderwise.tools.stem_files import load_stem_set

    version_a = load_stem_set(demo_dir / "version_a")
    for advisor in (EqualLoudnessAdvisor(),):  # the single-mix advisor's words: tests/test_single_mix_no_harm.py
        advice = advisor.advise(version_a)
        said = re.findall(r"(Raise|Lower) the (\w+) by about ([\d.]+) dB: this stem sits at ([-+][\d.]+) LU against "
                          r"the mix, [^;]*; moved with the others toward that balance, the mix as loud as before, it "
                          r"lands near ([-+][\d.]+) LU\.", advice.text)
        assert len(said) == len(advice.moves) > 0, advice.text
        for verb, stem, amount, now, lands in said:
            move = advice.move_for(stem)
            assert move is not None and (move.delta_db > 0) == (verb == "Raise")
            assert float(lands) - float(now) == pytest.approx(move.delta_db, abs=0.051)
            assert float(amount) == pytest.approx(abs(move.delta_db), abs=0.51)  # "about": to 0.5 dB
