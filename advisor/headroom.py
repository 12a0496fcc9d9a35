"""Advice that would make the mix clip says so.

Raising stems raises the mix's peak. Before advice is shown, the moves are applied to Version A
(block by block) and the mix's sample and true peak measured; when the true peak passes the −1 dBTP
delivery ceiling, the advice names the master trim that brings it back, and ``apply --peak-safe``
(which lowers every stem alike, so the balance stays).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

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
    trim = headroom.get("master_trim_db") or 0.0
    if headroom.get("mix_true_peak_after_dbtp") is None or trim >= 0.0:
        return ""
    return (f"With these moves {_over_ceiling(headroom, trim)}, or apply with --peak-safe, which lowers every stem "
            "by the same amount and keeps the balance.")


def _over_ceiling(headroom: Mapping[str, object], trim_db: float) -> str:
    """"the mix peaks at +2.4 dBTP and clips, over the -1 dBTP ceiling: lower the master by 3.4 dB as well"."""
    true_peak, sample_peak = headroom.get("mix_true_peak_after_dbtp"), headroom.get("mix_sample_peak_after_dbfs")
    clips = isinstance(sample_peak, (int, float)) and sample_peak >= CLIP_DBFS
    peak = f"peaks at {true_peak:+.1f} dBTP{' and clips' if clips else ''}" if isinstance(true_peak, (int, float)) \
        else "passes the ceiling"
    return (f"the mix {peak}, over the {TRUE_PEAK_CEILING_DBTP:.0f} dBTP ceiling: lower the master by "
            f"{-trim_db:.1f} dB as well")


def _headroom(advice: Advice) -> Mapping[str, object]:
    """The advice's headroom facts (:func:`check_headroom`), empty when it was not checked."""
    headroom = advice.evidence.get("headroom") if isinstance(advice.evidence, Mapping) else None
    return headroom if isinstance(headroom, Mapping) else {}


def master_trim_db(advice: Advice) -> float:
    """The master trim (dB, 0 or less) the advice's headroom check names: what keeps the mix
    under the ceiling after the moves (0 when it was fine or not checked)."""
    trim = _headroom(advice).get("master_trim_db")
    return min(0.0, float(trim)) if isinstance(trim, (int, float)) and math.isfinite(trim) else 0.0


def master_move_db(advice: Advice) -> tuple[float, str | None]:
    """What a DAW's master fader moves by when the advice's master is carried over (``export
    --master``): the level every stem shared (:attr:`Advice.global_offset_db`), held so the mix
    stays under the ceiling after the moves — lowered by the headroom trim, and raised no further
    than the headroom left. The note says when the master offset was cut short (``None`` if not)."""
    true_peak = _headroom(advice).get("mix_true_peak_after_dbtp")
    if not isinstance(true_peak, (int, float)) or not math.isfinite(true_peak):
        return advice.global_offset_db + master_trim_db(advice), None
    room = TRUE_PEAK_CEILING_DBTP - true_peak  # what the master may rise by after the moves (negative: must fall)
    move = min(advice.global_offset_db, room)
    if move >= advice.global_offset_db or advice.global_offset_db <= 0:
        return move, None  # all the offset asks, or a trim down that the master line shows
    went = f"goes up {move:.1f} dB" if move > 0 else "stays at its level" if move == 0 else f"goes down {-move:.1f} dB"
    return move, (f"the master {went}, not {advice.global_offset_db:+.1f} dB as the reference's level asks: more "
                  f"would pass the {TRUE_PEAK_CEILING_DBTP:.0f} dBTP ceiling")


def clipping_warning(advice: Advice, *, remedy: str) -> str | None:
    """What to say where the advice goes into a DAW without its master (an export without
    ``--master``, a push): the mix would pass the ceiling; ``remedy`` names what to do there."""
    trim = master_trim_db(advice)
    return None if trim >= 0.0 else f"with these moves {_over_ceiling(_headroom(advice), trim)} ({remedy})"
