"""The measured differential advisor: compares Version A with a balanced Version B and says which
faders to move, by how much, and why.

Same material (A is B with different faders — the research setting): B is aligned to A in time,
then each stem's level difference A − B is estimated from its own band spectra over the frames
where it plays in both versions (an energy-weighted median of per-frame, per-band level ratios,
which shrugs off codec noise in a lossy B). A difference most stems share is the master level,
reported apart from the balance moves.

Different material (B is another song used as a reference): only relative balance can be compared
— each stem's level against the rest of its mix — and the advice says that it is looser.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from faderwise.advisor.balance import moves_toward
from faderwise.advisor.evidence import stem_evidence
from faderwise.advisor.explain import (
    backing_sentence,
    confidence_label,
    confidence_sentence,
    instruction,
    is_leave,
    join,
    leave_sentence,
    level_clause,
    masking_sentence,
    master_sentence,
    moment_sentence,
)
from faderwise.advisor.model import Advice, GainMove
from faderwise.advisor.stem_names import require_stems, stem_class
from faderwise.tools.align import Alignment, align_versions
from faderwise.tools.analysis import Measurement, ProgressCallback, StemSetAnalysis, json_number, measure
from faderwise.tools.bundle import ABBundle
from faderwise.tools.compare import analyze_pair, match_reference
from faderwise.tools.errors import StemSetError
from faderwise.tools.stem_files import StemSource

Material = Literal["auto", "same", "different"]
# Bands trusted for level ratios: below 50 Hz frames are too short to resolve, above 12.5 kHz
# a 128 kbps MP3 or AAC reference has been low-passed.
RATIO_BANDS_HZ = (50.0, 12_500.0)
CELL_RANGE_DB = 40.0  # cells this far under the stem's strongest cell are left out
MASTER_AGREEMENT_DB = 0.75  # stems whose differences lie this close share a master offset
MIN_HALF_WIDTH_DB = 0.1


@dataclass(frozen=True)
class LevelDifference:
    """How much louder a stem is in A than in B, with a likely range; ``nan`` when not measurable."""

    a_minus_b_db: float
    low_db: float
    high_db: float
    frames: int


def level_difference(a: Measurement, b: Measurement) -> LevelDifference:
    """Energy-weighted median of 10·log10(P_A / P_B) over the band-frame cells where the signal
    plays in both A and B (frames aligned, same rate). Range: ±2 standard errors from the
    weighted interquartile spread over the frames used, at least ±0.1 dB."""
    frames = min(a.bands.power.shape[0], b.bands.power.shape[0])
    playing = a.band_frames_active()[:frames] & b.band_frames_active()[:frames]
    centres = a.bands.centres_hz
    bands = (centres >= RATIO_BANDS_HZ[0]) & (centres <= RATIO_BANDS_HZ[1])
    power_a = a.bands.power[:frames][playing][:, bands]
    power_b = b.bands.power[:frames][playing][:, bands]
    if power_b.size == 0 or not np.any(power_b > 0):
        return LevelDifference(math.nan, math.nan, math.nan, 0)
    cells = (power_b >= power_b.max() * 10 ** (-CELL_RANGE_DB / 10)) & (power_a > 0)
    if not cells.any():
        return LevelDifference(math.nan, math.nan, math.nan, 0)
    # Band powers are averaged over channels; BS.1770 adds the channels' powers, so a mono B stem
    # and A's stereo bounce of it (−3 dB a side) compare equal only once each counts its channels.
    ratios = 10 * np.log10(power_a[cells] / power_b[cells]) + 10 * math.log10(a.bands.channels / b.bands.channels)
    weights = power_b[cells]
    q25, median, q75 = weighted_quantiles(ratios, weights, (0.25, 0.5, 0.75))
    used_frames = int(np.count_nonzero(cells.any(axis=1)))
    half = max(MIN_HALF_WIDTH_DB, 2 * (q75 - q25) / 1.349 / math.sqrt(used_frames))
    return LevelDifference(median, median - half, median + half, used_frames)


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, quantiles: Sequence[float]) -> list[float]:
    """Quantiles of ``values`` where each counts with its weight (interpolated on the weight CDF)."""
    order = np.argsort(values)
    values, weights = values[order], weights[order]
    cumulative = np.cumsum(weights) - 0.5 * weights
    cumulative /= weights.sum()
    return [float(np.interp(q, cumulative, values)) for q in quantiles]


def master_offset(differences: dict[str, float]) -> float:
    """The A − B difference most stems share (their master level), or 0 when no majority agrees.

    The largest group of stems within :data:`MASTER_AGREEMENT_DB` of each other sets it (mean of
    the group) if it holds more than half the stems; otherwise nothing is shared and every
    difference is balance. With one stem changed in a 4-stem song the other three agree on the
    master; two perturbed stems that happen to land close together are not a master move.
    """
    values = sorted(differences.values())
    best: list[float] = []
    for anchor in values:
        group = [v for v in values if anchor <= v <= anchor + MASTER_AGREEMENT_DB]
        if len(group) > len(best) or (len(group) == len(best) and abs(np.mean(group)) < abs(np.mean(best))):
            best = group
    if len(best) * 2 <= len(values) or len(best) < 2:
        return 0.0
    return float(np.mean(best))


def pair_by_class(version_a: StemSource, version_b: StemSource) -> dict[str, str]:
    """A stem → B stem for other material: same name first, else the one B stem of the same class."""
    pairs: dict[str, str] = {}
    for name in version_a.names:
        try:
            pairs[name] = version_b.resolve(name)
            continue
        except StemSetError:
            pass
        wanted = stem_class(name)
        matches = [other for other in version_b.names if wanted is not None and stem_class(other) == wanted]
        if len(matches) == 1:
            pairs[name] = matches[0]
    return pairs


@dataclass(frozen=True)
class PreparedPair:
    """A and B ready to be measured side by side.

    Attributes:
        version_a: A as given.
        version_b: B at A's rate; for same material also shifted in time and cut to A's length.
        alignment: how B lined up with A.
        same_material: whether B is treated as a re-balanced copy of A.
        pairs: A stem → B stem.
        warnings: what pairing the stems found worth saying.
    """

    version_a: StemSource
    version_b: StemSource
    alignment: Alignment
    same_material: bool
    pairs: dict[str, str]
    warnings: tuple[str, ...]


class MeasuredAdvisor:
    """Differential advice from measurements of A and B."""

    name = "measured"

    def __init__(self, *, material: Material = "auto", workers: int = 1,
                 on_progress: ProgressCallback | None = None) -> None:
        self.material = material
        self.workers = workers
        self.on_progress = on_progress

    def advise(self, version_a: StemSource, version_b: StemSource, *, stems: Sequence[str] | None = None) -> Advice:
        """Moves for every stem of A (or only ``stems``) toward the reference B, measured by
        ``self.workers`` processes (:func:`~faderwise.tools.analysis.analyze_stem_set`), reporting to
        ``self.on_progress``.

        Raises:
            StemSetError: a requested stem is not in A; for same material, a stem of A is
                missing from B.
        """
        prepared = self.prepare(version_a, version_b)
        analysis_a, analysis_b = analyze_pair(prepared.version_a, prepared.version_b, on_progress=self.on_progress,
                                              workers=self.workers, true_peaks=False)
        return self.advise_analyses(prepared, analysis_a, analysis_b, stems=stems)

    def prepare(self, version_a: StemSource, version_b: StemSource) -> PreparedPair:
        """Bring B to A's rate, align it in time, decide same or other material, pair the stems."""
        version_b = version_b.at_rate(version_a.rate)
        alignment = align_versions(version_a, version_b, workers=self.workers)
        same = self.material == "same" or (self.material == "auto" and alignment.same_material)
        if same:
            aligned = version_b.aligned(alignment.lag, version_a.n_samples)
            pairs, warnings = match_reference(version_a, aligned)
            return PreparedPair(version_a, aligned, alignment, True, pairs, warnings)
        return PreparedPair(version_a, version_b, alignment, False, pair_by_class(version_a, version_b), ())

    def advise_analyses(self, prepared: PreparedPair, analysis_a: StemSetAnalysis, analysis_b: StemSetAnalysis,
                        *, stems: Sequence[str] | None = None) -> Advice:
        """Advice from analyses of ``prepared.version_a`` and ``prepared.version_b``: a caller
        that keeps its measurements (the chat agent) does not measure twice."""
        version_a = prepared.version_a
        wanted = require_stems(stems, version_a.names, label=version_a.label) if stems else list(version_a.names)
        if prepared.same_material:
            return self._same_material(prepared, analysis_a, analysis_b, wanted)
        return self._other_material(prepared, analysis_a, analysis_b, wanted)

    def _same_material(self, prepared: PreparedPair, analysis_a: StemSetAnalysis, analysis_b: StemSetAnalysis,
                       wanted: list[str]) -> Advice:
        pairs, alignment = prepared.pairs, prepared.alignment
        differences = {
            name: level_difference(analysis_a.stems[name].stem, analysis_b.stems[name_b].stem)
            for name, name_b in pairs.items()
        }
        measurable = {name: d.a_minus_b_db for name, d in differences.items() if math.isfinite(d.a_minus_b_db)
                      and not analysis_a.stems[name].stem.silent and not analysis_b.stems[pairs[name]].stem.silent}
        master = master_offset(measurable)
        moves, sentences, leave, facts_by_stem = [], [], [], {}
        # The biggest moves first: they matter most to the balance.
        wanted = sorted(wanted, key=lambda n: -abs(measurable.get(n, master) - master))
        for name in wanted:
            stem_a, stem_b = analysis_a.stems[name], analysis_b.stems[pairs[name]]
            facts = stem_evidence(name, stem_a, stem_b)
            difference = differences[name]
            if stem_a.stem.silent or stem_b.stem.silent:
                facts["status"] = _silence_status(stem_a.stem.silent, stem_b.stem.silent)
                sentences.append(_silence_sentence(name, facts["status"]))
            elif name in measurable:
                balance = difference.a_minus_b_db - master
                delta, low, high = -balance, -(difference.high_db - master), -(difference.low_db - master)
                confidence = confidence_label((high - low) / 2)
                facts.update({"a_minus_b_db": json_number(difference.a_minus_b_db, 2),
                              "master_a_minus_b_db": json_number(master, 2), "move_db": json_number(delta, 2),
                              "range_db": [json_number(low, 2), json_number(high, 2)], "confidence": confidence,
                              "frames": difference.frames, "status": "measured"})
                if is_leave(delta):
                    leave.append(name)
                else:
                    moves.append(GainMove(stem=name, delta_db=delta, low_db=low, high_db=high))
                    sentences.append(join([
                        instruction(name, delta) + level_clause(difference.a_minus_b_db, facts),
                        backing_sentence(facts), moment_sentence(facts, delta),
                        masking_sentence(facts) if delta > 0 else "", confidence_sentence(low, high),
                    ]))
            else:
                facts["status"] = "no-overlap"
                sentences.append(f"The {name} never plays in A and B at the same time, so its level cannot be compared.")
            facts_by_stem[name] = facts
        if leave:
            sentences.append(leave_sentence(leave, "each is within 0.5 dB of the reference"))
        global_offset = 0.0 - master
        sentences.append(master_sentence(global_offset))
        evidence = {
            "mode": "same-material",
            "alignment": {"lag_ms": round(1000 * alignment.lag / analysis_a.rate, 1),
                          "correlation": round(alignment.correlation, 3)},
            "master_a_minus_b_db": json_number(master, 2),
            "mix_a_lufs": json_number(analysis_a.mix.integrated_lufs, 1),
            "mix_b_lufs": json_number(analysis_b.mix.integrated_lufs, 1),
            "warnings": list(prepared.warnings),
            "stems": facts_by_stem,
        }
        return Advice(advisor=self.name, moves=tuple(moves), text=join(sentences), evidence=evidence,
                      global_offset_db=global_offset)

    def _other_material(self, prepared: PreparedPair, analysis_a: StemSetAnalysis, analysis_b: StemSetAnalysis,
                        wanted: list[str]) -> Advice:
        pairs, alignment = prepared.pairs, prepared.alignment
        targets = {name: analysis_b.stems[name_b].stem_to_mix_lu for name, name_b in pairs.items()
                   if math.isfinite(analysis_b.stems[name_b].stem_to_mix_lu)}
        deltas = moves_toward({n: m.stem.integrated_lufs for n, m in analysis_a.stems.items()}, targets)
        sentences = [
            "The reference is another song, so this compares balance only (each stem against the rest of its "
            "mix), a looser comparison than a re-balanced copy of your own song."
        ]
        moves, leave, facts_by_stem = [], [], {}
        for name in sorted(wanted, key=lambda n: -abs(deltas.get(n, 0.0))):
            stem_a = analysis_a.stems[name]
            stem_b = analysis_b.stems[pairs[name]] if name in pairs else None
            facts = stem_evidence(name, stem_a, stem_b)
            facts["reference_stem"] = pairs.get(name)
            if name not in deltas:
                facts["status"] = "unpaired" if name not in pairs else "silent"
                sentences.append(f"The reference has no stem to compare the {name} with, so it is not judged."
                                 if name not in pairs else _silence_sentence(name, _silence_status(
                                     stem_a.stem.silent, stem_b.stem.silent if stem_b else True)))
            else:
                delta = deltas[name]
                # Another song's balance is a loose target: at least ±1.5 dB either way.
                low, high = delta - max(1.5, abs(delta) * 0.3), delta + max(1.5, abs(delta) * 0.3)
                facts.update({"move_db": json_number(delta, 2), "range_db": [json_number(low, 2), json_number(high, 2)],
                              "confidence": confidence_label((high - low) / 2), "status": "relative"})
                if is_leave(delta):
                    leave.append(name)
                else:
                    moves.append(GainMove(stem=name, delta_db=delta, low_db=low, high_db=high))
                    sentences.append(join([
                        instruction(name, delta) + f", toward the level the reference gives its {pairs[name]} within its mix.",
                        backing_sentence(facts), moment_sentence(facts, delta),
                        masking_sentence(facts) if delta > 0 else "", confidence_sentence(low, high),
                    ]))
            facts_by_stem[name] = facts
        if leave:
            sentences.append(leave_sentence(leave, "they sit close to the reference's balance"
                                            if len(leave) > 1 else "it sits close to the reference's balance"))
        evidence = {
            "mode": "different-material",
            "alignment": {"lag_ms": round(1000 * alignment.lag / analysis_a.rate, 1),
                          "correlation": round(alignment.correlation, 3)},
            "pairs": pairs,
            "stems": facts_by_stem,
        }
        return Advice(advisor=self.name, moves=tuple(moves), text=join(sentences), evidence=evidence)

    def advise_bundle(self, bundle: ABBundle) -> Advice:
        """Advice for the bundle's target stem from its four clips alone.

        The target's move undoes its A − B difference; the backing's own A − B difference is
        reported as evidence (non-zero when other stems or the master changed too).
        """
        target_a, target_b = measure(bundle.target_a, bundle.rate), measure(bundle.target_b, bundle.rate)
        backing_a, backing_b = measure(bundle.backing_a, bundle.rate), measure(bundle.backing_b, bundle.rate)
        target = level_difference(target_a, target_b)
        backing = level_difference(backing_a, backing_b)
        facts = {
            "target_a_minus_b_db": json_number(target.a_minus_b_db, 2),
            "backing_a_minus_b_db": json_number(backing.a_minus_b_db, 2),
            "level_a_lufs": json_number(target_a.integrated_lufs, 1),
            "level_b_lufs": json_number(target_b.integrated_lufs, 1),
            "window_a_s": list(bundle.window_a_s),
        }
        if not math.isfinite(target.a_minus_b_db):
            text = f"The {bundle.target} does not play in both clips, so its level cannot be compared."
            return Advice(advisor=self.name, moves=(), text=text, evidence={"mode": "bundle", "target": facts})
        delta = -target.a_minus_b_db
        move = GainMove(stem=bundle.target, delta_db=delta, low_db=-target.high_db, high_db=-target.low_db)
        if is_leave(delta):
            text = leave_sentence([bundle.target], "it is within 0.5 dB of the reference")
            moves: tuple[GainMove, ...] = ()
        else:
            text = join([instruction(bundle.target, delta) + level_clause(target.a_minus_b_db, facts),
                         confidence_sentence(move.low_db, move.high_db)])
            moves = (move,)
        if math.isfinite(backing.a_minus_b_db) and not is_leave(backing.a_minus_b_db):
            text += (f" The rest of the mix also differs: the backing is {abs(backing.a_minus_b_db):.1f} dB "
                     f"{'louder' if backing.a_minus_b_db > 0 else 'quieter'} in your mix than in the reference.")
        return Advice(advisor=self.name, moves=moves, text=text, evidence={"mode": "bundle", "target": facts})


def _silence_status(silent_a: bool, silent_b: bool) -> str:
    return "silent-both" if silent_a and silent_b else "silent-a" if silent_a else "silent-b"


def _silence_sentence(name: str, status: object) -> str:
    if status == "silent-a":
        return (f"The {name} plays in the reference but is silent in your mix: check that its track is unmuted "
                f"and its fader up.")
    if status == "silent-b":
        return f"The {name} is silent in the reference but plays in your mix: the reference leaves it out."
    return f"The {name} is silent in both versions."

