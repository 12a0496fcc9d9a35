"""Target explanations for training: several paraphrases of one statement — direction and size
of the move that turns Version A's stem into Version B's — plus measured evidence.

The wording keeps to the measured advisor's vocabulary (:mod:`faderwise.advisor.explain`): "raise/lower
the <stem> by about N dB", amounts rounded to 0.5 dB, under 0.5 dB "leave it". So
:func:`faderwise.advisor.parse.parse_moves` reads every template back to the move it states (tested), and a
model trained on these texts says what the measured advisor says.

The differential variant cites B ("in the reference"); the single-mix variant, for a model that
hears only A, cites what A alone shows.
"""

from __future__ import annotations

from collections.abc import Mapping

from faderwise.advisor.explain import is_leave, is_plural, rounded_db

DIFFERENTIAL_TEMPLATES = (
    "The {stem} stem in Version A is {amount} dB {louder} than in the balanced Version B. To match the "
    "reference, {decrease} the {stem} gain by about {amount} dB.",
    "{Raise} the {stem} by about {amount} dB: in your mix {it} {sits} {amount} dB {above} where the reference "
    "has {them}.",
    "Compared with the reference, your {stem} {is} about {amount} dB too {loud}. {Turn} {its} fader {down} by "
    "about {amount} dB.",
    "To match Version B, {raise} the {stem} by about {amount} dB; {it} {is} {amount} dB {louder} in Version A.",
)
DIFFERENTIAL_LEAVE = (
    "The {stem} {sits} at the same level in Version A as in the balanced Version B. Leave the {stem} as {it} {is}.",
    "Leave the {stem} as {it} {is}: {it} already {matches} the reference.",
)
SINGLE_MIX_TEMPLATES = (
    "{Raise} the {stem} by about {amount} dB: {it} {sounds} {amount} dB too {loud} in this mix.",
    "The {stem} {is} about {amount} dB too {loud} against the rest of the mix. {Turn} {its} fader {down} by about "
    "{amount} dB.",
)
SINGLE_MIX_LEAVE = ("Leave the {stem} as {it} {is}: {it} {sits} well in this mix.",)


def _words(stem: str, move_db: float) -> dict[str, str]:
    up = move_db > 0  # the stem should go up: it is too quiet in A
    amount = f"{abs(rounded_db(move_db)):g}"
    plural = is_plural(stem)
    return {"it": "they" if plural else "it", "them": "them" if plural else "it", "its": "their" if plural else "its",
            "is": "are" if plural else "is", "sits": "sit" if plural else "sits",
            "sounds": "sound" if plural else "sounds", "matches": "match" if plural else "matches",
            "stem": stem, "amount": amount, "louder": "quieter" if up else "louder",
            "decrease": "increase" if up else "decrease", "Raise": "Raise" if up else "Lower",
            "raise": "raise" if up else "lower", "above": "below" if up else "above",
            "loud": "quiet" if up else "loud", "Turn": "Turn", "down": "up" if up else "down"}


def template_count(*, differential: bool, leave: bool) -> int:
    if differential:
        return len(DIFFERENTIAL_LEAVE if leave else DIFFERENTIAL_TEMPLATES)
    return len(SINGLE_MIX_LEAVE if leave else SINGLE_MIX_TEMPLATES)


def explanation(stem: str, move_db: float, facts: Mapping[str, float | None], *, differential: bool,
                template: int) -> str:
    """The explanation for moving ``stem`` by ``move_db`` (dB, positive = raise), with evidence.

    Args:
        facts: measured on the bundle's clips: ``stem_to_backing_a_lu``, ``stem_to_backing_b_lu``
            (LU, ``None`` when silent).
        differential: whether the model hears B (cite it) or only A.
        template: which paraphrase (taken modulo the number available).
    """
    leave = is_leave(move_db)
    if differential:
        choices = DIFFERENTIAL_LEAVE if leave else DIFFERENTIAL_TEMPLATES
    else:
        choices = SINGLE_MIX_LEAVE if leave else SINGLE_MIX_TEMPLATES
    words = _words(stem, move_db)
    text = choices[template % len(choices)].format(**words)
    in_a, in_b = facts.get("stem_to_backing_a_lu"), facts.get("stem_to_backing_b_lu")
    against = f" Against {words['its']} backing {words['it']} {words['sits']} at"
    if differential and in_a is not None and in_b is not None:
        text += f"{against} {in_a:+.1f} LU in your mix and {in_b:+.1f} LU in the reference."
    elif in_a is not None:
        text += f"{against} {in_a:+.1f} LU."
    return text
