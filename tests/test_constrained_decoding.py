"""The grammar an audio-language model's answer is decoded in: every answer it allows names the
asked stem as spelled, states one move, and parses back to it; its token trie holds exactly those
answers for the tokenizers faderwise ships."""

from __future__ import annotations

from pathlib import Path

import pytest

from faderwise.advisor.constrained import (
    AMOUNTS_DB,
    LARGEST_AMOUNT_DB,
    AnswerTrie,
    grammar_answers,
    verb_tokens,
)
from faderwise.advisor.explain import spelled_amount
from faderwise.advisor.parse import parse_moves

SHIPPED = Path(__file__).resolve().parents[1] / "advisor" / "models" / "small-differential"
NAMES = ("vocals", "Lead Vox", "BVs", "808", "Pads", "other", "FX", "bass", "Gtr [/x]", "Kick (track 3)", "Gtr. 2",
         "Low End", "Leave Me", "a»b")


@pytest.mark.parametrize("spelling", ["plain", "two-digit"])
@pytest.mark.parametrize("stem", NAMES)
def test_every_answer_names_the_stem_as_spelled_and_parses_back_to_its_move(stem: str, spelling: str) -> None:
    answers = grammar_answers(stem, spelling=spelling)
    assert len(answers) == 1 + 2 * len(AMOUNTS_DB) == 65
    assert sorted({abs(move) for move in answers.values()}) == [0.0, *AMOUNTS_DB]
    assert AMOUNTS_DB[0] == 0.5 and AMOUNTS_DB[-1] == LARGEST_AMOUNT_DB == 16.0
    for text, move in answers.items():
        assert text.split(" ", 2)[2].startswith(stem + " "), text
        (parsed,) = parse_moves(text, [stem])
        assert (parsed.stem, parsed.delta_db) == (stem, move), text
    assert answers[f"Lower the {stem} by about 12.5 dB."] == -12.5
    assert answers[f"Raise the {stem} by about {'03' if spelling == 'two-digit' else '3'} dB."] == 3.0


def test_two_digit_amounts_put_the_tens_first() -> None:
    """With two digits the first token of an amount is its tens, so each token follows the size
    (plain "11" and "1.5" share their first "1")."""
    assert [spelled_amount(a, "two-digit") for a in (0.5, 1.0, 1.5, 7.5, 9.5, 10.0, 11.5, 16.0)] == [
        "00.5", "01", "01.5", "07.5", "09.5", "10", "11.5", "16"]
    assert [spelled_amount(a, "plain") for a in (0.5, 1.0, 11.5)] == ["0.5", "1", "11.5"]
    tens = [spelled_amount(a, "two-digit")[0] for a in AMOUNTS_DB]
    assert tens == sorted(tens)  # monotonic: "0" up to 9.5 dB, then "1"
    with pytest.raises(ValueError, match="amount spelling 'words': choose plain or two-digit"):
        spelled_amount(3.0, "words")


def test_a_leave_agrees_with_the_stems_number() -> None:
    assert grammar_answers("drums")["Leave the drums as they are."] == 0.0
    assert grammar_answers("bass")["Leave the bass as it is."] == 0.0


def test_the_trie_of_the_shipped_tokenizer_holds_exactly_the_grammars_answers() -> None:
    transformers = pytest.importorskip("transformers", reason="the [alm] extra")
    tokenizer = transformers.AutoTokenizer.from_pretrained(SHIPPED)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    verbs = verb_tokens(tokenizer)
    assert all(len(ids) == 1 for ids in verbs.values())  # scored at the first step, in one pass
    for stem in ("other", "Lead Vox", "808"):
        trie = AnswerTrie.build(tokenizer, stem, end_id=end)
        assert set(trie.children) == {ids[0] for ids in verbs.values()}
        found = {}
        for text, move in grammar_answers(stem).items():
            tokens = [*tokenizer(text, add_special_tokens=False)["input_ids"], end]
            leaf = trie.follow(tokens)
            assert leaf.move_db == move and not leaf.children
            found[tuple(tokens)] = move
        assert len(found) == 65  # no two answers share a spelling
        assert trie.depth() == max(len(tokens) for tokens in found)
        with pytest.raises(KeyError):
            trie.follow(tokenizer("Lower the lead", add_special_tokens=False)["input_ids"])
        lowered = AnswerTrie.build(tokenizer, stem, end_id=end, verb="Lower")
        assert set(lowered.children) == {verbs["Lower"][0]}
