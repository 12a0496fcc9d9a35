"""Reading producers' requests: the held-out request set, the grammar's arguments, the examples' vote,
slash commands read directly, and the stem matcher the planner, the tools and the command line share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faderwise.advisor.stem_names import find_stem, mentioned_stems, mentions, missing_instruments
from faderwise.agent.semantic import ExampleMatcher, StaticEmbedder, load_examples
from faderwise.agent.understand import INTENTS, Request, amount, command_request, understand
from faderwise.evals.understanding import (
    SESSION_PENDING,
    SESSION_STEMS,
    argument_errors,
    default_reader,
    per_intent,
    read_labelled,
    score,
    summary,
)

ROOT = Path(__file__).resolve().parents[1]
HELD_OUT = ROOT / "bench" / "data" / "producer_requests_held_out.jsonl"
BANK = ROOT / "agent" / "request_examples.jsonl"


@pytest.fixture(scope="module")
def matcher() -> ExampleMatcher:
    return ExampleMatcher(load_examples(), StaticEmbedder())


def read(text: str, matcher: ExampleMatcher, **options: object) -> Request:
    return understand(text, SESSION_STEMS, matcher=matcher, pending=SESSION_PENDING, **options)  # type: ignore[arg-type]


def test_the_labelled_sets_are_well_formed_and_large_enough() -> None:
    held, bank = read_labelled(HELD_OUT), read_labelled(BANK)
    assert len(held) + len(bank) >= 300 and len(held) >= 150
    for item in [*held, *bank]:
        assert item.intent in INTENTS, item
        assert set(item.stems) | set(item.except_stems) <= set(SESSION_STEMS), item
        assert item.source == "written" or item.source.startswith(("https://", "http://")), item
    assert not {i.text.casefold() for i in held} & {i.text.casefold() for i in bank}  # held out means unseen
    assert {i.intent for i in held} == set(INTENTS)


def test_the_held_out_requests_are_read_right(matcher: ExampleMatcher) -> None:
    """The done-when of the issue: at least 90 % of the held-out requests (never tuned on) get the intended
    action with the right arguments, and no apply or forget differs from what was asked."""
    scored, _ = score(read_labelled(HELD_OUT), default_reader(matcher))
    overall = summary(scored)
    assert overall["full"] >= 0.90, [(s.label.text, s.errors) for s in scored if s.errors]
    assert overall["inverted"] == 0  # a missed apply is asked about or answered otherwise, never acted on wrongly
    table = per_intent(scored)
    assert set(table) == set(INTENTS) and all(row["n"] >= 3 for row in table.values())


def test_the_examples_add_to_the_cues_on_the_tuning_bank(matcher: ExampleMatcher) -> None:
    """Leave-one-out on the bank: each request read with the other examples voting; the cues alone miss more."""
    bank = read_labelled(BANK)

    class LeaveOut:
        index = 0

        def vote(self, text: str, stems: object) -> object:
            return matcher.vote(text, SESSION_STEMS, leave_out=self.index)
    leave_out = LeaveOut()
    right_with, right_without = 0, 0
    for index, item in enumerate(bank):
        leave_out.index = index
        right_with += not argument_errors(read(item.text, leave_out), item)  # type: ignore[arg-type]
        right_without += not argument_errors(understand(item.text, SESSION_STEMS, pending=SESSION_PENDING), item)
    assert right_with / len(bank) >= 0.97
    assert right_with > right_without


@pytest.mark.parametrize(("text", "expected"), [
    # the issue's own examples
    ("what's poking out?", Request("which", detail="loud")),
    ("what's buried?", Request("which", detail="quiet")),
    ("which stems can stay?", Request("can_stay")),
    ("is my mix hotter than the reference?", Request("overall")),
    ("order the stems by how far off they are", Request("ranking")),
    ("thanks", Request("thanks")),
    ("how loud is the whole mix?", Request("mix_level", detail="loudness")),
    ("how much headroom is left?", Request("mix_level", detail="headroom")),
    ("is anything clipping?", Request("mix_level", detail="clipping")),
    ("what if I bring the guitar up 2 dB?", Request("what_if", ("guitar",), db=2.0)),
    ("only take the vocals down 2 instead of 4", Request("own_move", ("vocals",), db=-2.0)),
    ("apply all of it except the drums", Request("apply", except_stems=("drums",))),
    ("the kick is too loud", Request("stem", ("drums",), parts=(("kick", "drums"),))),
    ("help me balance the guitar", Request("stem", ("guitar",))),
    ("is the bass too loud?", Request("stem", ("bass",))),
    ("use the alm-pretrained advisor", Request("advisor", detail="alm-pretrained")),
    # arguments the grammar reads
    ("top 3 moves", Request("ranking", n=3)),
    ("just apply the vocal move", Request("apply", ("vocals",))),
    ("skip the drums and apply the rest", Request("apply", except_stems=("drums",))),
    ("drop all moves except the vocal one", Request("forget", except_stems=("vocals",), detail="all")),
    # a stem a skip or keep word stands before is left out, never acted on
    ("never mind the drums, apply", Request("apply", except_stems=("drums",))),
    ("apply the vocals, skip the drums", Request("apply", ("vocals",), except_stems=("drums",))),
    ("forget the drums but keep the vocals", Request("forget", ("drums",))),
    ("keep the vocals, forget the rest", Request("forget", except_stems=("vocals",), detail="all")),
    ("forget the drums, keep the rest", Request("forget", ("drums",))),
    ("leave the vocals alone", Request("forget", ("vocals",))),
    ("keep the snare where it is", Request("forget", ("drums",), parts=(("snare", "drums"),))),
    ("make it a couple dB on the drums instead", Request("own_move", ("drums",), db=2.0)),  # keeps the +3's way
    ("vocals -3", Request("own_move", ("vocals",), db=-3.0)),
    ("push the vocals 2db", Request("own_move", ("vocals",), db=2.0)),  # "push" is mixing slang for raise
    ("make the guitar 1 db quieter", Request("own_move", ("guitar",), db=-1.0)),
    ("the vocals are 2 dB too loud", Request("stem", ("vocals",))),  # a description, not the producer's move
    ("set vocals to -18 LUFS", Request("measure", ("vocals",))),  # a level, not a fader move
    ("would knocking the snare down a dB help", Request("what_if", ("drums",), db=-1.0,
                                                        parts=(("snare", "drums"),))),
    ("drums and bass together", Request("group", ("drums", "bass"))),
    ("how's the rhythm section sitting?", Request("group", ("drums", "bass"))),
    ("everything but the vocals as one", Request("group", ("drums", "bass", "keys", "guitar"))),
    ("second opinion?", Request("judge")),
    ("what about the strings?", Request("stem", missing=("strings",))),
    ("turn it down", Request("clarify")),
    ("push to ardour port 3900", Request("push", detail="ardour", ports={"port": 3900})),
])
def test_requests_are_read_with_their_arguments(text: str, expected: Request, matcher: ExampleMatcher) -> None:
    got = read(text, matcher)
    assert (got.intent, got.stems, got.db, got.except_stems, got.n, got.detail, got.parts, got.missing,
            dict(got.ports)) == (expected.intent, expected.stems, expected.db, expected.except_stems, expected.n,
                                 expected.detail, expected.parts, expected.missing, dict(expected.ports))


def test_a_vague_request_is_asked_back_with_the_closest_things(matcher: ExampleMatcher) -> None:
    request = read("hmm whatever you reckon", matcher)
    assert request.intent in ("clarify", "unknown") and request.alternatives
    assert all(kind in INTENTS for kind in request.alternatives)


@pytest.mark.parametrize(("text", "db", "sign"), [
    ("only take the vocals down 2 instead of 4", 2.0, -1),
    ("make it -2", 2.0, -1),
    ("set the drum move to minus two", 2.0, -1),
    ("bring it up by two", 2.0, 1),
    ("go with +1.5 on drums", 1.5, 1),
    ("half a db down on the keys", 0.5, -1),
    ("knock the snare down a db", 1.0, -1),
    ("a couple db on the bass", 2.0, None),
    ("if i only do one move", None, None),
    ("what's the top 3", None, None),
    ("cut the 808 by 30 dB", None, None),  # beyond what a fader move can mean
])
def test_amounts_and_their_direction(text: str, db: float | None, sign: int | None) -> None:
    assert amount(text) == (db, sign)


def test_slash_commands_are_read_without_parsing_a_sentence() -> None:
    stems = list(SESSION_STEMS)
    assert command_request("/apply", ["vox", "--except", "kick"], stems) == Request(
        "apply", ("vocals",), except_stems=("drums",), how="command")
    assert command_request("/apply", ["--except", "drums"], stems) == Request(
        "apply", except_stems=("drums",), how="command")
    assert command_request("/apply", ["tuba"], stems) is None  # no such stem: the usage is shown
    assert command_request("/advise", ["alm-pretrained"], stems) == Request("advisor", detail="alm-pretrained",
                                                                            how="command")
    assert command_request("/push", ["reaper", "8001"], stems) == Request("push", detail="reaper",
                                                                          ports={"port": 8001}, how="command")
    assert command_request("/push", ["cubase"], stems) is None
    assert command_request("/load", ["my stems/song 1"], stems) == Request("load", detail="my stems/song 1",
                                                                          how="command")
    request = command_request("/apply", ["vox"], stems)
    assert request is not None and Request.from_json(request.to_json()) == request


def test_one_stem_matcher_for_words_misspellings_parts_and_what_is_missing() -> None:
    names = ["Lead Vox", "gtr_L", "gtr_R", "Kick In", "bass"]
    assert find_stem("vox", names) == "Lead Vox" and find_stem("bas", names) == "bass"
    assert find_stem("guitar", names) is None  # two guitar stems: the word names neither
    assert mentioned_stems("the gtr l is louder than the kick in", names) == ["gtr_L", "Kick In"]
    found = mentions("is the paino buried under the vocls?", ["vocals", "keys"])
    assert [(m.phrase, m.stem, m.is_part) for m in found] == [("paino", "keys", False), ("vocls", "vocals", False)]
    assert missing_instruments("the strings and the sax", ["vocals", "drums"]) == ["strings", "sax"]
    assert missing_instruments("the piano", ["vocals", "drums"]) == ["piano"]  # no keys stem
    assert missing_instruments("the guitar", ["gtr_L", "gtr_R"]) == []  # ambiguous, not missing
    assert mentioned_stems("export to reaper, order the stems, the base of the mix", ["vocals", "bass", "other"]) == []


def test_the_static_embedder_is_offline_small_and_orders_meanings() -> None:
    embedder = StaticEmbedder()
    vectors = embedder.embed(["which stem is too loud", "which stem is too quiet", "thanks a lot"])
    assert vectors.shape == (3, 256) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.5


def test_a_name_with_a_closing_tag_is_not_a_path() -> None:
    """Track names are data: '[bold]Vox[/bold]' holds a slash but names a stem, not a folder to load."""
    from faderwise.agent.understand import path_in

    assert path_in("is the [bold]Vox[/bold] too loud?") is None
    assert path_in("load ~/songs/[v2]/stems") == "~/songs/[v2]/stems"
