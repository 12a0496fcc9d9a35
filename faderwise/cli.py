"""The ``faderwise`` command. Subcommands parse arguments, call a library function and print.

Errors that faderwise raises on purpose (:class:`tools.errors.FaderwiseError`) become one line on
stderr and exit status 2; nothing half-written is left behind.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from faderwise import __version__
from faderwise.paths import data_dir
from tools.errors import FaderwiseError

EXIT_ERROR = 2
# Inputs longer than this (seconds of audio to measure) get a progress bar on a terminal.
PROGRESS_THRESHOLD_S = 60.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faderwise",
        description="A terminal mixing assistant: measures your stems, compares your mix with a "
        "balanced reference and explains which faders to move. With no command it "
        "analyses the built-in demo song.",
    )
    parser.add_argument("--version", action="version", version=f"faderwise {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser("demo", help="write the procedural demo song (Version A and B stems)")
    demo.add_argument("--out", required=True, type=Path, help="new folder to write")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--force", action="store_true", help="replace OUT if it exists")
    demo.set_defaults(handler=run_demo)

    analyze = commands.add_parser("analyze", help="measure a stem set, optionally against a reference")
    analyze.add_argument("stems", type=Path, help="folder of stems, MUSDB18-HQ song folder or .stem.mp4 (Version A)")
    analyze.add_argument("--reference", type=Path, help="the balanced reference (Version B), same layouts")
    analyze.add_argument("--json", action="store_true", help="print the numbers as JSON instead of a table")
    analyze.add_argument("--plot", type=Path, metavar="FILE.png", help="write short-term loudness over time")
    analyze.set_defaults(handler=run_analyze)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = getattr(args, "handler", run_default)
    try:
        return handler(args)
    except FaderwiseError as exc:
        print(f"faderwise: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("faderwise: interrupted", file=sys.stderr)
        return 130


def run_demo(args: argparse.Namespace) -> int:
    from tools.demo_song import describe_perturbation, write_demo

    out = write_demo(args.out, seed=args.seed, force=args.force)
    print(f"wrote {out}/version_a (your mix: {describe_perturbation()} against B), {out}/version_b (balanced) "
          f"and {out}/manifest.json")
    return 0


def run_analyze(args: argparse.Namespace) -> int:
    analyze_paths(args.stems, args.reference, plot=args.plot, as_json=args.json)
    return 0


def run_default(args: argparse.Namespace) -> int:
    """No command: analyse the demo song (written to the data folder on first run)."""
    from tools.demo_song import describe_perturbation, write_demo

    demo = data_dir() / "demo"
    if not (demo / "manifest.json").is_file():
        write_demo(demo, force=demo.exists())
    console = Console()
    console.print(f"[bold]faderwise[/bold] {__version__}: the demo song. Version A is the balanced "
                  f"Version B with {describe_perturbation()}.", soft_wrap=True)
    analyze_paths(demo / "version_a", demo / "version_b", plot=None, as_json=False)
    console.print(
        "\nTry it on your own stems:  faderwise analyze STEMS_FOLDER --reference REFERENCE_FOLDER"
        "\nMore: faderwise --help", soft_wrap=True,
    )
    return 0


def analyze_paths(stems: Path, reference: Path | None, *, plot: Path | None, as_json: bool) -> None:
    """Load, measure, print; the plot is written last, so bad input writes nothing."""
    from tools.analysis import analyze_stem_set
    from tools.compare import compare_stem_sets
    from tools.plot import plot_short_term
    from tools.report import analysis_table, comparison_table
    from tools.stems import load_stem_set

    out, err = Console(), Console(stderr=True)
    version_a = load_stem_set(stems)
    version_b = load_stem_set(reference) if reference is not None else None
    total_s = version_a.duration_s + (version_b.duration_s if version_b else 0.0)
    with _ProgressBar(err, enabled=total_s > PROGRESS_THRESHOLD_S and err.is_terminal) as on_progress:
        if version_b is None:
            subject = analyze_stem_set(version_a, on_progress=on_progress)
        else:
            subject = compare_stem_sets(version_a, version_b, on_progress=on_progress)
    for line in subject.all_warnings():
        err.print(f"[yellow]warning:[/yellow] {line}", highlight=False, soft_wrap=True)
    if as_json:
        payload = {"format": "faderwise.analysis/1", "faderwise_version": __version__, **subject.to_json()}
        print(json.dumps(payload, indent=2, allow_nan=False))
    else:
        out.print(comparison_table(subject) if version_b is not None else analysis_table(subject))
    if plot is not None:
        plot_short_term(plot, subject)
        err.print(f"wrote {plot}", highlight=False, soft_wrap=True)


class _ProgressBar:
    """A transient rich progress bar on stderr while measuring, or nothing when disabled."""

    def __init__(self, console: Console, *, enabled: bool) -> None:
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                                  console=console, transient=True) if enabled else None

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
