"""Stem classes and the words people use for them ("vox" → vocals, "the kick" → drums).

A stem's class comes from its name ("Lead Vox" → vocals, "gtr_L" → guitar). A word names a stem
when it is the stem's own name, or an alias of a class that exactly one stem of the set belongs to.
Ambiguous words (two guitar stems and the word "guitar") name nothing: callers must not guess.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence

from faderwise.tools.errors import StemSetError

# Class → words that name it. Multi-word phrases are matched before single words.
CLASS_ALIASES: dict[str, tuple[str, ...]] = {
    "vocals": ("vocals", "vocal", "vox", "voice", "voices", "singer", "singing", "lead vocal", "lead vocals",
               "lead vox", "vocal line", "vocalist"),
    "drums": ("drums", "drum", "drum kit", "kit", "percussion", "perc", "kick", "kick drum", "snare", "hats",
              "hi-hats", "hi-hat", "hihat", "hihats", "toms", "cymbals", "overheads", "beat"),
    "bass": ("bass", "bass guitar", "bassline", "bass line", "sub", "sub bass", "808"),
    "guitar": ("guitar", "guitars", "gtr", "gtrs", "electric guitar", "acoustic guitar", "rhythm guitar"),
    "keys": ("keys", "keyboard", "keyboards", "piano", "pianos", "synth", "synths", "pad", "pads", "organ", "rhodes"),
    "other": ("other", "others"),
}
STEM_CLASSES = tuple(CLASS_ALIASES)


def _words(name: str) -> list[str]:
    return [word for word in re.split(r"[^a-z0-9]+", name.casefold()) if word]


def stem_class(name: str) -> str | None:
    """The class of a stem called ``name``, or ``None`` when no word of the name says."""
    words = _words(name)
    joined = " ".join(words)
    for stem_class_name, aliases in CLASS_ALIASES.items():
        if any(re.search(rf"\b{re.escape(alias)}\b", joined) for alias in aliases):
            return stem_class_name
    return None


def mention_table(stem_names: Iterable[str]) -> dict[str, str]:
    """Lower-case phrase → stem name, for every phrase that names exactly one stem of the set.

    A stem's own name (with ``_``/``-`` read as spaces, and with or without a plural ``s``) always
    names it; class aliases name the one stem of that class, unless another stem is called by the
    alias itself ("kick" names a stem called "kick", not the drums).
    """
    names = list(stem_names)
    table: dict[str, str] = {}
    for name in names:
        spoken = " ".join(_words(name))
        for variant in {spoken, spoken.rstrip("s"), spoken + "s"} - {""}:
            table[variant] = name
    by_class: dict[str, list[str]] = {}
    for name in names:
        found = stem_class(name)
        if found is not None:
            by_class.setdefault(found, []).append(name)
    for class_name, members in by_class.items():
        if len(members) != 1:
            continue  # two guitar stems: "guitar" alone is ambiguous
        for alias in CLASS_ALIASES[class_name]:
            table.setdefault(alias, members[0])
    return table


DETERMINERS = frozenset({"the", "a", "my", "our", "your", "this", "that"})


def resolve_stem(word: str, stem_names: Iterable[str]) -> str | None:
    """The stem ``word`` names ("the kick", "vox"; see :func:`mention_table`), or ``None``."""
    words = _words(word)
    while words and words[0] in DETERMINERS:
        words = words[1:]
    return mention_table(stem_names).get(" ".join(words))


FUZZY_CUTOFF = 0.75
"""difflib ratio above which a misspelt stem name ("vocls") means the closest stem, when only one is that close."""


def find_stem(word: str, stem_names: Sequence[str]) -> str | None:
    """The stem ``word`` names: the name itself, an alias (:func:`resolve_stem`), or the one stem
    whose name is within :data:`FUZZY_CUTOFF` of it ("vocls" → vocals); else ``None``. The command
    line and the chat read stem names the same way."""
    if word in stem_names:
        return word
    found = resolve_stem(word, stem_names)
    if found is not None:
        return found
    folded = {name.casefold(): name for name in stem_names}
    close = difflib.get_close_matches(word.strip().casefold(), list(folded), n=2, cutoff=FUZZY_CUTOFF)
    return folded[close[0]] if len(close) == 1 else None


def require_stems(words: Sequence[str], stem_names: Sequence[str], *, label: str) -> list[str]:
    """The stems ``words`` name ("vox", "the kick", "Vocals", "vocls"), in order (:func:`find_stem`).

    Raises:
        StemSetError: a word names no stem of ``label``'s set (the message lists the stems).
    """
    found = []
    for word in words:
        name = find_stem(word, stem_names)
        if name is None:
            raise StemSetError(f"{label}: has no stem {word!r} (it has: {', '.join(stem_names)})")
        found.append(name)
    return found
