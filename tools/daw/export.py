"""Advice into a DAW: fader moves planned per track, written into a **new** project or a table.

* :func:`plan_fader_moves` turns advice (stem → dB) into fader changes: relative to where each
  fader is now, limited to the DAW's range (said when a move would pass it, from the same rounded
  values it prints), the master moved by the advice's master offset and headroom trim when asked.
* :func:`write_project` writes them into a new project that differs from the input only in the
  characters of those fader values; :func:`write_fader_table` writes them as CSV or JSON for any
  other DAW.

A stem's track is found as the mapping finds it (:func:`~faderwise.tools.daw.mapping.track_for_stem`:
by the track's number first, then its name) or by the map file; a change names its track by
number and label (``SEND (track 3)``) and moves exactly that track's fader.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from faderwise.tools.daw.mapping import db_text, map_file_for, map_hint, read_stem_map, track_for_stem, vca_text
from faderwise.tools.daw.model import MASTER, Project, Track, db_to_gain
from faderwise.tools.errors import OutputExistsError, ProjectError
from faderwise.tools.json_files import write_json
from faderwise.tools.outputs import check_target, output_file, write_text

FADER_MOVES_FORMAT = "faderwise.fader-moves/2"
TABLE_COLUMNS = ("stem", "track_number", "track", "current_db", "move_db", "new_db")
LIMIT_TOLERANCE_DB = 0.05
"""A fader that lands within this of the DAW's top is where it was sent (printed to 0.1 dB, a
6.01 dB move to +6.0 dB is not "limited, 0.0 dB short")."""


@dataclass(frozen=True)
class FaderChange:
    """One fader's move: ``stem`` (``None`` for the master), its track (``number``, 0 for the
    master, and ``track``, its label), where the fader is now (``current_db``, ``None`` without a
    project), the advised ``move_db``, and where it goes (``new_db``; limited to the DAW's range
    when ``limited``)."""

    stem: str | None
    track: str
    current_db: float | None
    move_db: float
    new_db: float | None
    limited: bool = False
    number: int | None = None

    def to_json(self) -> dict[str, object]:
        def number(value: float | None) -> float | None:
            return None if value is None or value == -math.inf else round(value, 3)
        return {"stem": self.stem, "track_number": self.number, "track": self.track,
                "current_db": number(self.current_db), "move_db": round(self.move_db, 3),
                "new_db": number(self.new_db), "limited": self.limited}


@dataclass(frozen=True)
class FaderPlan:
    """The fader changes one advice makes in one project (or, without one, per stem)."""

    project: Project | None
    changes: tuple[FaderChange, ...]
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"format": FADER_MOVES_FORMAT, "relative": True,
                "project": str(self.project.path) if self.project else None,
                "daw": self.project.daw if self.project else None,
                "moves": [change.to_json() for change in self.changes], "warnings": list(self.warnings)}


def _mapped_tracks(project: Project, map_file: str | os.PathLike[str] | None) -> dict[str, Track]:
    """The map file's tracks by their stem file's name (casefolded); empty without a map file."""
    explicit_file = map_file_for(project, map_file)
    if explicit_file is None:
        return {}
    return {file.stem.casefold(): project.track(number)
            for number, file in read_stem_map(explicit_file, project).items() if file is not None}


def _track_of(stem: str, project: Project, mapped: Mapping[str, Track], *, where: str) -> Track:
    """The track whose fader moves ``stem``: the map file's track for a file called ``stem``
    (``mapped``, from :func:`_mapped_tracks`), else the one track named like it.

    Raises:
        ProjectError: no track (or several) named like ``stem``.
    """
    if stem.casefold() in mapped:
        return mapped[stem.casefold()]
    track = track_for_stem(stem, project, where=where)
    if track is None:
        listed = ", ".join(t.label for t in project.tracks[:40]) + (
            f", … ({len(project.tracks)} in all)" if len(project.tracks) > 40 else "")
        raise ProjectError(f"{where}: moves the stem {stem!r}, but no track of {project.source} is named like it "
                           f"(tracks: {listed}); map it {map_hint(project)}")
    return track


def plan_fader_moves(moves: Mapping[str, float], *, project: Project | None,
                     map_file: str | os.PathLike[str] | None = None, master_db: float = 0.0,
                     where: str = "advice") -> FaderPlan:
    """The fader changes for ``moves`` (stem → dB, relative to the stems as bounced) in
    ``project``: each track's fader from where it is by the move, at most the DAW's top
    (:attr:`Project.max_gain_db`, or the fader's own level when it is higher already; the warning
    says by how much a move was cut). ``master_db`` moves the master fader too. Without a
    project, the moves per stem (no current level).

    Raises:
        ProjectError: a stem with no track; two stems on one track.
    """
    if project is None:
        return FaderPlan(None, tuple(FaderChange(stem, stem, None, move, None) for stem, move in moves.items()))
    if moves and not project.tracks:
        raise ProjectError(f"{project.path}: has no tracks (only a master)")
    changes: list[FaderChange] = []
    warnings: list[str] = []
    taken: dict[int, str] = {}
    mapped = _mapped_tracks(project, map_file) if moves else {}  # read once, not once per stem
    targets: list[tuple[str | None, Track, float]] = [
        (stem, _track_of(stem, project, mapped, where=where), move) for stem, move in moves.items()]
    if master_db and project.master is not None:
        targets.append((None, project.master, master_db))
    elif master_db:
        warnings.append(f"{project.source} states no master fader: the master's {master_db:+.1f} dB is not written; "
                        f"set it in {project.daw_name}")
    for stem, track, move in targets:
        if track.number in taken:
            raise ProjectError(f"{where}: the stems {taken[track.number]!r} and {stem!r} both move track "
                               f"{track.number} {track.name!r}")
        taken[track.number] = str(stem)
        current = track.gain_db
        if current == -math.inf:
            warnings.append(f"{track.label}: its fader is at -inf dB, so a relative move leaves it silent; left as it is")
            continue
        target = current + move
        top = max(project.max_gain_db, current)  # a fader already above the default top shows a wider range
        limited = target > top + LIMIT_TOLERANCE_DB
        new = top if limited else min(target, top)
        if limited:
            warnings.append(f"{track.label}: {db_text(current)} dB {move:+.1f} dB would be {target:+.1f} dB, past "
                            f"{project.daw_name}'s {top:+.0f} dB fader maximum: set to {top:+.1f} dB, "
                            f"{target - new:.1f} dB short")
        if track.automated:
            warnings.append(f"{track.label}: its volume automation plays back and overrides the fader; move the "
                            f"automation by {move:+.1f} dB instead")
        if track.mute and track.kind != MASTER:
            warnings.append(f"{track.label}: is muted in {project.daw_name}")
        changes.append(FaderChange(stem, track.label, current, move, new, limited=limited, number=track.number))
    return FaderPlan(project, tuple(changes), tuple(warnings))


RELATIVE_NOTE = "fader moves are relative: each fader moves by the advised dB from where it is now"


def change_lines(plan: FaderPlan) -> list[str]:
    """One line per change: ``Vocals (stem vocals): +3.0 dB → +0.5 dB (move -2.5 dB)``."""
    lines = []
    for change in plan.changes:
        stem = "" if change.stem in (None, change.track) else f" (stem {change.stem})"
        if change.current_db is None or change.new_db is None:
            lines.append(f"{change.track}{stem}: move {change.move_db:+.1f} dB")
            continue
        limited = " (limited)" if change.limited else ""
        track = plan.project.track(change.number) if plan.project is not None and change.number is not None else None
        vca = f"; {vca_text(track)}" if track is not None and track.vcas else ""
        lines.append(f"{change.track}{stem}: {db_text(change.current_db)} dB → {db_text(change.new_db)} dB "
                     f"(move {change.move_db:+.1f} dB{vca}){limited}")
    return lines or ["no fader moves"]


def project_text_with(plan: FaderPlan) -> str:
    """The project's text with only the planned fader values replaced."""
    if plan.project is None:
        raise ProjectError("there is no project to write the fader moves into")
    project = plan.project
    text = project.text
    edits = []
    for change in plan.changes:
        track = project.track(int(change.number))  # type: ignore[arg-type]
        if track.span is None:
            raise ProjectError(f"{project.path}: {track.label} states no fader value (no VOLPAN line), so a "
                               f"copy cannot move it; open and save the project in {project.daw_name} once, then "
                               "export again")
        gain = db_to_gain(float(change.new_db)) if change.limited else track.gain * db_to_gain(change.move_db)
        edits.append((track.span, project.format_gain(min(gain, db_to_gain(max(project.max_gain_db, track.gain_db))))))
    for (start, end), value in sorted(edits, reverse=True):
        text = text[:start] + value + text[end:]
    return text


def write_project(plan: FaderPlan, out: str | os.PathLike[str], *, force: bool = False) -> Path:
    """A **new** project file ``out`` (same DAW and suffix) with the planned faders moved; every
    other byte as in the input, which is never written.

    Raises:
        ProjectError: ``out`` has another suffix than the project.
        OutputError: ``out`` may not be written (exists, is the input…).
    """
    if plan.project is None:
        raise ProjectError("there is no project to write the fader moves into")
    out = Path(out)
    suffix = plan.project.path.suffix
    if out.suffix.casefold() != suffix.casefold():
        raise ProjectError(f"{out}: a {plan.project.daw_name} project must end in {suffix}")
    check_target(out, folder=False, force=force, inputs=[plan.project.path])
    data = project_text_with(plan).encode("utf-8", "surrogateescape")
    with output_file(out, force=force, inputs=[plan.project.path]) as staging:
        staging.write_bytes(data)
    return out


MAX_EXPORTS = 99


def write_project_beside(plan: FaderPlan) -> Path:
    """:func:`write_project` into ``SONG-faderwise-NN`` (same suffix) beside the project, the first
    number free: beside it, REAPER finds the media by the same relative paths and Ardour takes it
    as a snapshot of the same session."""
    if plan.project is None:
        raise ProjectError("there is no project to write the fader moves into")
    source = plan.project.path
    for number in range(1, MAX_EXPORTS + 1):
        out = source.with_name(f"{source.stem}-faderwise-{number:02d}{source.suffix}")
        if out.exists() or out.is_symlink():
            continue
        try:
            return write_project(plan, out)
        except OutputExistsError:
            if not out.exists():
                raise
    raise OutputExistsError(f"{source.parent}: every {source.stem}-faderwise-NN{source.suffix} up to "
                            f"{MAX_EXPORTS} is taken; move some away")


def fader_table_csv(plan: FaderPlan) -> str:
    """The plan as CSV: ``stem, track_number, track, current_db, move_db, new_db`` (dB to 0.01;
    empty when unknown)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TABLE_COLUMNS)
    for change in plan.changes:
        row = change.to_json()
        writer.writerow(["" if row[column] is None else (f"{row[column]:.2f}" if isinstance(row[column], float)
                                                          else row[column]) for column in TABLE_COLUMNS])
    return buffer.getvalue()


def write_fader_table(plan: FaderPlan, out: str | os.PathLike[str], *, table_format: str,
                      force: bool = False) -> Path:
    """The plan as ``csv`` or ``json`` (:data:`FADER_MOVES_FORMAT`) at ``out``, through the guarded writer."""
    if table_format == "json":
        return write_json(out, plan.to_json(), force=force)
    return write_text(out, fader_table_csv(plan), force=force)
