"""How an error tells the producer what to do, in the words of the front end in use.

The same refusal reaches a producer on the command line (``pass --force``), in the chat
(``/load FOLDER``) and through an MCP client, which has neither options nor slash commands
(``call the tool again with force: true``). Messages take their remedy from here; each front end
sets its words for the call it runs (:func:`remedies_for`), and they travel with that call as the
inputs of the write guard do (a context variable: concurrent calls never see each other's).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Remedies:
    """One front end's words for each thing a producer may be told to do.

    Attributes:
        force: how to replace an earlier faderwise output ("pass --force to replace it").
        force_word: the option's name in "… so --force will not replace it".
        map_file: where a project's track-to-stem map can be given ("--map").
        load: how to load stems (Version A).
        reference: how to load a reference (Version B).
    """

    force: str
    force_word: str
    map_file: str
    load: str
    reference: str


COMMAND_LINE = Remedies(force="pass --force to replace it", force_word="--force", map_file="--map",
                        load="give a folder of stems", reference="pass --reference STEMS_B")
CHAT = Remedies(force="choose another place", force_word="force", map_file="a SONG.stems.yaml map file",
                load="/load FOLDER", reference="/reference FOLDER")
MCP = Remedies(force="call the tool again with force: true to replace it", force_word="force: true",
               map_file="a SONG.stems.yaml map file", load="call load with the stems",
               reference="call load with a reference")

_current: contextvars.ContextVar[Remedies] = contextvars.ContextVar("faderwise_remedies", default=COMMAND_LINE)


def remedies() -> Remedies:
    """The words of the front end running this call (the command line's unless one set others)."""
    return _current.get()


@contextmanager
def remedies_for(words: Remedies) -> Iterator[None]:
    """Use ``words`` for what this call (and the threads it starts) tells the producer."""
    token = _current.set(words)
    try:
        yield
    finally:
        _current.reset(token)
