"""Memory a command will need, said before decoding rather than discovered mid-run.

The commands read stem sets in blocks (:mod:`faderwise.tools.stem_files`): their memory does not
grow with a song's length. What still decodes a whole set into memory — training, the evaluation,
a ``.stem.mp4`` container — holds every stem as float32 ``(channels, samples)`` (shorter stems
padded to the longest) plus the working copies of a measurement. Measured on 8 stereo stems of 120 s
at 44.1 kHz (339 MB decoded): 958 MB peak, of which 111 MB is the interpreter and its libraries, so
about :data:`MEASURE_FACTOR` × the decoded size. A set that would not fit is refused up front.
"""

from __future__ import annotations

import os
from pathlib import Path

from faderwise.tools.errors import ResourceLimitError

MEASURE_FACTOR = 2.5
FLOAT_BYTES = 4
CGROUP_V2 = Path("/sys/fs/cgroup")


def decoded_bytes(*, stems: int, samples: int, channels: int) -> int:
    """Bytes of ``stems`` float32 stems of ``channels`` × ``samples`` each."""
    return stems * samples * channels * FLOAT_BYTES


def available_bytes() -> int | None:
    """Memory this process can still take, in bytes: the system's available memory, capped by
    the container's (cgroup v2) limit; None when unknown."""
    found: list[int] = []
    try:
        import psutil

        found.append(int(psutil.virtual_memory().available))
    except (ImportError, OSError):
        pass
    try:
        limit = (CGROUP_V2 / "memory.max").read_text().strip()
        if limit != "max":
            found.append(int(limit) - int((CGROUP_V2 / "memory.current").read_text().strip()))
    except (OSError, ValueError):
        pass
    return max(min(found), 0) if found else None


def require_memory(needed: int, *, what: str, remedy: str) -> None:
    """Refuse a job that needs more memory than is available.

    Args:
        needed: estimated peak bytes of the job.
        what: the job, as the message names it ("measuring vocals.wav and 5 more stems, 60:00 long").
        remedy: what the user can do about it.

    Raises:
        ResourceLimitError: ``needed`` exceeds :func:`available_bytes`.
    """
    free = available_bytes()
    if free is not None and needed > free:
        raise ResourceLimitError(f"{what} needs about {format_bytes(needed)} of memory, and {format_bytes(free)} "
                                 f"is free; {remedy}")


def format_bytes(count: int) -> str:
    """``1.9 GB``, ``850 MB``."""
    return f"{count / 1e9:.1f} GB" if count >= 1e9 else f"{count / 1e6:.0f} MB"


def format_duration(seconds: float) -> str:
    """``3:05`` or ``1:02:03``."""
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def memory_of_stem_files(origin: str | os.PathLike[str], headers: dict[str, tuple[int, int, int]]) -> None:
    """Refuse, before decoding, a stem set whose measurement would not fit in memory.

    Args:
        origin: the folder or file the stems come from (named in the message).
        headers: stem name → ``(frames, sample rate, channels)`` read from each file's header.

    Raises:
        ResourceLimitError: the set would need more than is available.
    """
    if not headers:
        return
    rates = [rate for _, rate, _ in headers.values()]
    rate = max(set(rates), key=lambda r: (rates.count(r), r))
    lengths = {name: frames / stem_rate for name, (frames, stem_rate, _) in headers.items()}
    longest = max(lengths, key=lambda name: lengths[name])
    channels = max(ch for _, _, ch in headers.values())
    needed = int(decoded_bytes(stems=len(headers), samples=int(lengths[longest] * rate), channels=channels)
                 * MEASURE_FACTOR)
    others = sorted(length for name, length in lengths.items() if name != longest)
    padded = others and lengths[longest] > 2 * others[len(others) // 2]
    hint = (f"{longest} is {format_duration(lengths[longest])} long against {format_duration(others[len(others) // 2])} "
            "for the others, and every stem is padded to the longest: trim it, or " if padded else "")
    require_memory(needed, what=f"{origin}: measuring {len(headers)} stems of {format_duration(lengths[longest])} at "
                   f"{rate} Hz, {channels} ch,",
                   remedy=f"{hint}use shorter or fewer stems, or close other programs")
