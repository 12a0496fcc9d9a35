"""What one chat session has loaded, measured and decided.

The :class:`Workspace` holds the stem sets (Version A as it stands now, the reference B), the
measurements made of them, the last advice, the stem the conversation is about, and the moves
already applied (a stack, so they can be undone). Audio is measured at most once per session:
analyses are cached under a fingerprint of the files they came from (path, size, modification
time), so asking again about unchanged audio costs nothing.

Only a small JSON snapshot (:meth:`Workspace.snapshot`) is kept in the session database; audio
and measurements are reloaded from the files when a session is resumed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from faderwise.advisor import Advice
from faderwise.advisor.faithful import faithful
from faderwise.advisor.headroom import clipping_warning
from faderwise.advisor.judge import Judge
from faderwise.advisor.measured import MeasuredAdvisor, PreparedPair
from faderwise.advisor.model import GainMove
from faderwise.advisor.registry import UnknownAdvisorError
from faderwise.advisor.service import AdviceService
from faderwise.advisor.stem_names import find_stem
from faderwise.tools.analysis import (
    CLIP_DBFS,
    TRUE_PEAK_CEILING_DBTP,
    ProgressCallback,
    StemSetAnalysis,
    analyze_stem_set,
    json_number,
    level_difference,
)
from faderwise.tools.bundle import ABBundle, make_bundle, write_bundle
from faderwise.tools.compare import Comparison, analyze_pair, compare_analyses
from faderwise.tools.daw.export import FaderPlan, plan_fader_moves, write_project, write_project_beside
from faderwise.tools.daw.mapping import StemMapping, open_stems_and_mapping
from faderwise.tools.daw.model import Project
from faderwise.tools.daw.project import is_project_file, read_project
from faderwise.tools.errors import FaderwiseError, OutputError, OutputExistsError, StemSetError
from faderwise.tools.json_files import plain_json
from faderwise.tools.outputs import command_inputs, output_identity, remove_output, slug
from faderwise.tools.remedies import CHAT, Remedies, remedies, remedies_for
from faderwise.tools.render import RenderedMix, mix_peaks, render_mix, write_render
from faderwise.tools.stem_files import StemSource, in_memory_if_small
from faderwise.tools.workers import both, default_workers

SNAPSHOT_FORMAT = "faderwise.workspace/1"
MAX_FOLDER_TRIES = 100
T = TypeVar("T")


MAX_OWN_MOVE_DB = 24.0
"""The largest own move a producer can set (dB either way), as :mod:`faderwise.advisor.parse` reads text."""


class NothingLoadedError(FaderwiseError):
    """A request that needs stems (or a reference, or advice) the session does not have yet."""


class BusyError(FaderwiseError):
    """A request that found the session still working on another one for longer than it may wait."""


__all__ = ["AppliedRender", "BusyError", "LoadedStems", "NothingLoadedError", "UnknownAdvisorError", "Workspace",
           "fingerprint", "load"]


@dataclass(frozen=True)
class LoadedStems:
    """A stem set and where it came from.

    Attributes:
        path: the folder or ``.stem.mp4`` it was loaded from (a render folder after an apply).
        stems: the audio.
        fingerprint: identifies the audio's files and their state on disk.
    """

    path: Path
    stems: StemSource
    fingerprint: str
    mapping: StemMapping | None = None
    """Which track each stem is, when ``path`` is a DAW project."""


@dataclass(frozen=True)
class AppliedRender:
    """One apply: the gains (dB per stem) rendered from ``source`` into ``folder``, and the advice
    they came from (restored by undo)."""

    gains_db: Mapping[str, float]
    folder: Path
    source: Path
    advice: Advice | None


def fingerprint(stem_set: StemSource, path: Path) -> str:
    """A digest of the set's files (path, size, modification time), the project or ``.stem.mp4`` it
    was opened from, and its sample rate: it changes when any file is rewritten, and is equal for a
    reload of unchanged files."""
    digest = hashlib.sha1(f"{path.resolve()}|{stem_set.rate}".encode())
    if path.is_file():  # a project (its faders set the stems' gains) or a .stem.mp4
        stat = os.stat(path)
        digest.update(f"|{stat.st_size}:{stat.st_mtime_ns}".encode())
    for name, source in sorted(stem_set.sources.items()):
        stat = os.stat(source)
        digest.update(f"|{name}={Path(source).resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def load(path: str | os.PathLike[str]) -> LoadedStems:
    """Load a stem set from a folder, a MUSDB18-HQ song folder, a ``.stem.mp4`` or a DAW project
    (its tracks' bounced stems, and the mapping); the path is kept
    absolute, so a session resumed from another folder finds the same files."""
    path = Path(os.path.abspath(Path(path).expanduser()))
    opened, mapping = open_stems_and_mapping(path)
    # A small set is decoded once and kept; a big one is read in blocks whenever a tool needs sound.
    stems = in_memory_if_small(opened)
    return LoadedStems(path=path, stems=stems, fingerprint=fingerprint(stems, path), mapping=mapping)


@dataclass
class Workspace:
    """The state of one session's audio; every method raises :class:`FaderwiseError` subclasses
    with a message fit to show the producer.

    Attributes:
        output_dir: where applied mixes are rendered (one new folder per apply).
        advisor_name: the advisor used when a request names none.
    """

    output_dir: Path
    advisor_name: str = "measured"
    judge: Judge | None = None
    """Who gives a second opinion (:func:`faderwise.advisor.judge.second_opinion`): None is the rubric;
    the session sets the language model's judge when one is configured."""
    alm_model: Path | None = None
    """The audio-language model that the advisor name ``alm`` means (default: the shipped small
    differential model; ``alm:FOLDER`` names another)."""
    version_a: LoadedStems | None = None
    original_a: LoadedStems | None = None
    version_b: LoadedStems | None = None
    advice: Advice | None = None
    focus: str | None = None
    applied: list[AppliedRender] = field(default_factory=list)
    measure_count: int = 0
    """How many stem sets were measured (a cache miss each); tests and the benchmark read it."""
    workers: int = field(default_factory=default_workers)
    """Processes (threads, for short sets) that measure a stem set: every core unless the config says
    otherwise (:func:`faderwise.tools.analysis.analyze_stem_set`)."""
    on_progress: ProgressCallback | None = field(default=None, repr=False)
    """Told how far a measurement is (the chat shows it), from the thread that measures."""
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _analyses: dict[tuple[str, ...], StemSetAnalysis] = field(default_factory=dict, repr=False)
    _prepared: dict[tuple[str, str], PreparedPair] = field(default_factory=dict, repr=False)
    _true_peaks: dict[tuple[str, str], float] = field(default_factory=dict, repr=False)
    remedies: Remedies = CHAT
    """The words of the front end this session serves, for what its errors tell the producer to do
    (:mod:`faderwise.tools.remedies`): the chat's, or the MCP server's."""
    inputs: tuple[Path, ...] = ()
    """More inputs than the audio loaded: files an output may never replace (the sessions database)."""
    wait_s: float | None = None
    """How long a request waits for another one to finish before it is refused as busy (None: as long
    as it takes; the MCP server sets a limit, so one slow call cannot stall every later one)."""
    outputs: dict[Path, tuple[int, ...]] = field(default_factory=dict)
    """What this session wrote (renders, bundles, plots, exports), in order, each with the identity it
    had when written (:func:`~faderwise.tools.outputs.output_identity`)."""
    _alm_answers: dict[tuple[str, str, str], Advice] = field(default_factory=dict, repr=False)
    _busy_with: str | None = field(default=None, repr=False)

    _service: AdviceService = field(default_factory=AdviceService, repr=False)

    @property
    def service(self) -> AdviceService:
        """The advice service (:mod:`faderwise.advisor.service`) with this session's workers and model: the
        one the command line and the MCP server use too. Its loaded models live as long as the session."""
        self._service.workers, self._service.alm_model = self.workers, self.alm_model
        return self._service

    # -- one request at a time ------------------------------------------------------------------

    @contextlib.contextmanager
    def request(self, what: str, *, on_progress: ProgressCallback | None = None) -> Iterator[None]:
        """Run one request (a tool call) on this session: alone (waiting at most :attr:`wait_s` for
        another to end), with its own register of inputs holding everything the session reads (so an
        output can never replace them, and a concurrent call's inputs are never this one's), in the
        words of the session's front end; ``on_progress``, if given, hears how far its measuring is.

        Raises:
            BusyError: another request held the session for longer than :attr:`wait_s`.
        """
        if not self.lock.acquire(timeout=-1 if self.wait_s is None else self.wait_s):
            raise BusyError(f"busy: this session is still working on {self._busy_with or 'another request'}; "
                            "try again when it ends")
        outer, outer_progress = self._busy_with, self.on_progress
        try:
            self._busy_with = outer or what
            if on_progress is not None:
                self.on_progress = on_progress
            with contextlib.ExitStack() as scope:
                scope.enter_context(command_inputs(*self.input_paths()))
                scope.enter_context(remedies_for(self.remedies))
                yield
        finally:
            self._busy_with, self.on_progress = outer, outer_progress
            self.lock.release()

    def input_paths(self) -> list[Path]:
        """Everything this session reads: the stems as first loaded and as they are now (their files and
        the folder, project or ``.stem.mp4`` they came from), the reference, and :attr:`inputs`."""
        paths: list[Path] = list(self.inputs)
        for loaded in (self.original_a, self.version_a, self.version_b):
            if loaded is not None:
                paths.append(loaded.path)
                paths.extend(Path(source) for source in loaded.stems.sources.values())
        return list(dict.fromkeys(paths))

    # -- loading -------------------------------------------------------------------------------

    def load_stems(self, path: str | os.PathLike[str]) -> LoadedStems:
        """Make ``path`` Version A; advice, focus and applied moves of the previous A are dropped."""
        loaded = load(path)
        self.version_a = self.original_a = loaded
        self.advice, self.focus, self.applied = None, None, []
        return loaded

    def set_reference(self, path: str | os.PathLike[str]) -> LoadedStems:
        """Make ``path`` the reference (Version B); the last advice is dropped."""
        loaded = load(path)
        self.version_b = loaded
        self.advice = None
        return loaded

    def load_pair(self, stems: str | os.PathLike[str], reference: str | os.PathLike[str]) -> None:
        """:meth:`load_stems` and :meth:`set_reference` at once (both or neither), a small set's
        decoding on two threads when there are workers."""
        self.set_loaded(*both(lambda: load(stems), lambda: load(reference), concurrently=self.workers > 1))

    def set_loaded(self, version_a: LoadedStems, version_b: LoadedStems | None = None) -> None:
        """Make stems loaded already (:func:`load`) Version A, and the reference if given: what a
        request that loaded them outside the session's lock does, all or nothing."""
        self.version_a = self.original_a = version_a
        if version_b is not None:
            self.version_b = version_b
        self.advice, self.focus, self.applied = None, None, []

    def require_a(self) -> LoadedStems:
        if self.version_a is None:
            raise NothingLoadedError(f"no stems loaded yet: load a folder of stems first ({remedies().load})")
        return self.version_a

    def require_b(self) -> LoadedStems:
        if self.version_b is None:
            raise NothingLoadedError(f"no reference loaded: set a balanced reference first ({remedies().reference})")
        return self.version_b

    # -- stems the conversation names -----------------------------------------------------------

    def resolve(self, word: str | None) -> str:
        """The stem of A that ``word`` names ("vox", "the kick", "vocls"), or the stem the
        conversation is about when ``word`` is empty; it becomes the focus.

        Raises:
            StemSetError: no stem, or more than one, matches (the message lists the stems).
            NothingLoadedError: no word and no stem talked about yet.
        """
        names = self.require_a().stems.names
        if not word or not word.strip():
            if self.focus is None:
                raise NothingLoadedError(f"which stem? This session has: {', '.join(names)}")
            return self.focus
        found = find_stem(word, names)
        if found is None:
            shown = word if len(word) <= 40 else word[:39] + "…"  # a model's runaway argument is not echoed whole
            raise StemSetError(f"no stem called {shown!r} in {self.require_a().path} (it has: {', '.join(names)})")
        self.focus = found
        return found

    # -- measurements ---------------------------------------------------------------------------

    def analysis_of(self, stem_set: StemSource, key: tuple[str, ...], *, label: str = "A") -> StemSetAnalysis:
        """``stem_set``'s analysis, measured once per ``key``. True peaks are left out (``nan``):
        only the measure tool reports them, for the stems it is asked about (:meth:`true_peaks`),
        and they would add a third to the first analysis the producer waits for."""
        if key not in self._analyses:
            self._analyses[key] = analyze_stem_set(stem_set, true_peaks=False, workers=self.workers,
                                                   on_progress=self.on_progress, label=label)
            self.measure_count += 1
        return self._analyses[key]

    def true_peaks(self, names: Sequence[str]) -> dict[str, float]:
        """True peak (dBTP) of each named stem of A and of its mix (key ``"mix"``), measured once each."""
        a = self.require_a()
        peaks = {}
        for name in [*names, "mix"]:
            key = (a.fingerprint, name)
            if key not in self._true_peaks:
                signal = a.stems if name == "mix" else a.stems.selected([name])  # a one-stem mix is the stem
                self._true_peaks[key] = mix_peaks(signal, {}, workers=self.workers)[1]
            peaks[name] = self._true_peaks[key]
        return peaks

    def _measure_pair(self) -> None:
        """Measure A and the aligned B when neither is cached yet, as one job for the progress shown."""
        a, prepared = self.require_a(), self.prepared()
        if (a.fingerprint,) in self._analyses or self._b_key(prepared) in self._analyses:
            return
        analysis_a, analysis_b = analyze_pair(a.stems, prepared.version_b, on_progress=self.on_progress,
                                              workers=self.workers, true_peaks=False)
        self._analyses[(a.fingerprint,)] = analysis_a
        self._analyses[self._b_key(prepared)] = analysis_b
        self.measure_count += 2

    def pair(self) -> tuple[PreparedPair, StemSetAnalysis, StemSetAnalysis]:
        """A and the aligned reference, and their analyses (measured together once)."""
        self._measure_pair()
        return self.prepared(), self.analysis_a(), self.analysis_b()

    def analysis_a(self) -> StemSetAnalysis:
        loaded = self.require_a()
        return self.analysis_of(loaded.stems, (loaded.fingerprint,))

    def prepared(self) -> PreparedPair:
        """A and B at one rate, B aligned in time to A (same material), stems paired."""
        a, b = self.require_a(), self.require_b()
        key = (a.fingerprint, b.fingerprint)
        if key not in self._prepared:
            self._prepared[key] = MeasuredAdvisor(workers=self.workers).prepare(a.stems, b.stems)
        return self._prepared[key]

    def _b_key(self, prepared: PreparedPair) -> tuple[str, ...]:
        version_b = prepared.version_b
        return (self.require_b().fingerprint, str(prepared.alignment.lag), str(version_b.n_samples),
                str(version_b.rate))

    def analysis_b(self) -> StemSetAnalysis:
        """The reference's analysis, aligned to the current A (cached per alignment)."""
        prepared = self.prepared()
        return self.analysis_of(prepared.version_b, self._b_key(prepared), label="B")

    def panel(self) -> list[dict[str, object]]:
        """One row per stem of A for the stems panel, from what has been measured so far (this
        never measures): ``stem``, ``a_lufs``, ``b_lufs``, ``a_minus_b_lu``, ``move_db``, ``focus``."""
        if self.version_a is None:
            return []
        analysis_a = self._analyses.get((self.version_a.fingerprint,))
        prepared = self._prepared.get((self.version_a.fingerprint, self.version_b.fingerprint)) \
            if self.version_b is not None else None
        analysis_b = self._analyses.get(self._b_key(prepared)) if prepared is not None else None
        moves = self.advice.gains_db() if self.advice is not None else {}
        rows: list[dict[str, object]] = []
        for name in self.version_a.stems.names:
            level_a = analysis_a.stems[name].stem.integrated_lufs if analysis_a else None
            paired = prepared.pairs.get(name) if prepared is not None else None
            level_b = analysis_b.stems[paired].stem.integrated_lufs if analysis_b and paired else None
            difference = level_difference(level_a, level_b) if level_a is not None and level_b is not None else None
            rows.append({"stem": name, "a_lufs": level_a, "b_lufs": level_b, "a_minus_b_lu": difference,
                         "move_db": moves.get(name), "focus": name == self.focus})
        return rows

    def comparison(self) -> Comparison:
        """A next to the aligned B, stem by stem."""
        prepared = self.prepared()
        self._measure_pair()
        return compare_analyses(self.analysis_a(), self.analysis_b(), prepared.pairs, warnings=prepared.warnings)

    # -- advice ---------------------------------------------------------------------------------

    def advise(self, *, advisor: str | None = None, on_progress: ProgressCallback | None = None) -> Advice:
        """Advice for every stem of the current A (:class:`~faderwise.advisor.service.AdviceService`); it
        becomes the session's pending advice.

        ``advisor`` names one (:mod:`faderwise.advisor.registry`); without it, the session's advisor
        when a reference is loaded, else one that judges A alone. The DSP advisors read the session's
        measurements; a model's answers are kept per model, A and B.
        """
        a, b = self.require_a(), self.version_b
        words = remedies()
        choice = self.service.choose(advisor or None, has_reference=b is not None, preferred=self.advisor_name,
                                     remedy=f"load a reference first ({words.reference})")
        stems_b = b.stems if b is not None and choice.kind.hears_reference else None
        if choice.kind.is_model:
            key = (self.service.model_key(choice), a.fingerprint,
                   b.fingerprint if stems_b is not None and b is not None else "")
            if key not in self._alm_answers:
                self._alm_answers[key] = self.service.advise(a.stems, stems_b, advisor=choice.spec,
                                                             on_progress=on_progress or self.on_progress)
            advice = self._alm_answers[key]
        else:
            advice = self.service.advise(a.stems, stems_b, advisor=choice.spec, measurements=self)
        self.advice = advice
        return advice

    def current_advice(self) -> Advice:
        """The pending advice, computed now if there is none."""
        return self.advice if self.advice is not None else self.advise()

    def forget(self, stem: str) -> Advice:
        """Drop ``stem``'s move from the pending advice (it will not be applied)."""
        return self.forget_moves([stem])

    def forget_moves(self, stems: Sequence[str]) -> Advice:
        """Drop the moves of ``stems`` from the pending advice (they will not be applied).

        Raises:
            StemSetError: one of them has no pending move (nothing is dropped).
        """
        advice = self.current_advice()
        for stem in stems:
            if advice.move_for(stem) is None:
                raise StemSetError(f"there is no pending move for the {stem} to forget")
        self.advice = faithful(dataclasses.replace(advice, moves=tuple(m for m in advice.moves if m.stem not in stems)),
                               self.require_a().stems.names)
        return self.advice

    def set_move(self, stem: str, delta_db: float) -> Advice:
        """The producer's own move for ``stem`` (dB, + raise) replaces the pending one: it is what
        apply renders, and the evidence keeps the advisor's move beside it (``own_moves``)."""
        advice = self.current_advice()
        if not -MAX_OWN_MOVE_DB <= delta_db <= MAX_OWN_MOVE_DB:
            raise StemSetError(f"{delta_db:+.1f} dB is beyond the ±{MAX_OWN_MOVE_DB:.0f} dB a fader move can mean")
        advised = advice.move_for(stem)
        own = dict(advice.evidence.get("own_moves") or {})
        own[stem] = {"delta_db": round(delta_db, 3),
                     "advised_db": round(advised.delta_db, 3) if advised is not None else
                     own.get(stem, {}).get("advised_db")}
        moves = [m for m in advice.moves if m.stem != stem]
        if abs(delta_db) > 0.0:
            moves.append(GainMove.exact(stem, delta_db))
        order = {name: index for index, name in enumerate(self.require_a().stems.names)}
        changed = dataclasses.replace(advice, moves=tuple(sorted(moves, key=lambda m: order.get(m.stem, 0))),
                                      evidence={**advice.evidence, "own_moves": own})
        self.advice = faithful(changed, list(order))  # the text states the producer's move, not the old one
        return self.advice

    def what_if(self, gains_db: Mapping[str, float]) -> dict[str, object]:
        """Where each stem of ``gains_db`` (dB, + raise) would sit after that change, against the
        reference and its backing, and the mix's peaks and loudness then (nothing is changed).

        Returns: JSON-ready ``stems`` (per stem: ``gain_db``, ``level_a_lufs`` now, ``level_after_lufs``,
        ``level_b_lufs`` and ``after_minus_b_lu`` when a reference is loaded, ``to_backing_a_lu`` now,
        ``to_backing_after_lu``, ``to_backing_b_lu``, ``advised_db``) and ``mix`` (``lufs_now``,
        ``true_peak_now_dbtp``, ``true_peak_after_dbtp``, ``sample_peak_after_dbfs``, ``clips``).
        """
        a = self.require_a()
        names = {a.stems.resolve(name): float(gain) for name, gain in gains_db.items()}
        for gain in names.values():
            if not -MAX_OWN_MOVE_DB <= gain <= MAX_OWN_MOVE_DB:
                raise StemSetError(f"{gain:+.1f} dB is beyond the ±{MAX_OWN_MOVE_DB:.0f} dB a fader move can mean")
        analysis = self.analysis_a()
        pairs = self.prepared().pairs if self.version_b is not None else {}
        analysis_b = self.analysis_b() if self.version_b is not None else None
        advice = self.advice
        rows: dict[str, dict[str, object]] = {}
        for name, gain in names.items():
            measured = analysis.stems[name]
            level = measured.stem.integrated_lufs
            row: dict[str, object] = {
                "gain_db": gain, "level_a_lufs": json_number(level, 2), "level_after_lufs": json_number(level + gain, 2),
                "to_backing_a_lu": json_number(measured.stem_to_backing_lu, 2),
                "to_backing_after_lu": json_number(measured.stem_to_backing_lu + gain, 2),
                "advised_db": (advice.move_for(name).delta_db if advice is not None and advice.move_for(name)
                               else (0.0 if advice is not None else None))}
            paired = pairs.get(name)
            if analysis_b is not None and paired is not None:
                in_b = analysis_b.stems[paired]
                row.update({"level_b_lufs": json_number(in_b.stem.integrated_lufs, 2),
                            "after_minus_b_lu": json_number(level_difference(level + gain, in_b.stem.integrated_lufs), 2),
                            "to_backing_b_lu": json_number(in_b.stem_to_backing_lu, 2)})
            rows[name] = row
        after = render_mix(a.stems, gains_db=names, workers=self.workers)
        now_peak = self.true_peaks([])["mix"]
        return {"stems": rows, "mix": {
            "lufs_now": json_number(analysis.mix.integrated_lufs, 2), "true_peak_now_dbtp": json_number(now_peak, 2),
            "true_peak_after_dbtp": json_number(after.true_peak_dbtp, 2),
            "sample_peak_after_dbfs": json_number(after.sample_peak_dbfs, 2),
            "clips": bool(after.clipped_samples) or after.sample_peak_dbfs >= CLIP_DBFS,
            "over_ceiling": after.true_peak_dbtp > TRUE_PEAK_CEILING_DBTP}}

    def group_levels(self, members: Sequence[str]) -> dict[str, object]:
        """``members`` summed as one (a group: "drums and bass together"), in A and in the reference,
        and against the rest of the mix (the group's backing), LUFS and LU.

        Returns: JSON-ready ``members``, ``a_lufs``, ``rest_a_lufs``, ``to_rest_a_lu`` and, with a
        reference, ``b_lufs``, ``rest_b_lufs``, ``to_rest_b_lu``, ``a_minus_b_lu``.

        Raises:
            StemSetError: fewer than two stems, or all of them (the group would be the mix).
        """
        a = self.require_a()
        names = list(dict.fromkeys(a.stems.resolve(name) for name in members))
        rest = [name for name in a.stems.names if name not in names]
        if len(names) < 2 or not rest:
            raise StemSetError(f"a group is two or more stems and not all of them (asked: {', '.join(names)}; "
                               f"the session has: {', '.join(a.stems.names)})")
        def level(source: StemSource, chosen: Sequence[str], key: tuple[str, ...], label: str) -> float:
            return self.analysis_of(source.selected(list(chosen)), key, label=label).mix.integrated_lufs
        group_a = level(a.stems, names, (a.fingerprint, "group", *names), "A")
        rest_a = level(a.stems, rest, (a.fingerprint, "group", *rest), "A")
        result: dict[str, object] = {"members": names, "a_lufs": json_number(group_a, 2),
                                     "rest_a_lufs": json_number(rest_a, 2),
                                     "to_rest_a_lu": json_number(level_difference(group_a, rest_a), 2)}
        if self.version_b is not None:
            prepared = self.prepared()
            in_b = [prepared.pairs[name] for name in names if name in prepared.pairs]
            rest_b = [name for name in prepared.version_b.names if name not in in_b]
            if len(in_b) == len(names) and rest_b:
                key = self._b_key(prepared)
                group_b = level(prepared.version_b, in_b, (*key, "group", *in_b), "B")
                other_b = level(prepared.version_b, rest_b, (*key, "group", *rest_b), "B")
                result.update({"b_lufs": json_number(group_b, 2), "rest_b_lufs": json_number(other_b, 2),
                               "to_rest_b_lu": json_number(level_difference(group_b, other_b), 2),
                               "a_minus_b_lu": json_number(level_difference(group_a, group_b), 2)})
        return result

    # -- applying -------------------------------------------------------------------------------

    def planned_gains(self, stems: Sequence[str] | None = None, *, master: bool = False) -> dict[str, float]:
        """The pending moves (only those of ``stems`` if given; with ``master`` the master offset on
        every stem), stem → dB."""
        return self.service.planned_gains(self.current_advice(), self.require_a().stems.names, stems=stems,
                                          master=master)

    def free_folder(self, prefix: str) -> Path:
        """``output_dir/<prefix>-NN``, with the first number not taken yet."""
        number = 1
        while os.path.lexists(self.output_dir / f"{prefix}-{number:02d}"):  # a dangling link takes its number too
            number += 1
        return self.output_dir / f"{prefix}-{number:02d}"

    def write_new(self, prefix: str, write: Callable[[Path], T]) -> T:
        """``write(folder)`` into :meth:`free_folder` ``(prefix)``; when another writer takes that
        number first (the guarded writer refuses to replace it), the next free one."""
        for _ in range(MAX_FOLDER_TRIES):
            folder = self.free_folder(prefix)
            try:
                return write(folder)
            except OutputExistsError:
                if not os.path.lexists(folder):
                    raise
        raise OutputExistsError(f"{self.output_dir}: every {prefix}-NN folder tried was taken while writing")

    def apply(self, gains_db: Mapping[str, float], *, peak_safe: bool = False, out: Path | None = None,
              force: bool = False) -> tuple[RenderedMix, Path]:
        """Render the current A with ``gains_db`` into a new folder (``out``, else ``output_dir/apply-NN``;
        ``force`` replaces an earlier faderwise render at ``out``); the render becomes Version A. With
        ``peak_safe`` every stem is trimmed alike so the mix peaks at the ceiling. The input audio is
        never touched."""
        source = self.require_a()
        rendered = self.service.render(source.stems, gains_db, peak_safe=peak_safe)  # peaks, then written by blocks
        if out is not None:
            written = write_render(rendered, out, force=force)
        else:
            written = self.write_new("apply", lambda folder: write_render(rendered, folder))
        self.record_output(written)
        self.applied.append(AppliedRender(gains_db=dict(gains_db), folder=written, source=source.path,
                                          advice=self.advice))
        self.version_a = load(written / "stems")
        self.advice = None
        return rendered, written

    def write_bundle(self, stem: str, *, out: Path | None = None, force: bool = False) -> tuple[ABBundle, Path]:
        """Write ``stem``'s A/B bundle (target and backing in A and B, where the target plays) into ``out``
        (``force`` replaces an earlier faderwise bundle there), else a new ``output_dir/bundle-STEM-NN``."""
        bundle = make_bundle(self.require_a().stems, self.require_b().stems, stem)
        if out is not None:
            written = write_bundle(bundle, out, force=force)
        else:
            written = self.write_new(f"bundle-{slug(stem) or 'stem'}", lambda folder: write_bundle(bundle, folder))
        self.record_output(Path(os.path.abspath(written)))
        return bundle, written

    def undo(self) -> AppliedRender:
        """Go back to the stems before the last apply; its advice is pending again. The render
        folder stays on disk."""
        if not self.applied:
            raise NothingLoadedError("nothing has been applied in this session, so there is nothing to undo")
        last = self.applied.pop()
        self.version_a = load(self.applied[-1].folder / "stems") if self.applied else self.original_a
        self.advice = last.advice
        return last

    # -- the DAW --------------------------------------------------------------------------------

    def project_moves(self) -> dict[str, float]:
        """What to carry into the project the stems were bounced from, stem → dB: every applied
        move added up, and the pending advice (computed now if there is none) on top."""
        moves = self.total_gains()
        pending = self.advice if self.advice is not None or self.applied else self.current_advice()
        for stem, gain in (pending.gains_db() if pending is not None else {}).items():
            moves[stem] = moves.get(stem, 0.0) + gain
        return moves

    def project_path(self, project: str | os.PathLike[str] | None) -> Path:
        """``project``, else the project Version A was first loaded from.

        Raises:
            NothingLoadedError: no project named and the stems came from a folder.
        """
        if project:
            return Path(os.path.abspath(Path(project).expanduser()))
        source = self.require_a() if self.original_a is None else self.original_a
        if is_project_file(source.path):
            return source.path
        raise NothingLoadedError(f"which project? The stems came from the folder {source.path}; name the REAPER "
                                 "(.RPP) or Ardour (.ardour) project they were bounced from")

    def export_project(self, project: str | os.PathLike[str] | None = None, *, read: Project | None = None,
                       out: Path | None = None, force: bool = False) -> tuple[FaderPlan, Path]:
        """The session's moves (:meth:`project_moves`) written into a new copy of ``project`` (default:
        the project A came from): ``out`` if given (``force`` replaces an earlier faderwise export there),
        else ``SONG-faderwise-NN.RPP`` beside it; the project is never written. ``read``: the project,
        read already (outside the session's lock: a request never holds it while reading a file)."""
        parsed = read if read is not None else read_project(self.project_path(project))
        plan = self.with_headroom_warning(plan_fader_moves(self.project_moves(), project=parsed,
                                                           where="this session's advice"))
        written = write_project(plan, out, force=force) if out is not None else write_project_beside(plan)
        self.record_output(written)
        return plan, written

    def with_headroom_warning(self, plan: FaderPlan) -> FaderPlan:
        """``plan`` with a warning when the pending advice's moves would push the mix over the
        ceiling: the trim its headroom check names is the producer's to make on the DAW's master
        (the chat and MCP move no master)."""
        if self.advice is None or plan.project is None:
            return plan
        warning = clipping_warning(self.advice, remedy=f"on {plan.project.daw_name}'s master; faderwise moves only "
                                                       "the tracks' faders here")
        return dataclasses.replace(plan, warnings=(*plan.warnings, warning)) if warning else plan

    # -- what the session wrote ---------------------------------------------------------------------

    def record_output(self, path: Path) -> None:
        """Remember ``path`` as written by this session (:meth:`remove_output` may remove it, only as
        it was written)."""
        self.outputs[Path(path)] = output_identity(path)

    def remove_output(self, path: str | os.PathLike[str]) -> Path:
        """Remove an output this session wrote, exactly as it was written.

        Raises:
            OutputError: not written by this session, changed since, or still needed (Version A now, or
                a render an undo goes back to).
        """
        target = Path(os.path.abspath(Path(path).expanduser()))
        if target not in self.outputs:
            raise OutputError(f"{path}: not written by this session; faderwise removes only what it wrote here")
        current = self.version_a.path if self.version_a is not None else None
        for step in self.applied:
            if step.folder == target:
                why = "it is Version A now" if current is not None and current.parent == target else \
                    "undo goes back through it"
                raise OutputError(f"{path}: {why}; undo the apply first")
        remove_output(target, self.outputs[target])
        del self.outputs[target]
        return target

    def total_gains(self) -> dict[str, float]:
        """Every applied move added up, stem → dB relative to the stems first loaded."""
        total: dict[str, float] = {}
        for step in self.applied:
            for stem, gain in step.gains_db.items():
                total[stem] = total.get(stem, 0.0) + gain
        return total

    def summary(self) -> str:
        """The session in a few lines, for a model that sees only the recent turns: what is
        loaded, what was applied, what is pending, which stem is being discussed."""
        a = self.version_a
        lines = [f"Version A: {a.path} ({len(a.stems.names)} stems: {', '.join(a.stems.names)}; "
                 f"{a.stems.duration_s:.1f} s)." if a else "No stems loaded (Version A)."]
        lines.append(f"Reference (Version B): {self.version_b.path}." if self.version_b else "No reference loaded.")
        if self.applied:
            lines.append("Applied so far: " + ", ".join(f"{stem} {gain:+.1f} dB"
                                                        for stem, gain in self.total_gains().items()) + ".")
        if self.advice is not None:
            pending = ", ".join(f"{m.stem} {m.delta_db:+.1f} dB" for m in self.advice.moves) or "none"
            lines.append(f"Pending moves ({self.advice.advisor}): {pending}.")
        if self.focus:
            lines.append(f"Talking about: {self.focus}.")
        return " ".join(lines)

    # -- persistence ----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, object]:
        """What a resumed session needs, as JSON: absolute paths and fingerprints of what was
        loaded and rendered, focus, applied moves and pending advice."""
        return plain_json({  # type: ignore[return-value]
            "format": SNAPSHOT_FORMAT,
            "stems": str(self.original_a.path) if self.original_a else None,
            "stems_fingerprint": self.original_a.fingerprint if self.original_a else None,
            "reference": str(self.version_b.path) if self.version_b else None,
            "reference_fingerprint": self.version_b.fingerprint if self.version_b else None,
            "advisor": self.advisor_name,
            "focus": self.focus,
            "advice": self.advice.to_json() if self.advice else None,
            "applied": [{"gains_db": dict(step.gains_db), "folder": str(step.folder), "source": str(step.source),
                         "advice": step.advice.to_json() if step.advice else None} for step in self.applied],
            "version_a_fingerprint": self.version_a.fingerprint if self.version_a else None,
        })

    def restore(self, snapshot: Mapping[str, object]) -> list[str]:
        """Reload what :meth:`snapshot` recorded: the reference, the original stems, and as Version A
        the last applied render (or the original stems when nothing was applied). Returns one line
        per thing that could not be restored or changed on disk since, each saying what to do; an
        applied render that cannot be reloaded leaves Version A unloaded, never silently the stems
        from before the apply."""
        problems: list[str] = []
        self.advisor_name = str(snapshot.get("advisor") or "measured")
        self.version_b = self._reload(snapshot.get("reference"), snapshot.get("reference_fingerprint"),
                                      "the reference", "point at it with /reference FOLDER", problems)
        self.original_a = self._reload(snapshot.get("stems"), snapshot.get("stems_fingerprint"), "your stems",
                                       "point at them with /load FOLDER", problems)
        steps = list(snapshot.get("applied") or [])  # type: ignore[call-overload]
        self.applied = [AppliedRender(gains_db=step["gains_db"], folder=Path(step["folder"]), source=Path(step["source"]),
                                      advice=Advice.from_json(step["advice"]) if step.get("advice") else None)
                        for step in steps]
        if self.applied:
            last = self.applied[-1].folder
            moves = ", ".join(f"{stem} {gain:+.1f} dB" for stem, gain in self.total_gains().items())
            self.version_a = self._reload(
                last / "stems", snapshot.get("version_a_fingerprint"), f"the mix rendered with your moves ({moves})",
                f"point at it with /load {last / 'stems'}, or /load your original stems to start again; until then "
                "Version A is not loaded, so nothing is compared with the stems from before the apply", problems)
        else:
            self.version_a = self.original_a
        if snapshot.get("advice"):
            self.advice = Advice.from_json(snapshot["advice"])
        focus = snapshot.get("focus")
        self.focus = str(focus) if self.version_a is not None and focus in self.version_a.stems.names else None
        return problems

    def _reload(self, path: object, recorded: object, what: str, remedy: str, problems: list[str]) -> LoadedStems | None:
        """Load ``path`` again; a line in ``problems`` when it cannot be, or when its files changed since."""
        if not path:
            return None
        try:
            loaded = load(str(path))
        except FaderwiseError as exc:
            problems.append(f"could not reload {what}: {exc}; {remedy}")
            return None
        if recorded and loaded.fingerprint != recorded:
            problems.append(f"{what} in {path} changed on disk since this session last used them (files rewritten "
                            "or replaced): measured again from the files as they are now")
        return loaded
