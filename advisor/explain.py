"""The words of the advice: templated sentences around measured numbers.

The same templates phrase the training data's target explanations (training/), so what a model
learns to say is what the measured advisor says. Every sentence stays inside gain: masking is
cited as evidence for a fader move, never as a reason for EQ, compression or effects. Moves are
rounded to 0.5 dB in words; under 0.5 dB the advice is to leave the stem alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from faderwise.advisor.evidence import format_time

ROUNDING_DB = 0.5


def rounded_db(delta_db: float) -> float:
    """``delta_db`` to the nearest 0.5 dB."""
    return round(delta_db / ROUNDING_DB) * ROUNDING_DB


def is_leave(delta_db: float) -> bool:
    """Whether a move rounds to nothing (under 0.5 dB)."""
    return abs(delta_db) < ROUNDING_DB


def is_plural(stem: str) -> bool:
    """Whether a stem's name reads as a plural ("vocals", "drums", "keys"; not "bass")."""
    return stem.endswith("s") and not stem.endswith("ss")


SPELLINGS = ("plain", "two-digit")
"""How an amount is written: ``plain`` as the advice writes it ("7.5", "11"), or ``two-digit``
("07.5", "11": the integer part in two digits, then ".5" for a half), the spelling an
audio-language model may answer in (:mod:`faderwise.advisor.constrained`)."""


def spelled_amount(amount_db: float, spelling: str = "plain") -> str:
    """``amount_db`` (a multiple of 0.5) as ``spelling`` writes it (:data:`SPELLINGS`)."""
    if spelling == "plain":
        return f"{amount_db:g}"
    if spelling == "two-digit":
        return f"{int(amount_db):02d}{'.5' if amount_db % 1 else ''}"
    raise ValueError(f"amount spelling {spelling!r}: choose {' or '.join(SPELLINGS)}")


def instruction(stem: str, delta_db: float, *, spelling: str = "plain") -> str:
    """"Lower the vocals by about 4 dB" / "Raise the bass by about 2.5 dB" (the amount rounded to
    0.5 dB and spelled as ``spelling`` says: "02.5" with two digits)."""
    verb = "Raise" if delta_db > 0 else "Lower"
    return f"{verb} the {stem} by about {spelled_amount(abs(rounded_db(delta_db)), spelling)} dB"


def confidence_label(half_width_db: float) -> str:
    """high (±0.25 dB or better), medium (±1 dB), low."""
    return "high" if half_width_db <= 0.25 else "medium" if half_width_db <= 1.0 else "low"


def is_are(stem: str) -> str:
    """"are" for a stem whose name reads as a plural ("the keys are"), else "is"."""
    return "are" if is_plural(stem) else "is"


def it_is(stem: str) -> str:
    """"they are" for a stem whose name reads as a plural, else "it is"."""
    return f"{'they' if is_plural(stem) else 'it'} {is_are(stem)}"


def as_it_is(stem: str) -> str:
    """"as they are" for a stem whose name reads as a plural ("the drums"), else "as it is"."""
    return f"as {it_is(stem)}"


def leave_sentence(stems: Sequence[str], reason: str) -> str:
    """"Leave the bass, the keys and the guitar as they are: <reason>."."""
    named = [f"the {stem}" for stem in stems]
    listed = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
    return f"Leave {listed} as they are: {reason}." if len(named) > 1 else f"Leave {listed} {as_it_is(stems[0])}: {reason}."


def signed_lu(value: float) -> str:
    return f"{value:+.1f} LU"


def moment_sentence(facts: Mapping[str, object], delta_db: float) -> str:
    """When the stem is most buried (for a raise) or most exposed (for a cut), from the evidence."""
    key = "most_buried" if delta_db > 0 else "most_exposed"
    window, ratio = facts.get(f"{key}_s"), facts.get(f"{key}_lu")
    if not isinstance(window, list) or not isinstance(ratio, (int, float)):
        return ""
    where = "under" if ratio < 0 else "over"
    state = "most buried" if delta_db > 0 else "most exposed"
    return (f" It is {state} around {format_time(window[0])}–{format_time(window[1])}, "
            f"{abs(ratio):.1f} LU {where} its backing.")


def masking_sentence(facts: Mapping[str, object]) -> str:
    """Where the backing covers the stem, in A and (when known) in B."""
    ranges = facts.get("masking")
    if not isinstance(ranges, list) or not ranges:
        return ""
    first = ranges[0]
    sentence = (f" The backing covers it at {first['bands']}, {first['backing_over_stem_a_db']:.1f} dB above it "
                f"there in your mix")
    if isinstance(first.get("backing_over_stem_b_db"), (int, float)):
        b_margin = first["backing_over_stem_b_db"]
        sentence += f" against {abs(b_margin):.1f} dB {'above' if b_margin >= 0 else 'below'} in the reference"
    return sentence + "."


def _louder(db: float) -> str:
    return "louder" if db > 0 else "quieter"


def level_clause(a_minus_b_db: float, facts: Mapping[str, object]) -> str:
    """": in your mix this stem is 4.0 dB louder than in the reference (-15.0 against -19.0 LUFS)".

    The figure said is the one its numbers show (the two loudnesses as printed, subtracted), so a
    sentence never contradicts itself; where the whole mix differs too (``facts``'
    ``master_a_minus_b_db``, the level every stem shares), the clause adds what is left against
    the rest of the mix, which is what the move undoes."""
    level_a, level_b = facts.get("level_a_lufs"), facts.get("level_b_lufs")
    shown = isinstance(level_a, (int, float)) and isinstance(level_b, (int, float))
    stated = round(round(level_a, 1) - round(level_b, 1), 1) if shown else round(a_minus_b_db, 1)  # type: ignore[arg-type]
    clause = (f": in your mix this stem is {abs(stated):.1f} dB {_louder(stated)} than in the reference"
              if stated else ": in your mix this stem is as loud as in the reference")
    if shown:
        clause += f" ({level_a:.1f} against {level_b:.1f} LUFS)"
    master = facts.get("master_a_minus_b_db")
    if isinstance(master, (int, float)) and round(master, 1):
        shared = round(master, 1)
        left = round(stated - shared, 1)
        clause += (f", and the whole mix is {abs(shared):.1f} dB {_louder(shared)} (the master's level, not balance), "
                   + (f"so against the rest of your mix it is {abs(left):.1f} dB {_louder(left)}" if left else
                      "so against the rest of your mix it sits as in the reference"))
    return clause + "."


def backing_sentence(facts: Mapping[str, object]) -> str:
    """Where the stem sits against its backing in A and in B."""
    in_a, in_b = facts.get("stem_to_backing_a_lu"), facts.get("stem_to_backing_b_lu")
    if not isinstance(in_a, (int, float)):
        return ""
    if isinstance(in_b, (int, float)):
        return f" Against its backing it sits at {signed_lu(in_a)} in your mix and {signed_lu(in_b)} in the reference."
    return f" Against its backing it sits at {signed_lu(in_a)}."


def confidence_sentence(low_db: float, high_db: float) -> str:
    half = (high_db - low_db) / 2
    return f" Confidence: {confidence_label(half)} ({low_db:+.1f} to {high_db:+.1f} dB)."


def master_sentence(global_offset_db: float) -> str:
    """The master-level difference, kept apart from the balance."""
    if is_leave(global_offset_db):
        return ""
    louder = "louder" if global_offset_db < 0 else "quieter"
    direction = "down" if global_offset_db < 0 else "up"
    return (f"Overall your mix is {abs(global_offset_db):.1f} dB {louder} than the reference; that is master level, "
            f"not balance: turn the master {direction} by about {abs(rounded_db(global_offset_db)):g} dB if you want "
            f"to match it.")


def join(sentences: Sequence[str]) -> str:
    return " ".join(sentence.strip() for sentence in sentences if sentence and sentence.strip())
