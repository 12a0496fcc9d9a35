"""Constrained decoding: an audio-language model answers in the grammar its training text uses.

The models are trained on short answers (:func:`answer_sentence`): "Raise the
bass by about 3 dB." / "Lower the keys by about 6.5 dB." / "Leave the drums as they are.". Decoded
freely, a model may name a stem it knows instead of the one it was asked about ("Lower the lead by
about 7." asked about the vocals), or give no stem or no number ("Lower the dB."). Decoded in the
grammar, its answer is one of a fixed set of sentences for the asked stem, in the producer's own
spelling:

1. the verb, scored: the model's probability of "Raise", "Lower" and "Leave" as the answer's first
   word (each one token in the tokenizers faderwise ships, read at the first step; a verb of
   several tokens is scored by the product of their probabilities), the highest taken;
2. the stem's name, forced: " the {stem}" exactly as the producer wrote it;
3. the number: greedy over the amounts the training text states (0.5 to :data:`LARGEST_AMOUNT_DB`
   dB in 0.5 dB steps), token by token through a trie of their spellings, then " dB.".

A model may spell its amounts with two digits ("by about 07.5 dB", :data:`~faderwise.advisor.explain.SPELLINGS`): a tokenizer
that writes a number digit by digit (Qwen2's) makes the first token of a plain "11" the "1" of
"1.5", so which token comes first is not monotonic in the size, and a linear readout of a size the
model hears cannot choose it; with two digits the first token is the tens and each next one follows
the size. The spelling is the model's (``amount_spelling`` in its settings; :func:`~faderwise.advisor.explain.spelled_amount`); what the producer
reads is built from the move, never from these words.

A "Leave" is followed by its forced " the {stem} as it is." (or "as they are."). The answer always
parses, and its move is read from the path taken, never from the words afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from faderwise.advisor.explain import ROUNDING_DB, as_it_is, instruction, is_leave
from faderwise.tools.errors import FaderwiseError

DECODINGS = ("constrained", "free")
"""How an audio-language model's answer is decoded: in the training text's grammar (the default),
or free text (greedy, any words; kept for the research comparison)."""
VERBS = {"Raise": 1.0, "Lower": -1.0, "Leave": 0.0}
"""The answer's first word → the sign of the move it states."""
LARGEST_AMOUNT_DB = 16.0
"""The largest amount the grammar allows, dB: the level ruler's span (the synthesis moves a stem by
at most 12 dB; a model hearing a larger difference says the largest it may)."""
AMOUNTS_DB = tuple(step * ROUNDING_DB for step in range(1, int(LARGEST_AMOUNT_DB / ROUNDING_DB) + 1))
"""Every amount an answer may state, dB (the explanations round to 0.5 dB; under 0.5 is a leave)."""


class GrammarError(FaderwiseError):
    """A constrained answer that left the grammar (a decoding fault, never a model's choice)."""


def answer_sentence(stem: str, move_db: float, *, spelling: str = "plain") -> str:
    """The short answer that states ``move_db`` (rounded to 0.5 dB) for ``stem``: "Raise the bass by
    about 7.5 dB." ("07.5" spelled with two digits,
    :data:`~faderwise.advisor.explain.SPELLINGS`), or "Leave the bass as it is."."""
    if is_leave(move_db):
        return f"Leave the {stem} {as_it_is(stem)}."
    return f"{instruction(stem, move_db, spelling=spelling)}."


def grammar_answers(stem: str, *, spelling: str = "plain") -> dict[str, float]:
    """Every answer the grammar allows for ``stem`` → the move it states, dB (positive = raise)."""
    answers = {answer_sentence(stem, 0.0): 0.0}
    for sign in VERBS.values():
        if sign:
            answers.update({answer_sentence(stem, sign * amount, spelling=spelling): sign * amount
                            for amount in AMOUNTS_DB})
    return answers


def verb_tokens(tokenizer: Any) -> dict[str, list[int]]:
    """Each verb of :data:`VERBS` → its tokens as the answer's first word."""
    return {verb: list(tokenizer(verb, add_special_tokens=False)["input_ids"]) for verb in VERBS}


@dataclass
class AnswerTrie:
    """The grammar's answers for one stem as a trie of token ids, each ending in the turn's end token."""

    children: dict[int, AnswerTrie] = field(default_factory=dict)
    move_db: float | None = None
    """At a leaf (after the end token): the move of the answer that ends here."""

    @classmethod
    def build(cls, tokenizer: Any, stem: str, *, end_id: int, verb: str | None = None,
              spelling: str = "plain") -> AnswerTrie:
        """The trie of ``stem``'s answers (only those that start with ``verb``, when given), their
        amounts spelled as ``spelling`` says."""
        root = cls()
        for text, move in grammar_answers(stem, spelling=spelling).items():
            if verb is not None and not text.startswith(verb + " "):
                continue
            node = root
            for token in [*tokenizer(text, add_special_tokens=False)["input_ids"], end_id]:
                node = node.children.setdefault(token, cls())
            node.move_db = move
        return root

    def follow(self, tokens: Sequence[int]) -> AnswerTrie:
        """The node reached by ``tokens`` from here.

        Raises:
            KeyError: a token the grammar does not allow there.
        """
        node = self
        for token in tokens:
            node = node.children[int(token)]
        return node

    def depth(self) -> int:
        """The longest answer, tokens (its end token included)."""
        return 1 + max((child.depth() for child in self.children.values()), default=-1)


@dataclass(frozen=True)
class ConstrainedAnswer:
    """One stem's answer decoded in the grammar.

    Attributes:
        text: the answer's words ("Lower the 808 by about 3 dB.").
        move_db: the move it states, dB (0.0 for a leave).
        verb_probabilities: the model's probability of each verb as the answer's first word,
            renormalised over the three (``{"raise": …, "lower": …, "leave": …}``).
    """

    text: str
    move_db: float
    verb_probabilities: dict[str, float]


def grammar_processor(trie: AnswerTrie, *, prompt_length: int, scores: dict[str, float] | None = None,
                      verbs: dict[str, list[int]] | None = None) -> Any:
    """A transformers logits processor that allows, at each step, only the tokens that continue an
    answer of ``trie``. With ``scores`` and single-token ``verbs``, it also writes the verbs'
    probabilities at the first step, renormalised over the three, into ``scores``."""
    import torch
    from transformers import LogitsProcessor

    class _Grammar(LogitsProcessor):  # type: ignore[misc]
        def __call__(self, input_ids: Any, logits: Any) -> Any:
            generated = input_ids[0, prompt_length:].tolist()
            if not generated and scores is not None and verbs is not None:
                chosen = torch.tensor([ids[0] for ids in verbs.values()])
                probabilities = torch.softmax(logits[0, chosen].double(), dim=0)
                scores.update({verb.lower(): float(p) for verb, p in zip(verbs, probabilities, strict=True)})
            allowed = torch.tensor(list(trie.follow(generated).children))
            masked = torch.full_like(logits, float("-inf"))
            masked[:, allowed] = logits[:, allowed]
            return masked

    return _Grammar()


def verb_probabilities(model: Any, inputs: dict[str, Any], verbs: dict[str, list[int]]) -> dict[str, float]:
    """The model's probability of each verb as the answer's first word (the product of its tokens'
    probabilities: one pass over the prompt and the verb each), renormalised over the three."""
    import torch

    log_p = {}
    with torch.no_grad():
        for verb, ids in verbs.items():
            tokens = torch.tensor([ids], dtype=inputs["input_ids"].dtype)
            extended = {**inputs, "input_ids": torch.cat([inputs["input_ids"], tokens], dim=1)}
            if "attention_mask" in inputs:
                extended["attention_mask"] = torch.cat([inputs["attention_mask"], torch.ones_like(tokens)], dim=1)
            logits = model(**extended).logits[0, -len(ids) - 1:-1].double()
            log_p[verb] = float(torch.log_softmax(logits, dim=-1)[torch.arange(len(ids)), tokens[0]].sum())
    total = torch.logsumexp(torch.tensor(list(log_p.values()), dtype=torch.float64), dim=0)
    return {verb.lower(): float(torch.exp(value - total)) for verb, value in log_p.items()}


def decode_in_grammar(model: Any, tokenizer: Any, inputs: dict[str, Any], stem: str, *,
                      end_id: int, spelling: str = "plain") -> ConstrainedAnswer:
    """Greedy decoding of ``model``'s answer for ``stem`` through the grammar's trie, its verb
    scored first (at the first step where each verb is one token, else by :func:`verb_probabilities`).

    Args:
        inputs: the processor's tensors for the prompt (a batch of 1).
        end_id: the token that closes the answer's turn (``<|im_end|>``).
        spelling: how the model writes its amounts (:data:`~faderwise.advisor.explain.SPELLINGS`).
    """
    import torch

    verbs = verb_tokens(tokenizer)
    scores: dict[str, float] = {}
    prompt_length = inputs["input_ids"].shape[1]
    if all(len(ids) == 1 for ids in verbs.values()):
        trie = AnswerTrie.build(tokenizer, stem, end_id=end_id, spelling=spelling)
        processor = grammar_processor(trie, prompt_length=prompt_length, scores=scores, verbs=verbs)
    else:
        scores = verb_probabilities(model, inputs, verbs)
        chosen = next(verb for verb in verbs if verb.lower() == max(scores, key=scores.__getitem__))
        trie = AnswerTrie.build(tokenizer, stem, end_id=end_id, verb=chosen, spelling=spelling)
        processor = grammar_processor(trie, prompt_length=prompt_length)
    with torch.no_grad():
        generated = model.generate(**inputs, max_new_tokens=trie.depth(), do_sample=False, eos_token_id=end_id,
                                   pad_token_id=tokenizer.pad_token_id or end_id, logits_processor=[processor])
    tokens = generated[0, prompt_length:].tolist()
    move = trie.follow(tokens).move_db
    if move is None:  # generate stops at the end token or the trie's depth, so every path ends at a leaf
        raise GrammarError(f"the constrained answer for the {stem} did not end in the grammar")
    return ConstrainedAnswer(text=tokenizer.decode(tokens, skip_special_tokens=True).strip(), move_db=move,
                             verb_probabilities=scores)
