"""The ``faderwise`` command. Subcommands parse arguments, call a library function and print.

Errors that faderwise raises on purpose (:class:`faderwise.tools.errors.FaderwiseError`) become one line on
stderr and exit status 2; nothing half-written is left behind.

Names from a project, a file or a producer (``Video [chan 1]``, ``Gtr [/x]``) are data: Rich prints
them as they are, never as markup or emoji codes. Every console here is made by :func:`literal_console`
(markup and emoji off), and faderwise's own styling comes as :class:`rich.text.Text` (:func:`warn`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from faderwise import __version__
from faderwise.advisor.constrained import DECODINGS
from faderwise.tools.errors import FaderwiseError, one_line
from faderwise.tools.outputs import check_target, command_inputs
from faderwise.tools.paths import data_dir

if TYPE_CHECKING:  # the advisor package loads only for the commands that need it
    from faderwise.advisor.model import Advice
    from faderwise.tools.daw.export import FaderPlan
    from faderwise.tools.stem_files import StemSource


class FaderwiseUsageError(FaderwiseError):
    """A combination of options that cannot work."""

EXIT_ERROR = 2
# Inputs longer than this (seconds of stems to measure, all stems counted) get a progress bar on a terminal.
PROGRESS_THRESHOLD_S = 1000.0


def literal_console(*, stderr: bool = False) -> Console:
    """A Rich console that prints strings as they are: markup (``[bold]``, ``[/x]``) and emoji
    codes (``:fire:``) off, since what it prints holds names from projects, files and producers."""
    return Console(stderr=stderr, markup=False, emoji=False)


def styled(prefix: str, style: str, data: str) -> Text:
    """``prefix`` in ``style``, a space, then ``data`` as it is (never read as markup)."""
    return Text.assemble((prefix, style), " ", data)


def warn(err: Console, message: str, *, prefix: str = "warning:") -> None:
    """``warning: message`` on stderr, the prefix yellow and ``message`` as it is."""
    err.print(styled(prefix, "yellow", message), highlight=False, soft_wrap=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faderwise",
        description="A terminal mixing assistant: measures your stems, compares your mix with a "
        "balanced reference and explains which faders to move. With no command it opens the chat on the "
        "built-in demo song (outside a terminal it prints the demo's analysis instead).",
    )
    parser.add_argument("--version", action="version", version=f"faderwise {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser("demo", help="write the procedural demo song (Version A and B stems)")
    demo.add_argument("--out", required=True, type=Path, help="new folder to write")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--force", action="store_true", help="replace OUT if it exists")
    demo.set_defaults(handler=run_demo)

    analyze = commands.add_parser("analyze", help="measure a stem set, optionally against a reference")
    analyze.add_argument("stems", type=Path, help="folder of stems, MUSDB18-HQ song folder, .stem.mp4, or a REAPER "
                         "(.RPP) or Ardour (.ardour) project with its tracks' bounced stems beside it (Version A)")
    analyze.add_argument("--reference", type=Path, help="the balanced reference (Version B), same layouts")
    analyze.add_argument("--json", action="store_true", help="print the numbers as JSON instead of a table")
    analyze.add_argument("--plot", type=Path, metavar="FILE.png", help="write short-term loudness over time")
    analyze.add_argument("--force", action="store_true", help="replace FILE.png if faderwise wrote it before")
    add_map_option(analyze)
    add_pan_law_option(analyze)
    add_workers_option(analyze)
    analyze.set_defaults(handler=run_analyze)

    advise = commands.add_parser("advise", help="say which faders to move, by how much, and why")
    advise.add_argument("stems", type=Path, help="your stems (Version A): a folder, .stem.mp4, a REAPER or Ardour "
                        "project with its bounced stems beside it, or a bundle folder from faderwise bundle")
    advise.add_argument("--reference", type=Path, help="a balanced reference (Version B); without it the "
                        "single-mix advisor judges A alone")
    advise.add_argument("--stem", action="append", metavar="NAME", help="advise on this stem only (repeatable)")
    advise.add_argument("--advisor", type=advisor_spec, metavar="NAME", help=advisor_help())
    advise.add_argument("--material", choices=("auto", "same", "different"), default="auto",
                        help="is the reference a re-balanced copy of the same song (same) or another song "
                        "(different)? default: detect")
    advise.add_argument("--json", action="store_true", help="print the advice as JSON")
    add_map_option(advise)
    add_pan_law_option(advise)
    add_workers_option(advise)
    advise.set_defaults(handler=run_advise, uses_models=True)

    bundle = commands.add_parser("bundle", help="write the A/B bundle of one stem: target and backing of A and B")
    bundle.add_argument("stems", type=Path, help="your stems (Version A)")
    bundle.add_argument("--reference", type=Path, required=True, help="the balanced reference (Version B)")
    bundle.add_argument("--stem", required=True, metavar="NAME", help="the target stem")
    bundle.add_argument("--out", type=Path, required=True, help="new folder for the four clips and bundle.json")
    bundle.add_argument("--seconds", type=float, default=30.0, help="longest window, where the target plays most "
                        "(default 30, the most an audio-language model hears per clip)")
    bundle.add_argument("--force", action="store_true", help="replace OUT if it exists")
    add_pan_law_option(bundle)
    bundle.set_defaults(handler=run_bundle)

    apply = commands.add_parser("apply", help="apply advice to the stems and render the mix to a new folder")
    apply.add_argument("stems", type=Path, help="the stems the advice is for (Version A)")
    apply.add_argument("--advice", type=Path, required=True, help="advice JSON from faderwise advise --json")
    apply.add_argument("--out", type=Path, required=True, help="new folder for the adjusted stems and mix")
    apply.add_argument("--force", action="store_true", help="replace OUT (and FILE.png) if faderwise wrote them "
                       "before (never an input, never anything else)")
    apply.add_argument("--master", action="store_true", help="also apply the advice's master (global) offset")
    apply.add_argument("--peak-safe", action="store_true", help="trim all stems so the mix peaks at -1 dBTP")
    apply.add_argument("--plot", type=Path, metavar="FILE.png", help="stem loudness before, after (and B)")
    add_pan_law_option(apply)
    apply.add_argument("--reference", type=Path, help="Version B, drawn in the plot")
    add_workers_option(apply)
    apply.set_defaults(handler=run_apply)
    export = commands.add_parser("export", help="write advice into a new REAPER/Ardour project (faders moved), "
                                 "or as a CSV/JSON table of fader moves for any DAW")
    export.add_argument("advice", type=Path, help="advice JSON from faderwise advise --json")
    export.add_argument("--project", type=Path, help="the project the stems were bounced from (SONG.RPP or "
                        "SONG.ardour); it is read, never written")
    export.add_argument("--out", type=Path, required=True, help="the new file: a project (same DAW and suffix), "
                        "or FILE.csv / FILE.json with --format")
    export.add_argument("--format", choices=("project", "csv", "json"), default="project",
                        help="project (default): a copy of --project with the faders moved; csv or json: one row per "
                        "move (stem, track number, track, current dB, move dB, new dB)")
    export.add_argument("--master", action="store_true", help="also move the master fader: by the advice's master "
                        "offset, and down by the trim its headroom check names when the moves would clip")
    export.add_argument("--force", action="store_true", help="replace OUT if faderwise wrote it before (JSON only: a "
                        "project or CSV carries no mark of faderwise, so it is never replaced)")
    add_map_option(export)
    export.set_defaults(handler=run_export)

    push = commands.add_parser("push", help="move a running REAPER's or Ardour's faders over OSC: a dry run "
                               "first, --apply to send, --undo to put them back")
    push.add_argument("advice", type=Path, nargs="?", help="advice JSON from faderwise advise --json")
    push.add_argument("--osc", choices=("reaper", "ardour"), required=True, help="the DAW listening for OSC")
    push.add_argument("--host", help="where it runs (default 127.0.0.1; --undo: where the push went)")
    push.add_argument("--port", type=port_number, help="its OSC port (default REAPER 8000, Ardour 3819)")
    push.add_argument("--listen", type=port_number, metavar="PORT", help="the port its replies come to (default REAPER 9000, "
                      "as set in its control surface; Ardour 8000, its default reply port in 'Manual' port mode, "
                      "which its 'Auto' mode answers too)")
    push.add_argument("--apply", action="store_true", help="send the moves (without it: a dry run that only shows them)")
    push.add_argument("--undo", action="store_true", help="put back the faders of the last push")
    push.add_argument("--again", action="store_true", help="push moves that were the last push again (they are "
                      "refused while the faders are still where that push left them)")
    push.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the DAW's first reply (default 2)")
    add_map_option(push)
    push.set_defaults(handler=run_push)

    mcp = commands.add_parser("mcp", help="serve faderwise's tools over the Model Context Protocol (for MCP clients)")
    mcp.add_argument("--http", action="store_true", help="streamable HTTP on 127.0.0.1 instead of stdio")
    mcp.add_argument("--port", type=port_number, default=8765, help="the HTTP port (default 8765)")
    mcp.add_argument("--time-limit", type=positive_seconds, default=None, metavar="SECONDS",
                     help="the longest one tool call may take (default 300)")
    mcp.add_argument("--out", type=Path, help="folder for renders, bundles, plots and exports (default: faderwise's "
                     "data folder, mcp/)")
    add_workers_option(mcp)
    mcp.set_defaults(handler=run_mcp, uses_models=True)

    chat = commands.add_parser("chat", help="the chat: ask about your balance, get explained fader moves")
    chat.add_argument("stems", nargs="?", type=Path, help="your stems (Version A); default: the demo song")
    chat.add_argument("--reference", type=Path, help="the balanced reference (Version B)")
    chat.add_argument("--llm", metavar="SPEC", help="offline (default), ollama:MODEL[@HOST], openai:MODEL, "
                      "anthropic:MODEL, each with options such as ,mode=routed ,tool_choice=required ,timeout=60; "
                      "default from $FADERWISE_LLM or the config file")
    chat.add_argument("--resume", nargs="?", const=True, default=False, metavar="ID",
                      help="resume a saved session (the latest, or ID / an ID prefix / its name)")
    chat.add_argument("--name", help="name the new session")
    add_workers_option(chat)
    chat.set_defaults(handler=run_chat, uses_models=True)

    sessions = commands.add_parser("sessions", help="list, rename, delete or export saved chat sessions")
    sessions.add_argument("action", nargs="?", default="list", choices=("list", "rename", "delete", "export"))
    sessions.add_argument("session", nargs="?", metavar="ID", help="session id (or prefix, or name)")
    sessions.add_argument("value", nargs="?", metavar="NAME|FILE", help="new name (rename) or Markdown file (export)")
    sessions.add_argument("--force", action="store_true", help="export: replace FILE if it exists")
    sessions.set_defaults(handler=run_sessions)

    script = commands.add_parser("run", help="run a scripted conversation and check its replies")
    script.add_argument("script", type=Path, help="SCRIPT.yaml (see evals/scripts/)")
    script.add_argument("--llm", metavar="SPEC", help="overrides the script's llm")
    script.add_argument("--out", type=Path, metavar="TRANSCRIPT.jsonl", help="write one JSON object per turn")
    script.add_argument("--force", action="store_true", help="replace TRANSCRIPT.jsonl if faderwise wrote it before")
    script.set_defaults(handler=run_script_command, uses_models=True)
    synth = commands.add_parser("synth", help="synthesise a training dataset: A/B bundles with explanations")
    synth.add_argument("config", type=Path, help="CONFIG.yaml (see training/configs/)")
    synth.add_argument("--workers", type=int, help="local processes (overrides the config)")
    synth.add_argument("--executor", choices=("local", "ray"), help="overrides the config")
    synth.add_argument("--limit-songs", type=int, metavar="N", help="only the first N songs (a later run completes it)")
    synth.set_defaults(handler=run_synth)

    train = commands.add_parser("train", help="fine-tune Qwen2-Audio (LoRA/QLoRA) or train the small model")
    train.add_argument("config", type=Path, help="CONFIG.yaml (see training/configs/)")
    train.add_argument("--stop-after", type=int, metavar="STEP", help="end this run at STEP with a checkpoint")
    train.set_defaults(handler=run_train, uses_models=True)

    evaluate = commands.add_parser("eval", help="evaluate advisors: gain error, judges, text metrics, human study")
    steps = evaluate.add_subparsers(dest="eval_command", metavar="STEP", required=True)
    eval_run = steps.add_parser("run", help="evaluate the config's advisors on a test set and write the report")
    eval_run.add_argument("config", type=Path, help="CONFIG.yaml (see evals/configs/example.yaml)")
    eval_run.add_argument("--out", type=Path, required=True, metavar="DIR",
                          help="the run folder (report.md, report.json, plots); an interrupted run resumes in it")
    eval_run.add_argument("--workers", type=int, help="processes answering (overrides the config)")
    eval_run.add_argument("--judge", action="append", metavar="SPEC",
                          help="rubric (embedded) or an LLM spec such as openai:MODEL; repeat for a second judge "
                               "(the report says how they agree); overrides the config")
    eval_run.set_defaults(handler=run_eval, uses_models=True)
    packets = steps.add_parser("packets", help="export a blinded listening study (one HTML page) from a run")
    packets.add_argument("run", type=Path, help="a folder written by faderwise eval run")
    packets.add_argument("--out", type=Path, required=True, metavar="STUDY_DIR", help="a new folder")
    packets.add_argument("--items", type=int, metavar="N", help="the first N test items (default: all)")
    packets.add_argument("--advisor", action="append", help="only these advisors (repeat; default: all of the run)")
    packets.add_argument("--seed", type=int, default=0, help="the order's seed")
    packets.add_argument("--force", action="store_true", help="replace STUDY_DIR if it exists")
    packets.set_defaults(handler=run_packets)
    ingest = steps.add_parser("ingest", help="read a study's answers: ratings per advisor, κ, judge correlation")
    ingest.add_argument("study", type=Path, help="the study folder (with key.json)")
    ingest.add_argument("answers", type=Path, nargs="+", help="answers files saved by the page (JSON or CSV)")
    ingest.add_argument("--run", type=Path, help="the evaluation run, to correlate its judge scores with people's")
    ingest.add_argument("--out", type=Path, help="write human.json and human.md here (default: STUDY/results)")
    ingest.add_argument("--force", action="store_true", help="replace the results folder of an earlier ingest")
    ingest.set_defaults(handler=run_ingest)
    held_out = steps.add_parser("model", help="score a trained audio-language model on a dataset's held-out songs, "
                                "next to no change and the measured advisor")
    held_out.add_argument("model", type=Path, help="a faderwise train output (or a Qwen2-Audio base + adapter)")
    held_out.add_argument("dataset", type=Path, help="a faderwise synth folder")
    held_out.add_argument("--variant", choices=("differential", "single-mix"), default="differential")
    held_out.add_argument("--split", default="test", help="the split to score (default test)")
    held_out.add_argument("--limit", type=int, metavar="N", help="only the first N items")
    held_out.add_argument("--decoding", choices=DECODINGS, default=DECODINGS[0],
                          help="constrained: the answer in the training text's grammar (verb scored, the asked "
                          "stem named, then the amount; the default); free: any words, greedy")
    held_out.add_argument("--out", type=Path, metavar="FILE.json", help="write the result with every answer")
    held_out.add_argument("--force", action="store_true", help="replace FILE.json if faderwise wrote it before")
    held_out.set_defaults(handler=run_held_out, uses_models=True)
    return parser


def advisor_spec(text: str) -> str:
    """``--advisor``: a spec of :mod:`faderwise.advisor.registry` (``measured``, ``alm``, ``alm:FOLDER``, …)."""
    from faderwise.advisor.registry import UnknownAdvisorError, parse_advisor, spelled_choices

    try:
        return parse_advisor(text).spec
    except UnknownAdvisorError:
        raise argparse.ArgumentTypeError(f"{text!r}: choose {spelled_choices()}") from None


def advisor_help() -> str:
    """``--advisor``'s help: every advisor of the registry, with what it needs."""
    from faderwise.advisor.registry import ADVISORS

    listed = "; ".join(f"{kind.name}{'[:MODEL_FOLDER]' if kind.takes_folder else ''} ({kind.summary}"
                       f"{f'; needs faderwise[{kind.extra}]' if kind.extra else ''})" for kind in ADVISORS)
    return f"{listed}. Default: measured with a reference, single-mix without"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = getattr(args, "handler", run_default)
    try:
        if getattr(args, "uses_models", False) or handler is run_default:
            hand_on_bases()
        with command_inputs():
            return handler(args)
    except FaderwiseError as exc:
        print(f"faderwise: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    except MemoryError:
        print("faderwise: error: out of memory: the stems are too long or too many for the memory this machine "
              "has free; close other programs or pass fewer or shorter stems", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("faderwise: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def hand_on_bases() -> None:
    """The config file's pretrained bases (``pretrained_whisper``, ``pretrained_language``) handed to
    the environment where their variables are unset (reading the config does it,
    :func:`~faderwise.agent.config.pass_on_bases`): the library and its worker processes read them
    there. Every command that may build an audio-language advisor or train on the pretrained base
    runs this before its own work, whatever options it was given."""
    from faderwise.agent.config import load_config

    load_config()


def run_demo(args: argparse.Namespace) -> int:
    from faderwise.tools.demo_song import describe_perturbation, write_demo

    out = write_demo(args.out, seed=args.seed, force=args.force)
    print(f"wrote {out}/version_a (your mix: {describe_perturbation()} against B), {out}/version_b (balanced) "
          f"and {out}/manifest.json")
    return 0


def add_workers_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=worker_count, metavar="N",
                        help="processes measuring the stems at once (a number, or auto: every core); "
                        "default: the config's workers, else auto. The numbers do not depend on it")


def add_pan_law_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pan-law", type=float, metavar="DB", dest="pan_law",
                        help="the level a mono stem of a folder plays at on each side of a stereo set (default -3, "
                        "equal power, as Ardour and most DAWs pan a mono track to the centre; 0 copies it at full "
                        "level); a REAPER or Ardour project uses its own")


def add_map_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--map", type=Path, metavar="MAP.yaml", help="a project's tracks to stem files (a track by its "
                        "name, '#N' or its id: a file, or null to leave it out); default SONG.stems.yaml beside the "
                        "project if it exists, else by track number ('03 Name.wav') and name")


def open_stems(path: Path, *, map_file: Path | None = None, err: Console | None = None,
               pan_law_db: float | None = None) -> StemSource:
    """A stem set from the command line: a project's bounced stems (the mapping shown on stderr),
    or what :func:`~faderwise.tools.stem_files.open_stem_set` opens."""
    from faderwise.tools.daw.mapping import open_stems_and_mapping
    from faderwise.tools.daw.project import is_project_file

    if map_file is not None and not is_project_file(path):
        raise FaderwiseUsageError(f"--map maps a project's tracks to stems, and {path} is not a .RPP or .ardour project")
    stems, mapping = open_stems_and_mapping(path, map_file=map_file, pan_law_db=pan_law_db)
    if mapping is not None:
        err = err or literal_console(stderr=True)
        # a name or path is data: literal whatever console the caller passed
        err.print(f"{path}: {mapping.project.daw_name} project, {len(mapping.files)} stems (track ← stem file):",
                  markup=False, emoji=False, highlight=False, soft_wrap=True)
        for line in mapping.lines():
            err.print(f"  {line}", markup=False, emoji=False, highlight=False, soft_wrap=True)
    return stems


def worker_count(value: str) -> int:
    """``--workers``: a whole number from 1 up, or ``auto``."""
    from faderwise.tools.workers import parse_workers

    try:
        return parse_workers(value, where="--workers")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--workers: ")) from None


def resolve_workers(args: argparse.Namespace) -> int:
    """``--workers``, else the config's (``workers``, ``$FADERWISE_WORKERS``), else every core."""
    if args.workers is not None:
        return args.workers
    from faderwise.agent.config import load_config

    return load_config().workers


def run_analyze(args: argparse.Namespace) -> int:
    analyze_paths(args.stems, args.reference, plot=args.plot, as_json=args.json, force=args.force,
                  workers=resolve_workers(args), map_file=args.map, pan_law_db=args.pan_law)
    return 0


def run_bundle(args: argparse.Namespace) -> int:
    from faderwise.advisor.stem_names import require_stems
    from faderwise.tools.bundle import make_bundle, write_bundle
    from faderwise.tools.stem_files import open_stem_set

    version_a, version_b = (open_stem_set(args.stems, pan_law_db=args.pan_law),  # the window is read alone
                            open_stem_set(args.reference, pan_law_db=args.pan_law))
    (target,) = require_stems([args.stem], version_a.names, label=version_a.label)
    check_target(args.out, folder=True, force=args.force)
    bundle = make_bundle(version_a, version_b, target, max_s=args.seconds)
    out = write_bundle(bundle, args.out, force=args.force)
    print(f"wrote {out}: {target} and its backing in A and B, {bundle.window_a_s[0]:.1f}–{bundle.window_a_s[1]:.1f} s "
          f"of A, at {bundle.rate} Hz and as 16 kHz mono copies in {out}/alm")
    return 0


def run_advise(args: argparse.Namespace) -> int:
    from faderwise.advisor.service import AdviceService
    from faderwise.tools.bundle import is_bundle, read_bundle
    from faderwise.tools.stem_files import in_memory_if_small

    service = AdviceService(workers=resolve_workers(args))
    if is_bundle(args.stems):
        if args.reference is not None or args.stem or args.map or args.advisor not in (None, "measured"):
            raise FaderwiseUsageError(f"{args.stems}: a bundle holds its own reference and target; "
                                      "--reference, --stem and other advisors do not apply")
        return _print_advice(service.advise_bundle(read_bundle(args.stems)), as_json=args.json)
    err = literal_console(stderr=True)
    version_a = in_memory_if_small(open_stems(args.stems, map_file=args.map, err=err, pan_law_db=args.pan_law))
    version_b = in_memory_if_small(open_stems(args.reference, err=err, pan_law_db=args.pan_law)) \
        if args.reference is not None else None
    choice = service.choose(args.advisor, has_reference=version_b is not None)  # refused before measuring
    with _ProgressBar(err, enabled=_worth_a_bar(version_a, version_b) and err.is_terminal) as on_progress:
        advice = service.advise(version_a, version_b, advisor=choice.spec, stems=args.stem, material=args.material,
                                on_progress=on_progress)
    # said once the advice stands: bad audio found while measuring is then the only line on stderr
    if choice.kind.name == "single-mix" and version_b is None:
        err.print("no reference given: the single-mix advisor judges your mix alone, against the range real mixes "
                  "give each kind of stem",
                  highlight=False, soft_wrap=True)
    elif not choice.kind.hears_reference and version_b is not None:
        err.print(f"the {choice.kind.name} advisor judges your mix alone: the reference is not used",
                  highlight=False, soft_wrap=True)
    return _print_advice(advice, as_json=args.json)


def _print_advice(advice: Advice, *, as_json: bool) -> int:
    if as_json:
        print(json.dumps(advice.to_json(), indent=2, allow_nan=False))
    else:
        literal_console().print(render_advice(advice), soft_wrap=True)
    return 0


def render_advice(advice: Advice) -> str:
    """The advice text, then one line per move."""
    lines = [advice.text, ""]
    for move in advice.moves:
        lines.append(f"  {move.stem:<12} {move.delta_db:+6.1f} dB   (likely {move.low_db:+.1f} to {move.high_db:+.1f})")
    if not advice.moves:
        lines.append("  no fader moves")
    if round(advice.global_offset_db, 1):  # not "-0.0"
        lines.append(f"  {'master':<12} {advice.global_offset_db:+6.1f} dB")
    return "\n".join(lines)


def run_apply(args: argparse.Namespace) -> int:
    from faderwise.advisor.model import read_advice
    from faderwise.advisor.service import AdviceService
    from faderwise.tools.analysis import analyze_stem_set
    from faderwise.tools.plot import plot_stem_levels
    from faderwise.tools.render import write_render
    from faderwise.tools.stem_files import in_memory_if_small, open_stem_set

    err = literal_console(stderr=True)
    service = AdviceService(workers=resolve_workers(args))
    advice = read_advice(args.advice)
    version_a = in_memory_if_small(open_stem_set(args.stems, pan_law_db=args.pan_law))  # two passes: peaks, render
    reference = open_stem_set(args.reference, pan_law_db=args.pan_law) if args.reference is not None else None
    # every input is read (and registered) now: refuse a bad --out or --plot before rendering
    check_target(args.out, folder=True, force=args.force)
    if args.plot is not None:
        check_target(args.plot, folder=False, force=args.force)
    gains = service.planned_gains(advice, version_a.names, master=args.master, require_moves=False)
    rendered = service.render(version_a, gains, peak_safe=args.peak_safe)
    out = write_render(rendered, args.out, force=args.force)
    applied = ", ".join(f"{name} {gain:+.1f} dB" for name, gain in rendered.gains_db.items() if gain) or "nothing"
    print(f"applied {applied}; wrote {out}/stems, {out}/mix.wav and {out}/render.json")
    for line in rendered.warnings:
        warn(err, line)
    if args.plot is not None:
        with command_inputs():  # the render is read back to be drawn: it is this step's input, not an output
            after = analyze_stem_set(open_stem_set(out))
        plot_stem_levels(args.plot, analyze_stem_set(version_a), after,
                         analyze_stem_set(reference) if reference is not None else None, force=args.force)
        err.print(f"wrote {args.plot}", highlight=False, soft_wrap=True)
    return 0


def run_export(args: argparse.Namespace) -> int:
    from faderwise.advisor.model import read_advice
    from faderwise.tools.daw.export import plan_fader_moves, write_fader_table, write_project
    from faderwise.tools.daw.project import read_project

    if args.format == "project" and args.project is None:
        raise FaderwiseUsageError("export writes a new project: give --project SONG.RPP|SONG.ardour, or --format csv|json")
    if args.map is not None and args.project is None:
        raise FaderwiseUsageError("--map maps a project's tracks: give --project too")
    from faderwise.advisor.headroom import clipping_warning, master_move_db

    advice = read_advice(args.advice)
    project = read_project(args.project) if args.project is not None else None
    check_target(args.out, folder=False, force=args.force)  # refused before anything is planned
    master_db, master_note = master_move_db(advice) if args.master else (0.0, None)
    plan = plan_fader_moves(advice.gains_db(), project=project, map_file=args.map, where=str(args.advice),
                            master_db=master_db)
    clipping = None if args.master else clipping_warning(advice, remedy="export --master does it")
    notes = [note for note in (master_note, clipping) if note]
    if args.format == "project":
        out = write_project(plan, args.out, force=args.force)
    else:
        out = write_fader_table(plan, args.out, table_format=args.format, force=args.force)
    _print_plan(plan, heading=None, notes=notes)
    print(f"wrote {out}")
    return 0


def _print_plan(plan: FaderPlan, *, heading: str | None, notes: Sequence[str] = ()) -> None:
    """The relative/absolute note, one line per fader change, then the warnings (and ``notes``) on stderr."""
    from faderwise.tools.daw.export import RELATIVE_NOTE, change_lines

    print(heading or RELATIVE_NOTE + (f" in {plan.project.source}" if plan.project else ""))
    for line in change_lines(plan):
        print(f"  {one_line(line)}")
    err = literal_console(stderr=True)
    for warning in (*plan.warnings, *notes):
        warn(err, warning)


def run_push(args: argparse.Namespace) -> int:
    from faderwise.tools.daw.export import RELATIVE_NOTE
    from faderwise.tools.daw.osc import OscDaw
    from faderwise.tools.daw.push import apply_push, plan_push, repeated_push, undo_push

    if args.undo:
        if args.advice is not None or args.apply or args.again or args.map is not None:
            raise FaderwiseUsageError("push --undo puts back the last push: give no ADVICE.json, --apply, --again or "
                                      "--map")
        outcome = undo_push(args.osc, host=args.host, port=args.port, listen_port=args.listen, timeout=args.timeout)
        restored = ", ".join(f"{track} {db:+.1f} dB" for track, db in outcome.levels.items()) or "no fader"
        print(f"put back {restored}")
        for track, db in outcome.left_alone.items():
            print(f"  left {track} at {db:+.1f} dB: moved since the push, so it is yours now")
        return _report_not_taken(outcome.not_taken, args.osc)
    if args.advice is None:
        raise FaderwiseUsageError("push needs ADVICE.json (from faderwise advise --json), or --undo")
    from faderwise.advisor.headroom import clipping_warning
    from faderwise.advisor.model import read_advice

    advice = read_advice(args.advice)
    with OscDaw(args.osc, args.host or "127.0.0.1", args.port, listen_port=args.listen, timeout=args.timeout) as daw:
        plan = plan_push(daw, advice.gains_db(), map_file=args.map, where=str(args.advice))
        clipping = clipping_warning(advice, remedy=f"a push moves no master: lower it in {daw.dialect.name}")
        _print_plan(plan, heading=f"{'pushing to' if args.apply else 'dry run on'} {daw.where}: {RELATIVE_NOTE}",
                    notes=[clipping] if clipping else [])
        if not args.apply:
            repeated = None if args.again else repeated_push(daw, plan)
            if repeated is not None:
                print(f"these moves were pushed already ({repeated}) and the faders are still there: --apply would "
                      "refuse to move them twice (faderwise push --undo first, or --again)")
            print("nothing sent: run again with --apply to move these faders (faderwise push --undo puts them back)")
            return 0
        outcome = apply_push(daw, plan, again=args.again)
    print(f"moved {len(outcome.levels)} fader{'s' if len(outcome.levels) != 1 else ''}; "
          f"faderwise push --undo --osc {args.osc} puts them back (record {outcome.record})")
    return _report_not_taken(outcome.not_taken, args.osc)


def _report_not_taken(not_taken: Mapping[str, float], daw: str) -> int:
    """Exit status 2 and one line when the DAW's faders are not where they were sent."""
    if not not_taken:
        return 0
    listed = ", ".join(f"{track} (at {db:+.1f} dB)" for track, db in not_taken.items())
    print(f"faderwise: error: {daw} did not take every move: {listed}", file=sys.stderr)
    return EXIT_ERROR


def run_mcp(args: argparse.Namespace) -> int:
    from faderwise.agent.mcp_server import TIME_LIMIT_S, serve

    serve(http_port=args.port if args.http else None, output_dir=args.out, workers=resolve_workers(args),
          time_limit_s=args.time_limit or TIME_LIMIT_S)
    return 0


def port_number(value: str) -> int:
    """``--port``: a TCP port, 1 to 65535."""
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number (1 to 65535)") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (1 to 65535)")
    return port


def positive_seconds(value: str) -> float:
    """A number of seconds above 0."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds above 0")
    return seconds


def run_chat(args: argparse.Namespace) -> int:
    from faderwise.agent.config import load_config
    from faderwise.agent.launch import open_chat
    from faderwise.agent.tui import ChatApp

    if args.resume is not False and (args.stems or args.reference):
        raise FaderwiseUsageError("--resume reopens a saved session with its own stems; drop STEMS and --reference")
    if args.reference is not None and args.stems is None:
        raise FaderwiseUsageError("--reference needs STEMS (your Version A) too")
    config = load_config()
    if args.workers is not None:
        config = dataclasses.replace(config, workers=args.workers)
    opened = open_chat(stems=args.stems, reference=args.reference, llm=args.llm, resume=args.resume,
                       name=args.name, config=config)
    for problem in opened.problems:
        print(f"faderwise: warning: {one_line(problem)}", file=sys.stderr)
    try:
        ChatApp(opened.session, store=opened.store, info=opened.info, greeting=opened.greeting,
                keymap=config.keys).run()
    finally:
        opened.store.close()
    print(f"session {opened.info.id} saved: faderwise chat --resume {opened.info.id}")
    return 0


def run_sessions(args: argparse.Namespace) -> int:
    from faderwise.agent.launch import sessions_database
    from faderwise.agent.store import SessionStore

    store = SessionStore(sessions_database())
    for notice in store.notices:
        print(f"faderwise: warning: {one_line(notice)}", file=sys.stderr)
    try:
        if args.action == "list":
            listed = store.list()
            for info in listed:
                print(f"{info.id}  {info.name}  ({info.llm})  {info.stems or ''}")
            if not listed:
                print("no saved sessions yet: faderwise chat starts one")
            return 0
        if args.session is None:
            raise FaderwiseUsageError(f"sessions {args.action} needs a session ID")
        if args.action == "delete":
            info = store.delete(args.session)
            print(f"deleted session {info.id} ({info.name})")
        elif args.value is None:
            raise FaderwiseUsageError(f"sessions {args.action} ID needs {'a new name' if args.action == 'rename' else 'a FILE.md'}")
        elif args.action == "rename":
            info = store.rename(args.session, args.value)
            print(f"renamed session {info.id} to {info.name!r}")
        else:
            out = store.export_markdown(args.session, args.value, force=args.force)
            print(f"wrote {out}")
        return 0
    finally:
        store.close()


EXIT_EXPECTATION_FAILED = 1


def run_script_command(args: argparse.Namespace) -> int:
    import uuid

    from faderwise.agent.launch import session_output_dir
    from faderwise.agent.llm import parse_llm_spec
    from faderwise.agent.script import read_script, run_script

    script = read_script(args.script)
    llm = parse_llm_spec(args.llm) if args.llm else None
    records = run_script(script, llm=llm, output_dir=session_output_dir(f"run-{uuid.uuid4().hex[:8]}"),
                         transcript=args.out, force=args.force)
    out = literal_console()
    for record in records:
        mark = ("pass", "green") if record["passed"] else ("FAIL", "red")
        out.print(styled(*mark, f"turn {record['turn']} ({record['seconds']:.2f} s): {record['user']}"),
                  highlight=False, soft_wrap=True)
        for failure in record["failures"]:
            out.print(f"     {failure}", highlight=False, soft_wrap=True)
    passed = sum(record["passed"] for record in records)
    out.print(f"{passed} passed, {len(records) - passed} failed", highlight=False)
    if args.out is not None:
        out.print(f"wrote {args.out}", highlight=False, soft_wrap=True)
    return 0 if passed == len(records) else EXIT_EXPECTATION_FAILED


def run_synth(args: argparse.Namespace) -> int:
    import dataclasses

    from faderwise.training.synth import collect_songs, read_config, synthesize

    config = read_config(args.config)
    overrides = {key: value for key, value in (("workers", args.workers), ("executor", args.executor))
                 if value is not None}
    config = dataclasses.replace(config, **overrides)
    total = len(collect_songs(config)[:args.limit_songs])
    err = literal_console(stderr=True)
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(),
                  TextColumn("{task.completed}/{task.total} songs"), TimeElapsedColumn(), console=err, transient=True,
                  disable=not err.is_terminal) as progress:
        task = progress.add_task("synthesising", total=total)
        problems: dict[str, int] = {}
        records = synthesize(config, limit_songs=args.limit_songs,
                             on_song=lambda song, items: progress.update(task, advance=1, description=song.name),
                             on_failure=lambda song, problem: problems.update({problem: problems.get(problem, 0) + 1}))
    for problem, count in problems.items():  # a missing SoundFont is one line, not one per song
        warn(err, one_line(problem), prefix=f"left out{f' {count} songs' if count > 1 else ''}:")
    splits = {split: sum(r["split"] == split for r in records) for split in ("train", "val", "test")}
    print(f"{len(records)} items from {total} songs ({', '.join(f'{k} {v}' for k, v in splits.items())}); "
          f"wrote {config.out / 'manifest.jsonl'}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from faderwise.training.distributed import processes_from_env
    from faderwise.training.train import read_config, train

    config = read_config(args.config)
    main_process = processes_from_env().main  # under torchrun, only rank 0 reports
    err = literal_console(stderr=True)
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(),
                  TextColumn("step {task.completed}/{task.total}"), TimeElapsedColumn(), console=err, transient=True,
                  disable=not (err.is_terminal and main_process)) as progress:
        task = progress.add_task("training", total=config.steps)
        out = train(config, stop_after=args.stop_after,
                    on_step=lambda step, loss: progress.update(task, completed=step, description=f"loss {loss:.3f}"))
    if main_process:
        print(f"wrote {out}; log: {config.out / 'log.jsonl'}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    import dataclasses

    from faderwise.evals.run import read_config, run_evaluation

    config = read_config(args.config)
    overrides: dict[str, object] = {}
    if args.workers is not None:
        overrides["workers"] = args.workers
    if args.judge:
        overrides["judges"] = tuple(args.judge)
    config = dataclasses.replace(config, **overrides)
    err = literal_console(stderr=True)
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), console=err, transient=True,
                  disable=not err.is_terminal) as progress:
        task = progress.add_task("evaluating", total=None)
        report = run_evaluation(config, args.out, on_progress=lambda stage, done, total: progress.update(
            task, description=stage, completed=done, total=total))
    for pair in report["research_question"]:
        print(f"{pair['differential']} against {pair['single_mix']}: {pair['answer']}")
    for name, advisor in report["advisors"].items():
        mae = advisor["mae_db"]
        print(f"{name:24} MAE {'—' if mae is None else f'{mae:.2f} dB':>9}")
    print(f"wrote {args.out / 'report.md'} and {args.out / 'report.json'}")
    return 0


def run_packets(args: argparse.Namespace) -> int:
    from faderwise.evals.human import export_packets

    out = export_packets(args.run, args.out, items=args.items, advisors=args.advisor, seed=args.seed,
                         force=args.force)
    print(f"wrote {out / 'index.html'} (send this page to the annotators) and {out / 'key.json'} (keep it)")
    return 0


def run_ingest(args: argparse.Namespace) -> int:
    from faderwise.evals.human import ingest, write_ingest

    out = args.out or args.study / "results"
    result = ingest(args.study, args.answers, run=args.run)
    write_ingest(result, out, force=args.force)
    print((out / "human.md").read_text(encoding="utf-8"), end="")
    return 0


def run_held_out(args: argparse.Namespace) -> int:
    from faderwise.evals.held_out import evaluate_model
    from faderwise.tools.json_files import write_json
    from faderwise.tools.outputs import note_input

    if args.out is not None:
        note_input(args.model, args.dataset)
        check_target(args.out, folder=False, force=args.force)  # refuse before evaluating, not after
    result = evaluate_model(args.model, args.dataset, variant=args.variant, split=args.split, limit=args.limit,
                            decoding=args.decoding)
    def percent(value: float | None) -> str:
        return "—" if value is None else f"{100 * value:.0f} %"

    print(f"{'':26} {'MAE all':>8} {'MAE moved':>10} {'leave':>6} {'direction':>10}")
    for name in ("model_scores", "no_change", "measured_on_bundle_clips"):
        scores = result[name]
        moved = "—" if scores["mae_moved_db"] is None else f"{scores['mae_moved_db']:.2f}"
        print(f"{name:26} {scores['mae_db']:8.2f} {moved:>10} {percent(scores['leave_accuracy']):>6} "
              f"{percent(scores['direction_accuracy']):>10}")
    print(f"answers with no move for the target: {100 * result['no_move_share']:.0f} %")
    if args.out is not None:
        write_json(args.out, result, force=args.force)
        print(f"wrote {args.out}")
    return 0


def run_default(args: argparse.Namespace) -> int:
    """No command: the chat on the demo song in a terminal; elsewhere (a pipe, CI) the demo's
    analysis printed, since a full-screen app needs a terminal."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        chat = build_parser().parse_args(["chat"])  # every option of chat at its default: none can be forgotten here
        return chat.handler(chat)
    return print_demo_analysis()


def print_demo_analysis() -> int:
    """Analyse the demo song (written to the data folder on first run) and print it."""
    from faderwise.tools.demo_song import describe_perturbation, ensure_demo

    demo = ensure_demo(data_dir() / "demo")
    out = literal_console()
    out.print(f"[bold]faderwise[/bold] {__version__}: the demo song. Version A is the balanced "
              f"Version B with {escape(describe_perturbation())}.", markup=True, soft_wrap=True)
    analyze_paths(demo / "version_a", demo / "version_b", plot=None, as_json=False)
    out.print(
        "\nIn a terminal, faderwise opens the chat on this song. Your own stems:"
        "\n  faderwise chat STEMS_FOLDER --reference REFERENCE_FOLDER"
        "\nMore: faderwise --help", soft_wrap=True,
    )
    return 0


def analyze_paths(stems: Path, reference: Path | None, *, plot: Path | None, as_json: bool,
                  force: bool = False, workers: int = 1, map_file: Path | None = None,
                  pan_law_db: float | None = None) -> None:
    """Open, measure (``workers`` processes), print; the plot is written last, so bad input
    writes nothing (and a plot target that may not be written is refused before measuring)."""
    from faderwise.tools.analysis import analyze_stem_set
    from faderwise.tools.compare import compare_stem_sets
    from faderwise.tools.plot import plot_short_term
    from faderwise.tools.report import analysis_table, comparison_table

    out, err = literal_console(), literal_console(stderr=True)  # the table's cells and title hold names and paths
    version_a = open_stems(stems, map_file=map_file, err=err, pan_law_db=pan_law_db)
    version_b = open_stems(reference, err=err, pan_law_db=pan_law_db) if reference is not None else None
    if plot is not None:
        check_target(plot, folder=False, force=force)
    with _ProgressBar(err, enabled=_worth_a_bar(version_a, version_b) and err.is_terminal) as on_progress:
        if version_b is None:
            subject = analyze_stem_set(version_a, on_progress=on_progress, workers=workers, label="A")
        else:
            subject = compare_stem_sets(version_a, version_b, on_progress=on_progress, workers=workers)
    for line in subject.all_warnings():
        warn(err, line)
    if as_json:
        payload = {"format": "faderwise.analysis/1", "faderwise_version": __version__, **subject.to_json()}
        print(json.dumps(payload, indent=2, allow_nan=False))
    else:
        out.print(comparison_table(subject) if version_b is not None else analysis_table(subject))
    if plot is not None:
        plot_short_term(plot, subject, force=force)
        err.print(f"wrote {plot}", highlight=False, soft_wrap=True)


def _worth_a_bar(*versions: object) -> bool:
    """Whether measuring these stem sets is long enough for a progress bar: more than
    :data:`PROGRESS_THRESHOLD_S` seconds of stems in all (a few seconds of work)."""
    return sum(len(v.names) * v.duration_s for v in versions if v is not None) > PROGRESS_THRESHOLD_S


class _ProgressBar:
    """A transient rich progress bar on stderr while measuring (what is measured, how far, the time
    spent and the time left), or nothing when disabled."""

    def __init__(self, console: Console, *, enabled: bool) -> None:
        self._progress = Progress(TextColumn("{task.description}", markup=False), BarColumn(), TimeElapsedColumn(),
                                  TextColumn("left"), TimeRemainingColumn(), console=console,
                                  transient=True) if enabled else None

    def __enter__(self) -> Callable[[int, int, str], None] | None:
        if self._progress is None:
            return None
        self._progress.start()
        progress = self._progress
        task = progress.add_task("measuring", total=None)

        def update(done: int, total: int, upcoming: str) -> None:
            progress.update(task, completed=done, total=total, description=upcoming)
        return update

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
