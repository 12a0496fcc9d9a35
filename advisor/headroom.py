"""Advice that would make the mix clip says so.

Raising stems raises the mix's peak. Before advice is shown, the moves are applied to Version A
(block by block) and the mix's sample and true peak measured; when the true peak passes the −1 dBTP
delivery ceiling, the advice names the master trim that brings it back, and ``apply --peak-safe``
(which lowers every stem alike, so the balance stays).
"""

from __future__ import annotations

import dataclasses
import math

from faderwise.advisor.model import Advice
from faderwise.tools.analysis import CLIP_DBFS, TRUE_PEAK_CEILING_DBTP, json_number
from faderwise.tools.render import render_mix
from faderwise.tools.stem_files import StemSource


def check_headroom(advice: Advice, version_a: StemSource, *, workers: int = 1) -> Advice:
    """``advice`` with ``evidence["headroom"]`` (the mix's sample peak, dBFS, and true peak, dBTP,
    after the moves, and the master trim, dB, that keeps it under the ceiling) and, when the moves
    would push the mix over the ceiling, a sentence saying so.

    Args:
        advice: moves for stems of ``version_a``.
        version_a: the stems the moves apply to.
        workers: processes measuring the mix's peaks.
    """
    rendered = render_mix(version_a, gains_db=advice.gains_db(), workers=workers)
    true_peak, sample_peak = rendered.true_peak_dbtp, rendered.sample_peak_dbfs
    trim_db = min(0.0, TRUE_PEAK_CEILING_DBTP - true_peak) if math.isfinite(true_peak) else 0.0
    headroom = {"mix_sample_peak_after_dbfs": json_number(sample_peak, 2),
                "mix_true_peak_after_dbtp": json_number(true_peak, 2), "master_trim_db": round(trim_db, 2)}
    sentence = headroom_sentence(headroom) if advice.moves or trim_db < 0 else ""
    return dataclasses.replace(advice, text=f"{advice.text} {sentence}".strip(),
                               evidence={**advice.evidence, "headroom": headroom})


def headroom_sentence(headroom: dict[str, float | None]) -> str:
    """What the producer should know about the mix's peak after the moves ("" when it is fine)."""
    true_peak, sample_peak = headroom.get("mix_true_peak_after_dbtp"), headroom.get("mix_sample_peak_after_dbfs")
    trim = headroom.get("master_trim_db") or 0.0
    if true_peak is None or trim >= 0.0:
        return ""
    clips = sample_peak is not None and sample_peak >= CLIP_DBFS
    return (f"With these moves the mix peaks at {true_peak:+.1f} dBTP{' and clips' if clips else ''}, over the "
            f"{TRUE_PEAK_CEILING_DBTP:.0f} dBTP ceiling: lower the master by {-trim:.1f} dB as well, or apply with "
            "--peak-safe, which lowers every stem by the same amount and keeps the balance.")
