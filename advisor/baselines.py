"""Advisors that hear Version A only — the baselines of the research question (does hearing B help?).

* :class:`SingleMixAdvisor` moves each stem toward typical levels for its class (the prior in
  ``prior.json``, with its provenance).
* :class:`EqualLoudnessAdvisor` is the classic automatic-mixing baseline: every stem equally loud.

Both keep the mix as loud as it was and ignore any reference they are given.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

from faderwise.advisor.balance import moves_toward
from faderwise.advisor.evidence import stem_evidence
from faderwise.advisor.explain import instruction, is_leave, join, leave_sentence
from faderwise.advisor.model import Advice, GainMove
from faderwise.advisor.stem_names import require_stems, stem_class
from faderwise.tools.analysis import ProgressCallback, StemSetAnalysis, analyze_stem_set, json_number
from faderwise.tools.bundle import ABBundle
from faderwise.tools.loudness import integrated_loudness
from faderwise.tools.stem_files import StemSource

# Without a reference, a move is a guess about taste: the range says so.
BASELINE_HALF_WIDTH_DB = 3.0


@dataclass(frozen=True)
class Prior:
    """Typical stem-to-mix loudness (LU) per stem class, and where the numbers come from."""

    stem_to_mix_lu: Mapping[str, float]
    provenance: str

    @classmethod
    def bundled(cls) -> Prior:
        payload = json.loads(resources.files("faderwise.advisor").joinpath("prior.json").read_text(encoding="utf-8"))
        return cls(stem_to_mix_lu=payload["stem_to_mix_lu"], provenance=payload["provenance"])


def _class_targets(analysis: StemSetAnalysis, prior: Prior) -> dict[str, float]:
    """Target stem-to-mix level per stem; stems sharing a class share its power (−10·log10 k)."""
    classes = {name: stem_class(name) for name in analysis.stems}
    counts: dict[str, int] = {}
    for found in classes.values():
        if found is not None:
            counts[found] = counts.get(found, 0) + 1
    return {
        name: prior.stem_to_mix_lu[found] - 10 * math.log10(counts[found])
        for name, found in classes.items() if found is not None and found in prior.stem_to_mix_lu
    }


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
    """Moves toward typical relative levels per stem class, from Version A alone."""

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
        """Advice from an analysis of A already made (the chat agent keeps its measurements)."""
        wanted = require_stems(stems, list(analysis.stems), label=analysis.label) if stems else list(analysis.stems)
        intro = ("No reference was used, so these moves come from your mix alone, toward typical levels for each "
                 "kind of stem: a looser guide than a reference.")
        return _baseline_advice(self.name, analysis, _class_targets(analysis, self.prior), wanted, intro,
                                "where a typical {stem} stem sits near {target:+.1f} LU")

    def advise_bundle(self, bundle: ABBundle) -> Advice:
        """Advice for the bundle's target from its Version A clips (target, backing) alone; the
        prior's level is shared among the stems of A of the same class, as for a whole stem set."""
        found = stem_class(bundle.target)
        target_lu = None
        if found is not None and found in self.prior.stem_to_mix_lu:
            sharing = sum(stem_class(name) == found for name in bundle.stems_a) or 1
            target_lu = self.prior.stem_to_mix_lu[found] - 10 * math.log10(sharing)
        return _bundle_advice(self.name, bundle, target_lu, "where a typical {stem} stem sits near {target:+.1f} LU")


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
