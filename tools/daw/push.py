"""Advice pushed to a running DAW: plan → dry run → apply → undo.

:func:`plan_push` reads the DAW's faders (:class:`~faderwise.tools.daw.osc.OscDaw`) and plans
the moves exactly as an exported project does
(:func:`~faderwise.tools.daw.project.plan_fader_moves`): the dry run is that plan, shown.
:func:`apply_push` sends it, reads the faders back to check that the DAW took each move, and
keeps a record of the levels before (``pushes/push-….json`` in faderwise's data folder, through
the guarded writer, before the first fader moves). :func:`undo_push` puts back the levels of the last push not undone yet, but
only on faders still where the push left them: a fader the producer moved since is left alone
and named.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from faderwise.tools.daw.export import FaderPlan, plan_fader_moves
from faderwise.tools.daw.osc import VERIFY_TOLERANCE_DB, OscDaw, levels_differing
from faderwise.tools.errors import FaderwiseError
from faderwise.tools.json_files import read_json, write_json
from faderwise.tools.outputs import check_target
from faderwise.tools.paths import data_dir

PUSH_FORMAT = "faderwise.push/1"
UNDO_FORMAT = "faderwise.push-undo/1"


class NothingToUndoError(FaderwiseError):
    """``push --undo`` with no push left to undo."""


class AlreadyPushedError(FaderwiseError):
    """The moves of the last push sent again onto the faders it already moved."""


def pushes_dir() -> Path:
    """Where push records are kept (the data folder's ``pushes``)."""
    return data_dir() / "pushes"


def _new_record_path(kind: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S-%f")
    return pushes_dir() / f"{kind}-{stamp}.json"


def plan_push(daw: OscDaw, moves: Mapping[str, float], *, map_file: str | os.PathLike[str] | None = None,
              where: str = "advice") -> FaderPlan:
    """The moves (stem → dB) as fader changes on the running DAW: nothing is sent."""
    return plan_fader_moves(moves, project=daw.faders(), map_file=map_file, where=where)


@dataclass(frozen=True)
class PushOutcome:
    """What an apply or undo did: the record written, the faders set (track label → dB), the
    faders that are not where they were sent (track label → dB now), and those left alone (undo)."""

    record: Path
    levels: Mapping[str, float]
    not_taken: Mapping[str, float]
    left_alone: Mapping[str, float]


def repeated_push(daw: OscDaw, plan: FaderPlan) -> Path | None:
    """The record of the last push to this DAW (not undone) when ``plan`` is the same moves on the
    same tracks and those faders are still where that push left them: pushing it again would move
    them twice."""
    try:
        path, record = last_push(daw.dialect.daw)
    except NothingToUndoError:
        return None
    if (record.get("host"), record.get("port")) != (daw.host, daw.port):
        return None
    pushed = {fader.get("number"): fader for fader in record.get("faders", [])}  # type: ignore[attr-defined]
    if not plan.changes or set(pushed) != {change.number for change in plan.changes}:
        return None
    for change in plan.changes:
        fader = pushed[change.number]
        if fader.get("pushed_db") is None or fader.get("move_db") is None or change.current_db is None:
            return None
        if abs(change.current_db - fader["pushed_db"]) > VERIFY_TOLERANCE_DB or \
                abs(change.move_db - fader["move_db"]) > VERIFY_TOLERANCE_DB:
            return None
    return path


def apply_push(daw: OscDaw, plan: FaderPlan, *, again: bool = False) -> PushOutcome:
    """Record ``plan`` (from :func:`plan_push` on this ``daw``), send it, and read back which faders
    are not where they were sent.

    Raises:
        AlreadyPushedError: the same moves were the last push and the faders are still there
            (:func:`repeated_push`), unless ``again``.
    """
    if plan.project is None or not plan.changes:
        raise FaderwiseError("the advice moves no fader of the DAW: nothing to push")
    repeated = None if again else repeated_push(daw, plan)
    if repeated is not None:
        raise AlreadyPushedError(f"{daw.where}: these moves were pushed already ({repeated}) and the faders are still "
                                 "where that push left them, so pushing again would move them twice; faderwise push "
                                 "--undo puts them back first, --again pushes anyway")
    levels = {int(change.number): float(change.new_db) for change in plan.changes}  # type: ignore[arg-type]
    labels = {int(change.number): change.track for change in plan.changes}  # type: ignore[arg-type]
    # The record is written before any fader moves: a push that fails halfway can still be undone
    # (a fader the push never reached is not where the record says it went, so undo leaves it alone).
    record = write_json(_new_record_path("push"), {
        "format": PUSH_FORMAT, "daw": daw.dialect.daw, "host": daw.host, "port": daw.port,
        "listen_port": daw.listen_port, "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "faders": [{"track": change.track, "number": change.number, "name": plan.project.track(int(change.number)).name,
                    "stem": change.stem,
                    "before_db": _finite(change.current_db), "move_db": round(change.move_db, 4),
                    "pushed_db": _finite(change.new_db)}
                   for change in plan.changes],
    })
    daw.set_levels(levels)
    not_taken = levels_differing(daw.faders(), levels)
    return PushOutcome(record, {labels[number]: db for number, db in levels.items()},
                       {labels[number]: db for number, db in not_taken.items()}, {})


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 4)


def last_push(daw: str) -> tuple[Path, dict[str, object]]:
    """The newest push record for ``daw`` that no undo record names.

    Raises:
        NothingToUndoError: there is none.
    """
    folder = pushes_dir()
    records = sorted(folder.glob("push-*.json")) if folder.is_dir() else []
    undone = {str(read_json(path, error=FaderwiseError).get("undoes"))  # type: ignore[union-attr]
              for path in (folder.glob("undo-*.json") if folder.is_dir() else [])}
    for path in reversed(records):
        record = read_json(path, error=FaderwiseError)
        if isinstance(record, dict) and record.get("format") == PUSH_FORMAT and record.get("daw") == daw \
                and path.name not in undone:
            return path, record
    raise NothingToUndoError(f"no push to {daw} left to undo (records in {folder})")


def undo_push(daw_name: str, *, host: str | None = None, port: int | None = None, listen_port: int | None = None,
              timeout: float = 2.0) -> PushOutcome:
    """Put back the faders of the last push to ``daw_name`` (at the host and ports it went to,
    unless given) that are still where it left them."""
    path, record = last_push(daw_name)
    target = check_target(_new_record_path("undo"), folder=False)  # refused before any fader moves
    faders = list(record.get("faders", []))  # type: ignore[call-overload]
    with OscDaw(daw_name, host or str(record["host"]), port or int(record["port"]),  # type: ignore[call-overload]
                listen_port=listen_port if listen_port is not None else record.get("listen_port"),  # type: ignore[arg-type]
                timeout=timeout) as daw:
        now = {track.number: track for track in daw.faders().tracks}
        restore: dict[int, float] = {}
        left_alone: dict[str, float] = {}
        labels: dict[int, str] = {}
        for fader in faders:
            number = fader.get("number")
            track = now.get(number)
            before = fader["before_db"]
            pushed = fader["pushed_db"]
            if track is None or before is None:
                continue
            labels[number] = str(fader["track"])
            # a track is its position: one renamed since (another track there now) is not put back
            same = track.name == str(fader.get("name", track.name))
            if same and pushed is not None and abs(track.gain_db - pushed) <= VERIFY_TOLERANCE_DB:
                restore[number] = float(before)
            else:
                left_alone[labels[number]] = track.gain_db
        daw.set_levels(restore)
        not_taken = levels_differing(daw.faders(), restore)
    restored = {labels[number]: db for number, db in restore.items()}
    write_json(target, {"format": UNDO_FORMAT, "undoes": path.name, "daw": daw_name,
                        "time": datetime.now(UTC).isoformat(timespec="seconds"),
                        "restored": [{"number": number, "track": labels[number], "db": db} for number, db in restore.items()],
                        "left_alone": {k: _finite(v) for k, v in left_alone.items()}})
    return PushOutcome(target, restored, {labels[number]: db for number, db in not_taken.items()}, left_alone)
