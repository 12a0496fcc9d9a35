"""Advisors that hear Version A only — the baselines of the research question (does hearing B help?).

* :class:`SingleMixAdvisor` compares each stem with where its kind of stem sits in real mixes (the
  prior in ``prior.json``: per-song levels of 144 MUSDB18 songs, with their source) and moves it only
  where it lies outside that range widened by :data:`MARGIN_LU`, to the nearest edge: the smallest
  move the evidence supports. Every other stem is left, said in words with its range.
* :class:`EqualLoudnessAdvisor` is the classic automatic-mixing baseline: every stem equally loud,
  the mix as loud as it was.

Both ignore any reference they are given.

A stem's level here is its loudness against *the rest of the mix* (the sum of the other stems, LU),
not against the whole mix: moving one stem leaves the rest as it is, so a stem that sits 3.0 LU
above the edge of its range lands on the edge after a 3.0 dB cut, and each sentence's figures add up
to its move. (Against the whole mix, the mix would drop with the stem and no figure would add up.)
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np

from faderwise.advisor.balance import moves_toward
from faderwise.advisor.evidence import stem_evidence
from faderwise.advisor.explain import (
    confidence_label,
    confidence_sentence,
    instruction,
    is_are,
    is_leave,
    is_plural,
    it_is,
    join,
    leave_sentence,
)
from faderwise.advisor.model import Advice, GainMove
from faderwise.advisor.stem_names import require_stems, stem_class
from faderwise.tools.analysis import (
    ProgressCallback,
    StemSetAnalysis,
    analyze_stem_set,
    json_number,
    level_difference,
)
from faderwise.tools.bundle import ABBundle
from faderwise.tools.loudness import integrated_loudness
from faderwise.tools.stem_files import StemSource

# Equal loudness: a move is a guess about taste, and its range says so.
BASELINE_HALF_WIDTH_DB = 3.0

TYPICAL_PERCENTILES = (5.0, 95.0)
"""The range a kind of stem takes in real mixes: the middle 9 in 10 of the songs measured
(percentiles of each song's stem-to-rest level), so that one odd song (a 7-second preview where the
bass barely plays, −38 LU) does not stretch it."""

MARGIN_LU = 3.0
"""How far (LU) outside that range a stem must lie before it is moved; the move brings it back to
the widened range's edge. Chosen on the 144 real mixes of the prior, each judged against the other
143 (one song left out at a time): with no margin 11 % of their balanced stems would be moved, with
1 LU 6.8 %, 2 LU 4.0 %, **3 LU 2.8 %**, 4 LU 2.3 %, 6 LU 1.4 %. With 1–3 stems of each song moved
by 1–12 dB, the every-stem error is 0.85 (2 LU) to 0.94 (6 LU) times changing nothing's; 3 LU (0.88)
is the smallest margin that moves fewer than 3 in 100 real, balanced stems."""

MIN_SONGS = 3
"""A range from fewer songs than this (two or fewer) moves nothing: too few to say what real mixes do."""

INTERVAL_COVERAGE = 0.95
"""What a move's interval claims: it holds the move that restores the balance this often. The
interval runs from leaving the stem (0 dB; its mix may simply be unusual) to the move that would
bring it to the far end of its kind's range; it held the truth 98 % of the time in the
leave-one-song-out simulation on the 144 real mixes (1–3 stems moved by 1–12 dB). Claimed: 95 %."""

KIND_WORDS = {"vocals": "vocal", "drums": "drum", "other": "'other'"}
"""A kind of stem as the words before "stems" say it (the rest as they are: "bass stems")."""


@dataclass(frozen=True)
class TypicalRange:
    """Where one kind of stem sits against the rest of the mix in real mixes: the middle 9 in 10 of
    ``songs`` songs, ``low_lu`` to ``high_lu`` (LU), measured on ``source``."""

    kind: str
    low_lu: float
    high_lu: float
    songs: int
    source: str

    @property
    def floor_lu(self) -> float:
        """The lowest a stem of this kind sits before it is raised (LU): the range less the margin."""
        return self.low_lu - MARGIN_LU

    @property
    def ceiling_lu(self) -> float:
        """The highest a stem of this kind sits before it is lowered (LU): the range plus the margin."""
        return self.high_lu + MARGIN_LU

    @property
    def kind_words(self) -> str:
        """"vocal", "bass", "'other'": the kind as the words before "stems" say it."""
        return KIND_WORDS.get(self.kind, self.kind)

    def described(self) -> str:
        """"9 in 10 of 144 real mixes, MUSDB18, sit within −6.7 to +1.2 LU; 3 LU margin added"."""
        return (f"9 in 10 of {self.songs} real mixes, {self.source}, sit within {self.low_lu:+.1f} to "
                f"{self.high_lu:+.1f} LU; {MARGIN_LU:g} LU margin added")


@dataclass(frozen=True)
class Prior:
    """Each song's stem-to-rest level (LU) per kind of stem, where the songs come from, and why the
    kinds without a range have none."""

    levels: Mapping[str, Mapping[str, float]]
    """kind → song → the song's stem of that kind against the rest of its mix (LU)."""
    song_sources: Mapping[str, str]
    """song → the short name of its source ("MUSDB18")."""
    unmeasured: Mapping[str, str]
    """kind → why no real mix was measured for it."""
    provenance: str

    @classmethod
    def bundled(cls) -> Prior:
        """The prior shipped in ``advisor/prior.json``."""
        text = resources.files("faderwise.advisor").joinpath("prior.json").read_text(encoding="utf-8")
        return cls.from_payload(json.loads(text))

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> Prior:
        """A prior from a ``faderwise.prior/2`` document (see ``prior.json``)."""
        sources: Mapping[str, Mapping[str, str]] = payload["sources"]  # type: ignore[assignment]
        songs: Sequence[Mapping[str, str]] = payload["songs"]  # type: ignore[assignment]
        names = [song["name"] for song in songs]
        levels = {kind: {name: float(value) for name, value in zip(names, columns["stem_to_rest_lu"])
                         if value is not None}
                  for kind, columns in payload["levels"].items()}  # type: ignore[attr-defined]
        provenance = " ".join(f"{source['what']} Read from {source['repository']} at {source['commit']} "
                              f"({source['path']}); {source['identity']} {source['licence']}"
                              for source in sources.values())
        return cls(levels=levels, song_sources={song["name"]: sources[song["source"]]["short"] for song in songs},
                   unmeasured=dict(payload.get("unmeasured", {})), provenance=provenance)  # type: ignore[arg-type]

    def without(self, songs: Iterable[str]) -> Prior:
        """This prior less ``songs``: a song judged against real mixes other than itself."""
        left_out = set(songs)
        return Prior(levels={kind: {song: level for song, level in by_song.items() if song not in left_out}
                             for kind, by_song in self.levels.items()},
                     song_sources=self.song_sources, unmeasured=self.unmeasured, provenance=self.provenance)

    def range_for(self, kind: str) -> TypicalRange | None:
        """The range of ``kind`` (None: no real mix measured has such a stem)."""
        by_song = self.levels.get(kind, {})
        if not by_song:
            return None
        low, high = np.percentile(list(by_song.values()), TYPICAL_PERCENTILES)
        sources = ", ".join(sorted({self.song_sources[song] for song in by_song}))
        return TypicalRange(kind=kind, low_lu=float(low), high_lu=float(high), songs=len(by_song), source=sources)


@dataclass(frozen=True)
class Judgement:
    """One stem against its kind's range.

    ``level_lu`` is the stem against the rest of the mix (LU); ``sharing`` how many stems of the set
    are of its kind: a stem that shares its kind may hold any part of the kind's level, so only the
    top of the range applies to it (it is never raised)."""

    stem: str
    level_lu: float
    range: TypicalRange
    sharing: int = 1

    @property
    def floor_lu(self) -> float | None:
        """The lowest the stem sits before it is raised (LU); None when it shares its kind (never raised)."""
        return self.range.floor_lu if self.sharing == 1 else None

    @property
    def edge_lu(self) -> float | None:
        """The widened range's edge the stem lies beyond (LU), or None inside."""
        if self.level_lu > self.range.ceiling_lu:
            return self.range.ceiling_lu
        floor = self.floor_lu
        return floor if floor is not None and self.level_lu < floor else None

    @property
    def move_db(self) -> float:
        """The gain (dB) that brings the stem to that edge, the rest of the mix as it is: edge − level."""
        edge = self.edge_lu
        return 0.0 if edge is None else edge - self.level_lu

    def interval_db(self) -> tuple[float, float]:
        """From leaving the stem (its mix may just be unusual) to the move that brings it to the far
        end of its kind's range (dB); for a stem that shares its kind with others, the far end of a cut
        is the range's bottom less an even share, 10·log10(stems of the kind). See :data:`INTERVAL_COVERAGE`."""
        move = self.move_db
        far = (self.range.low_lu - 10 * math.log10(self.sharing) if move < 0 else self.range.high_lu) - self.level_lu
        return (min(far, move, 0.0), max(far, move, 0.0))

    def confidence(self) -> str:
        """The confidence word of a move, from its interval's half-width (low for a leave: no reference)."""
        low, high = self.interval_db()
        return "low" if is_leave(self.move_db) else confidence_label((high - low) / 2)

    def facts(self) -> dict[str, object]:
        """JSON-ready: the level, the range and its widened edges, the move."""
        floor = self.floor_lu
        return {"stem_to_rest_lu": json_number(self.level_lu, 1),
                "typical_range_lu": [json_number(self.range.low_lu, 1), json_number(self.range.high_lu, 1)],
                "judged_range_lu": [None if floor is None else json_number(floor, 1),
                                    json_number(self.range.ceiling_lu, 1)],
                "range_songs": self.range.songs, "range_source": self.range.source, "sharing_kind": self.sharing,
                "move_db": json_number(self.move_db, 2), "confidence": self.confidence(),
                "status": "leave" if is_leave(self.move_db) else "outside"}

    def sentence(self) -> str:
        """The move, or the leave, in words whose figures add up: level − edge = the move."""
        level = round(self.level_lu, 1)
        where = f"against the rest of the mix {'they sit' if is_plural(self.stem) else 'it sits'} at {level:+.1f} LU"
        kind, top = self.range.kind_words, round(self.range.ceiling_lu, 1)
        if not is_leave(self.move_db):
            edge = round(self.edge_lu, 1)  # type: ignore[arg-type]
            above = self.move_db < 0
            return (f"{instruction(self.stem, self.move_db)}: {where}, {abs(level - edge):.1f} LU "
                    f"{'above' if above else 'below'} {edge:+.1f} LU, the {'top' if above else 'bottom'} of the range "
                    f"for {kind} stems ({self.range.described()})." + confidence_sentence(*self.interval_db()))
        leave = leave_sentence([self.stem], where)[:-1]
        if self.floor_lu is None:
            near = "below" if self.edge_lu is None else "within 0.5 LU of"
            return (f"{leave}, {near} {top:+.1f} LU, the top of the range for {kind} stems ({self.range.described()}); "
                    f"one of {self.sharing} {kind} stems, it may hold any share of their level, so only the top "
                    f"applies.")
        near = "inside" if self.edge_lu is None else "within 0.5 LU of"
        return (f"{leave}, {near} {round(self.floor_lu, 1):+.1f} to {top:+.1f} LU, the range for {kind} stems "
                f"({self.range.described()}).")


@dataclass(frozen=True)
class NotJudged:
    """A stem the single-mix advisor leaves without comparing it: the sentence that says why, and a
    one-word status for the evidence ("silent", "alone", "no-kind", "no-range", "too-few-songs")."""

    sentence: str
    status: str


INTRO = ("No reference was used, so each stem is compared with where its kind of stem sits against the rest of the "
         "mix in real mixes, and moved only where it lies outside that range, to its nearest edge; every other stem "
         "is left. A looser guide than a reference.")
TOGETHER = ("Each move is measured against the rest of the mix as it is now; made together, the moves change one "
            "another's surroundings, so measure again after making them.")


def kind_counts(stem_names: Iterable[str]) -> dict[str, int]:
    """Kind of stem → how many of ``stem_names`` are of it (the stems that share it)."""
    counts: dict[str, int] = {}
    for name in stem_names:
        kind = stem_class(name)
        if kind is not None:
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def range_or_reason(stem: str, kind: str | None, prior: Prior) -> TypicalRange | NotJudged:
    """The range ``stem`` (of ``kind``) is judged against, or why it has none to be judged against."""
    if kind is None:
        return NotJudged(f"The {stem} {is_are(stem)} not judged: the name does not say what kind of stem it is, so no "
                         f"range of real mixes applies.", "no-kind")
    found = prior.range_for(kind)
    if found is None:
        why = prior.unmeasured.get(kind, f"no real mix measured has a {kind} stem")
        return NotJudged(f"The {stem} {is_are(stem)} not judged: {why}.", "no-range")
    if found.songs < MIN_SONGS:
        mixes = "mix" if found.songs == 1 else "mixes"
        return NotJudged(f"The {stem} {is_are(stem)} not judged: the range for {found.kind_words} stems comes from only "
                         f"{found.songs} real {mixes}, too few to move it.", "too-few-songs")
    return found


def judge(stem: str, level_lu: float, *, silent: bool, sharing: Mapping[str, int],
          prior: Prior) -> Judgement | NotJudged:
    """``stem`` at ``level_lu`` against the rest of its mix (LU; ``nan`` when nothing else plays),
    against its kind's range; ``sharing``: kind → stems of the set of that kind."""
    if silent:
        return NotJudged(f"The {stem} {is_are(stem)} silent, so {it_is(stem)} not judged.", "silent")
    if not math.isfinite(level_lu):
        return NotJudged(f"Nothing else plays beside the {stem}, so {it_is(stem)} not judged.", "alone")
    kind = stem_class(stem)
    found = range_or_reason(stem, kind, prior)
    if isinstance(found, NotJudged):
        return found
    return Judgement(stem=stem, level_lu=level_lu, range=found, sharing=sharing.get(found.kind, 1))


def said(verdict: Judgement | NotJudged) -> tuple[str, GainMove | None, dict[str, object]]:
    """A verdict as its sentence, its move (None: leave) and its facts."""
    if isinstance(verdict, NotJudged):
        return verdict.sentence, None, {"status": verdict.status}
    move = None
    if not is_leave(verdict.move_db):
        low, high = verdict.interval_db()
        move = GainMove(stem=verdict.stem, delta_db=verdict.move_db, low_db=low, high_db=high)
    return verdict.sentence(), move, verdict.facts()


def spoken(verdicts: Sequence[Judgement | NotJudged]) -> tuple[tuple[GainMove, ...], str, list[dict[str, object]]]:
    """The moves, the text and each verdict's facts (in order) for the verdicts of one advice."""
    said_each = [said(verdict) for verdict in verdicts]
    moves = tuple(move for _, move, _ in said_each if move is not None)
    text = join([INTRO, *(sentence for sentence, _, _ in said_each), TOGETHER if len(moves) > 1 else ""])
    return moves, text, [facts for _, _, facts in said_each]


def prior_facts(prior: Prior) -> dict[str, object]:
    """How the ranges are made and where they come from, for the evidence."""
    return {"percentiles": list(TYPICAL_PERCENTILES), "margin_lu": MARGIN_LU, "min_songs": MIN_SONGS,
            "interval_coverage": INTERVAL_COVERAGE, "provenance": prior.provenance}


def _baseline_advice(name: str, analysis: StemSetAnalysis, targets: Mapping[str, float], wanted: Sequence[str],
                     intro: str, describe_target: str) -> Advice:
    deltas = moves_toward({n: m.stem.integrated_lufs for n, m in analysis.stems.items()}, targets)
    sentences, moves, leave, facts_by_stem = [intro], [], [], {}
    for stem in wanted:
        measured = analysis.stems[stem]
        facts = stem_evidence(stem, measured, None)
        if stem not in deltas:
            reason = "is silent" if measured.stem.silent else "has no typical level to compare with"
            sentences.append(f"The {stem} {reason}, so it is not judged.")
            facts["status"] = "silent" if measured.stem.silent else "no-prior"
        else:
            delta = deltas[stem]
            facts.update({"target_stem_to_mix_lu": json_number(targets[stem], 1), "move_db": json_number(delta, 2),
                          "confidence": "low", "status": "baseline"})
            if is_leave(delta):
                leave.append(stem)
            else:
                moves.append(GainMove(stem=stem, delta_db=delta, low_db=delta - BASELINE_HALF_WIDTH_DB,
                                      high_db=delta + BASELINE_HALF_WIDTH_DB))
                # Every stem moves at once and the mix keeps its loudness, so a stem does not land on its
                # target alone: say where it lands, so that the sentence's figures add up to its move.
                now = round(measured.stem_to_mix_lu, 1)
                sentences.append(
                    f"{instruction(stem, delta)}: this stem sits at {now:+.1f} LU against the mix, "
                    f"{describe_target.format(target=targets[stem], stem=stem)}; moved with the others toward that "
                    f"balance, the mix as loud as before, it lands near {now + round(delta, 1):+.1f} LU. Confidence: low."
                )
        facts_by_stem[stem] = facts
    if leave:
        sentences.append(leave_sentence(leave, "close to the target already"))
    return Advice(advisor=name, moves=tuple(moves), text=join(sentences),
                  evidence={"mode": name, "mix_a_lufs": json_number(analysis.mix.integrated_lufs, 1),
                            "stems": facts_by_stem})


def _bundle_advice(name: str, bundle: ABBundle, target_lu: float | None, describe_target: str) -> Advice:
    """Advice for the bundle's target from Version A's two clips alone: the target's level against
    A's mix (target + backing) moved to ``target_lu`` (None: no typical level for this stem)."""
    stem = bundle.target
    level = integrated_loudness(bundle.target_a, bundle.rate)
    mix = integrated_loudness(bundle.target_a + bundle.backing_a, bundle.rate)
    stem_to_mix = level - mix
    facts: dict[str, object] = {"stem_to_mix_lu": json_number(stem_to_mix, 1), "window_a_s": list(bundle.window_a_s)}
    if target_lu is None or not math.isfinite(stem_to_mix):
        reason = "has no typical level to compare with" if target_lu is None else "does not play in the clip"
        return Advice(advisor=name, moves=(), text=f"The {stem} {reason}, so it is not judged.",
                      evidence={"mode": "bundle", "target": facts})
    delta = target_lu - stem_to_mix
    facts.update({"target_stem_to_mix_lu": json_number(target_lu, 1), "move_db": json_number(delta, 2)})
    if is_leave(delta):
        return Advice(advisor=name, moves=(), text=leave_sentence([stem], "close to the target already"),
                      evidence={"mode": "bundle", "target": facts})
    move = GainMove(stem=stem, delta_db=delta, low_db=delta - BASELINE_HALF_WIDTH_DB,
                    high_db=delta + BASELINE_HALF_WIDTH_DB)
    text = (f"{instruction(stem, delta)}: this stem sits at {stem_to_mix:+.1f} LU against the mix, "
            f"{describe_target.format(target=target_lu, stem=stem)}. Confidence: low.")
    return Advice(advisor=name, moves=(move,), text=text, evidence={"mode": "bundle", "target": facts})


class SingleMixAdvisor:
    """Moves only the stems that lie outside the range their kind takes in real mixes, from Version A alone."""

    name = "single-mix"

    def __init__(self, prior: Prior | None = None, *, workers: int = 1,
                 on_progress: ProgressCallback | None = None) -> None:
        self.prior = prior or Prior.bundled()
        self.workers = workers
        self.on_progress = on_progress

    def advise(self, version_a: StemSource, version_b: StemSource | None = None, *,
               stems: Sequence[str] | None = None) -> Advice:
        """Advice for A; ``version_b`` is ignored by design (this is the no-reference baseline)."""
        analysis = analyze_stem_set(version_a, true_peaks=False, workers=self.workers, on_progress=self.on_progress,
                                    label="A")
        return self.advise_analysis(analysis, stems=stems)

    def advise_analysis(self, analysis: StemSetAnalysis, *, stems: Sequence[str] | None = None) -> Advice:
        """Advice from an analysis of A already made (the chat agent keeps its measurements): each
        stem against the rest of the mix (its backing), as measured."""
        wanted = require_stems(stems, list(analysis.stems), label=analysis.label) if stems else list(analysis.stems)
        sharing = kind_counts(analysis.stems)
        verdicts = [judge(stem, analysis.stems[stem].stem_to_backing_lu, silent=analysis.stems[stem].stem.silent,
                          sharing=sharing, prior=self.prior) for stem in wanted]
        moves, text, judged = spoken(verdicts)
        facts_by_stem = {stem: {**stem_evidence(stem, analysis.stems[stem], None), **facts}
                         for stem, facts in zip(wanted, judged)}
        return Advice(advisor=self.name, moves=moves, text=text,
                      evidence={"mode": self.name, "mix_a_lufs": json_number(analysis.mix.integrated_lufs, 1),
                                "stems": facts_by_stem, "prior": prior_facts(self.prior)})

    def advise_bundle(self, bundle: ABBundle) -> Advice:
        """Advice for the bundle's target from its Version A clips alone, judged as
        :meth:`advise_analysis` judges it: the target against its backing (the rest of A's mix),
        its kind shared with the other stems of A of that kind."""
        level = integrated_loudness(bundle.target_a, bundle.rate)
        backing = integrated_loudness(bundle.backing_a, bundle.rate)
        mix = integrated_loudness(bundle.target_a + bundle.backing_a, bundle.rate)
        verdict = judge(bundle.target, level_difference(level, backing), silent=not math.isfinite(level),
                        sharing=kind_counts(bundle.stems_a), prior=self.prior)
        moves, text, (facts,) = spoken([verdict])
        facts = {"stem_to_mix_lu": json_number(level_difference(level, mix), 1), **facts,
                 "window_a_s": list(bundle.window_a_s)}
        return Advice(advisor=self.name, moves=moves, text=text,
                      evidence={"mode": "bundle", "target": facts, "prior": prior_facts(self.prior)})


class EqualLoudnessAdvisor:
    """Every stem to the same loudness, the mix as loud as before."""

    name = "equal-loudness"

    def __init__(self, *, workers: int = 1, on_progress: ProgressCallback | None = None) -> None:
        self.workers = workers
        self.on_progress = on_progress

    def advise(self, version_a: StemSource, version_b: StemSource | None = None, *,
               stems: Sequence[str] | None = None) -> Advice:
        """Advice for A; ``version_b`` is ignored by design."""
        analysis = analyze_stem_set(version_a, true_peaks=False, workers=self.workers, on_progress=self.on_progress,
                                    label="A")
        return self.advise_analysis(analysis, stems=stems)

    def advise_analysis(self, analysis: StemSetAnalysis, *, stems: Sequence[str] | None = None) -> Advice:
        """Advice from an analysis of A already made."""
        wanted = require_stems(stems, list(analysis.stems), label=analysis.label) if stems else list(analysis.stems)
        targets = {name: 0.0 for name, m in analysis.stems.items() if not m.stem.silent}
        intro = "Equal-loudness baseline: every stem brought to the same loudness, keeping the mix as loud."
        return _baseline_advice(self.name, analysis, targets, wanted, intro, "and every stem is to be equally loud")

    def advise_bundle(self, bundle: ABBundle) -> Advice:
        """Advice for the bundle's target from its Version A clips: each of A's N stems equally
        loud puts every stem at −10·log10(N) LU against the mix."""
        target_lu = -10 * math.log10(max(1, len(bundle.stems_a)))
        return _bundle_advice(self.name, bundle, target_lu,
                              "and with {target:+.1f} LU every stem of the mix would be equally loud")
