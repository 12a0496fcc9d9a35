"""Stem classes and the words people use for them ("vox" → vocals, "the kick" → drums).

A stem's class comes from its name ("Lead Vox" → vocals, "gtr_L" → guitar). A word names a stem
when it is the stem's own name, or an alias of a class that exactly one stem of the set belongs to.
Ambiguous words (two guitar stems and the word "guitar") name nothing: callers must not guess.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from faderwise.tools.errors import StemSetError

# Class → words that name it. Multi-word phrases are matched before single words.
CLASS_ALIASES: dict[str, tuple[str, ...]] = {
    "vocals": ("vocals", "vocal", "vox", "voice", "voices", "singer", "singing", "lead vocal", "lead vocals",
               "lead vox", "vocal line", "vocalist", "backing vocals", "backing vocal", "backing vox", "bvs",
               "bv", "harmonies", "harmony", "ad-libs", "adlibs", "ad libs", "choir"),
    "drums": ("drums", "drum", "drum kit", "kit", "percussion", "perc", "kick", "kick drum", "kicks", "snare", "snares",
              "hats", "hat", "hi-hats", "hi-hat", "hihat", "hihats", "hi hats", "toms", "cymbals", "overheads", "beat",
              "claps", "clap", "shaker", "tambourine", "ride", "crash", "rim", "drum bus"),
    "bass": ("bass", "bass guitar", "bassline", "bass line", "sub", "sub bass", "808", "808s", "subs"),
    "guitar": ("guitar", "guitars", "gtr", "gtrs", "electric guitar", "acoustic guitar", "rhythm guitar", "lead guitar",
               "acoustic", "riff", "riffs"),
    "keys": ("keys", "keyboard", "keyboards", "piano", "pianos", "synth", "synths", "pad", "pads", "organ", "rhodes",
             "ep", "epiano", "e-piano", "electric piano", "acoustic piano"),
    "other": ("other", "others"),
}
STEM_CLASSES = tuple(CLASS_ALIASES)
OTHER_INSTRUMENTS = ("strings", "string section", "violin", "violins", "viola", "cello", "cellos", "orchestra", "horns",
                     "horn section", "horn", "brass", "trumpet", "trumpets", "trombone", "sax", "saxophone", "flute",
                     "flutes", "woodwinds", "banjo", "mandolin", "harmonica", "ukulele", "harp", "accordion", "bells",
                     "glockenspiel", "marimba", "vibraphone", "sfx", "risers", "samples")
"""Instrument words no class above holds: a session with no stem called so has nothing that plays them."""


def _words(name: str) -> list[str]:
    return [word for word in re.split(r"[^a-z0-9]+", name.casefold()) if word]


def stem_class(name: str) -> str | None:
    """The class of a stem called ``name``, or ``None`` when no word of the name says (the longest
    alias the name holds decides: "Lead Guitar" is a guitar, "Electric Piano" keys)."""
    joined = " ".join(_words(name))
    found = [(len(alias), -order, class_name) for order, (class_name, aliases) in enumerate(CLASS_ALIASES.items())
             for alias in aliases if re.search(rf"\b{re.escape(alias)}\b", joined)]
    return max(found)[2] if found else None


def mention_table(stem_names: Iterable[str]) -> dict[str, str]:
    """Lower-case phrase → stem name, for every phrase that names exactly one stem of the set.

    A stem's own name (as written, brackets and all, and with ``_``/``-`` read as spaces, with or
    without a plural ``s``) always names it; class aliases name the one stem of that class, unless
    another stem is called by the alias itself ("kick" names a stem called "kick", not the drums).
    """
    names = list(stem_names)
    table: dict[str, str] = {}
    for name in names:
        spoken = " ".join(_words(name))
        for variant in {spoken, spoken.rstrip("s"), spoken + "s"} - {""}:
            table[variant] = name
    for name in names:  # "Video [chan 1]", a name REAPER gives, is said as it is written
        table.setdefault(name.casefold(), name)
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


NOT_MISSPELLINGS = frozenset({"base", "bash", "basis", "pass", "mass", "last", "keep", "keen", "kept", "locals", "focal",
                              "order", "mother", "bother", "either", "drama", "dreams", "guitarist", "gutter", "voices",
                              "beats", "heat", "bright", "there", "where", "these", "those", "things", "steps", "items", "reaper",
                              "ardour", "double", "chorus", "bounce", "gains", "pizza", "piece", "pause"})
"""Words a stem name is close to that are words in their own right: never read as a misspelt stem."""


def closest_stem(word: str, stem_names: Sequence[str]) -> str | None:
    """The one stem whose name is within :data:`FUZZY_CUTOFF` of ``word`` ("vocls" → vocals), or
    ``None`` when none is, or more than one is."""
    folded = {name.casefold(): name for name in stem_names}
    close = difflib.get_close_matches(word.strip().casefold(), list(folded), n=2, cutoff=FUZZY_CUTOFF)
    return folded[close[0]] if len(close) == 1 else None


def find_stem(word: str, stem_names: Sequence[str]) -> str | None:
    """The stem ``word`` names: the name itself, an alias (:func:`resolve_stem`), or the one stem
    whose name is within :data:`FUZZY_CUTOFF` of it ("vocls" → vocals); else ``None``. The command
    line, the chat's requests and its tools read stem names the same way (:func:`mentions`)."""
    if word in stem_names:
        return word
    found = resolve_stem(word, stem_names)
    if found is not None:
        return found
    return closest_stem(word, stem_names)


@dataclass(frozen=True)
class Mention:
    """Where a text names a stem: ``phrase`` (lower case, as written: "the kick" gives "kick"),
    ``stem`` (the session's name for it) and the span ``start``–``end`` in the text."""

    phrase: str
    stem: str
    start: int
    end: int
    misspelt: bool = False

    @property
    def is_part(self) -> bool:
        """Whether the phrase names a part the stem holds ("kick" of the drums), not the stem itself."""
        own = " ".join(_words(self.stem))
        return not self.misspelt and self.phrase not in {own, own.rstrip("s"), own + "s"}


def mentions(text: str, stem_names: Sequence[str]) -> list[Mention]:
    """Every place ``text`` names a stem of the set, in order: names and aliases
    (:func:`mention_table`, longest phrase first) and misspellings (:func:`closest_stem`, words of
    four letters or more that are not words in their own right). With no stems loaded, the class
    words it uses (the class as the stem)."""
    lowered = text.casefold().replace("_", " ")  # "gtr_L" is said "gtr l", as mention_table spells it
    table = mention_table(stem_names) if stem_names else {alias: name for name, aliases in CLASS_ALIASES.items()
                                                          for alias in aliases}
    found: list[Mention] = []
    taken = [False] * len(lowered)
    for phrase in sorted(table, key=len, reverse=True):
        for match in re.finditer(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])", lowered):
            if not any(taken[match.start():match.end()]):
                found.append(Mention(phrase, table[phrase], match.start(), match.end()))
                taken[match.start():match.end()] = [True] * (match.end() - match.start())
    if stem_names:
        for match in re.finditer(r"[a-z][a-z0-9]{3,}", lowered):
            if any(taken[match.start():match.end()]) or match.group() in NOT_MISSPELLINGS:
                continue
            close = closest_stem(match.group(), stem_names) or _closest_alias(match.group(), table)
            if close is not None:
                found.append(Mention(match.group(), close, match.start(), match.end(), misspelt=True))
    return sorted(found, key=lambda m: m.start)


def _closest_alias(word: str, table: dict[str, str]) -> str | None:
    """The stem of the one-word alias ``word`` is a misspelling of ("paino" → the piano's stem), if one stem only."""
    words = [phrase for phrase in table if " " not in phrase and len(phrase) >= 4 and phrase[0] == word[0]]
    close = difflib.get_close_matches(word, words, n=3, cutoff=0.8)
    found = {table[phrase] for phrase in close}
    return found.pop() if len(found) == 1 else None


def mentioned_stems(text: str, stem_names: Sequence[str]) -> list[str]:
    """The stems ``text`` names (:func:`mentions`), each once, in order of first appearance."""
    return list(dict.fromkeys(m.stem for m in mentions(text, stem_names)))


def missing_instruments(text: str, stem_names: Sequence[str], *, found: Sequence[Mention] | None = None) -> list[str]:
    """Instrument words in ``text`` that no stem of the set holds ("the strings" in a session of
    vocals, drums and bass); the words of a class no stem belongs to count too (a class two stems
    share is ambiguous, not missing). ``found``: the text's :func:`mentions`, when the caller has them."""
    lowered = text.casefold()
    table = mention_table(stem_names)
    if found is None:
        found = mentions(text, stem_names)
    held = {m.phrase for m in found}
    present = {stem_class(name) for name in stem_names}
    words = [*OTHER_INSTRUMENTS, *(alias for name, aliases in CLASS_ALIASES.items() if name not in present
                                  and name != "other" for alias in aliases if len(alias) > 2)]
    missing: list[str] = []
    spans: list[tuple[int, int]] = [(m.start, m.end) for m in found]
    for word in sorted(words, key=len, reverse=True):
        if word in table or word in held:
            continue
        for match in re.finditer(rf"(?<![\w-]){re.escape(word)}(?![\w-])", lowered):
            if not any(start < match.end() and match.start() < end for start, end in spans):
                missing.append(word)
                spans.append((match.start(), match.end()))
    return list(dict.fromkeys(missing))


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
