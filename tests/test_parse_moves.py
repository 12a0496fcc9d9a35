"""parse_moves: what a text commits to, and nothing more. The evaluation scores model output with it."""

from __future__ import annotations

import pytest

from faderwise.advisor.model import GainMove
from faderwise.advisor.parse import parse_moves
from faderwise.advisor.stem_names import resolve_stem, stem_class

STEMS = ["vocals", "drums", "bass", "guitars", "keys"]


def moves(text: str, stems: list[str] = STEMS) -> list[tuple[str, float, float, float]]:
    return [(m.stem, m.delta_db, m.low_db, m.high_db) for m in parse_moves(text, stems)]


@pytest.mark.parametrize(("text", "expected"), [
    ("raise the vocal by 4 dB", [("vocals", 4.0, 4.0, 4.0)]),
    ("vocals are 4dB too loud", [("vocals", -4.0, -4.0, -4.0)]),
    ("bring the drums down 3 dB", [("drums", -3.0, -3.0, -3.0)]),
    ("lower bass ~2.5 dB", [("bass", -2.5, -2.5, -2.5)]),
    ("cut the guitars by 3–4 dB", [("guitars", -3.5, -4.0, -3.0)]),
    ("cut the guitars by 3 to 4 dB", [("guitars", -3.5, -4.0, -3.0)]),
    ("+2 dB on keys", [("keys", 2.0, 2.0, 2.0)]),
    ("the kick is fine", [("drums", 0.0, 0.0, 0.0)]),
    ("vox -3dB", [("vocals", -3.0, -3.0, -3.0)]),
    ("I'd push the vox up 1,5 dB", [("vocals", 1.5, 1.5, 1.5)]),
    ("drums need 3 dB more", [("drums", 3.0, 3.0, 3.0)]),
    ("Turn the bass up 2 dB, the keys down 1.5 dB.", [("bass", 2.0, 2.0, 2.0), ("keys", -1.5, -1.5, -1.5)]),
    ("Raise the vocals by 2 dB and lower the drums by 3 dB.", [("vocals", 2.0, 2.0, 2.0), ("drums", -3.0, -3.0, -3.0)]),
    ("raise the vocals and guitars by 2 dB", [("vocals", 2.0, 2.0, 2.0), ("guitars", 2.0, 2.0, 2.0)]),
    ("don't touch the drums", [("drums", 0.0, 0.0, 0.0)]),
    ("Leave the bass, the keys and the guitars as they are: each is within 0.5 dB of the reference.",
     [("bass", 0.0, 0.0, 0.0), ("guitars", 0.0, 0.0, 0.0), ("keys", 0.0, 0.0, 0.0)]),
    # The template the training data uses: a description and an instruction that agree.
    ("The vocal stem in Version A is 4 dB louder than in the balanced Version B. To match the reference, "
     "decrease the vocal gain by about 4 dB.", [("vocals", -4.0, -4.0, -4.0)]),
    # A description and an instruction that differ a little: the instruction wins.
    ("the vocal sits 4.1 dB lower against the backing than in B; raise it about 4 dB; it is masked by the "
     "guitars at 2–4 kHz in the chorus", [("vocals", 4.0, 4.0, 4.0)]),
    ("Vocals: lower by about 4 dB (4.0 dB louder than in the reference).", [("vocals", -4.0, -4.0, -4.0)]),
    ("The drums are 3 dB quieter than in the reference.", [("drums", 3.0, 3.0, 3.0)]),
])
def test_reads(text: str, expected: list[tuple[str, float, float, float]]) -> None:
    assert moves(text) == expected


@pytest.mark.parametrize("text", [
    "turn up the vocals a bit",  # no number
    "the vocals need more presence",  # no number, no gain
    "cut the guitars by 3 dB at 2 kHz",  # EQ, not a fader
    "boost the bass 3 dB around 80 Hz",  # EQ
    "add a high shelf of 2 dB on the vocals",  # EQ
    "compress the drums by 4 dB",  # no gain verb
    "don't raise the vocals by 3 dB",  # negated
    "the bass is 2 dB louder than the kick",  # two stems compared with each other
    "raise the reverb by 2 dB",  # not a stem
    "raise the vocals by 40 dB",  # not a plausible fader move
    "the vocals are at -15 LUFS",  # a level, not a move
    "vocals: 4 dB",  # no direction
    "bring up the vocals by 2 dB but lower them by 5 dB",  # contradicts itself
    "the vocal is 2 dB up in A",  # a description whose direction is unclear
    "",
])
def test_rejects(text: str) -> None:
    assert moves(text) == []


def test_contradicting_instructions_in_separate_sentences_give_nothing() -> None:
    assert moves("Raise the bass by 2 dB. Actually, lower the bass by 3 dB.") == []


def test_ambiguous_class_words_name_nothing() -> None:
    stems = ["gtr left", "gtr right", "vocals"]
    assert moves("lower the guitar by 2 dB", stems) == []
    assert moves("lower the gtr left by 2 dB", stems) == [("gtr left", -2.0, -2.0, -2.0)]


def test_kick_names_a_kick_stem_when_there_is_one() -> None:
    assert moves("the kick is 2 dB too loud", ["kick", "snare", "vocals"]) == [("kick", -2.0, -2.0, -2.0)]


def test_returns_gain_moves_in_stem_order() -> None:
    parsed = parse_moves("Lower the keys by 1 dB. Raise the vocals by 2 dB.", STEMS)
    assert parsed == [GainMove("vocals", 2.0, 2.0, 2.0), GainMove("keys", -1.0, -1.0, -1.0)]


@pytest.mark.parametrize(("name", "expected"), [
    ("Lead Vox", "vocals"), ("gtr_L", "guitar"), ("Kick In", "drums"), ("808", "bass"), ("Rhodes", "keys"),
    ("FX riser", None),
])
def test_stem_class(name: str, expected: str | None) -> None:
    assert stem_class(name) == expected


def test_resolve_stem_strips_articles_and_uses_aliases() -> None:
    assert resolve_stem("the kick", ["vocals", "drums"]) == "drums"
    assert resolve_stem("vox", ["Lead Vox", "bass"]) == "Lead Vox"
    assert resolve_stem("synth", ["vocals", "drums"]) is None


def test_names_with_brackets_and_punctuation_are_read_as_written() -> None:
    """REAPER names its video track 'Video [chan 1]': a name that ends in a bracket is still a name."""
    moves = parse_moves("Lower the Video [chan 1] by about 3 dB: it is loud. Raise the Gtr [_x] by 2 dB.",
                        ["Video [chan 1]", "Gtr [_x]", "Keys"])
    assert [(move.stem, move.delta_db) for move in moves] == [("Video [chan 1]", -3.0), ("Gtr [_x]", 2.0)]
