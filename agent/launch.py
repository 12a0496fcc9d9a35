"""Opening a chat: a new or resumed saved session, on the user's stems or on the demo song."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from faderwise.agent.config import Config
from faderwise.agent.llm import LLMSpec, parse_llm_spec
from faderwise.agent.session import AgentSession
from faderwise.agent.store import SessionInfo, SessionStore
from faderwise.agent.workspace import Workspace
from faderwise.tools.demo_song import describe_perturbation, ensure_demo
from faderwise.tools.paths import data_dir

DEMO_PREFIX = "@demo"


def sessions_database() -> Path:
    return data_dir() / "sessions.sqlite"


def session_output_dir(session_id: str) -> Path:
    """Where a session renders applied mixes, plots and bundles."""
    return data_dir() / "sessions" / session_id


def demo_folder() -> Path:
    """The demo song in the data folder (written on first use)."""
    return ensure_demo(data_dir() / "demo")


def resolve_input(path: str | os.PathLike[str]) -> Path:
    """``@demo/version_a`` names the demo song's folders; anything else is a path, made absolute."""
    text = str(path)
    if text == DEMO_PREFIX or text.startswith(DEMO_PREFIX + "/"):
        return demo_folder() / text[len(DEMO_PREFIX) + 1:]
    return Path(os.path.abspath(Path(path).expanduser()))  # a session resumed elsewhere finds the same files


def demo_greeting() -> str:
    return (f"Welcome to **faderwise**. This is the demo song: Version A is the balanced reference B with "
            f"{describe_perturbation()}, and both are loaded. Try **overview**, \"which stem is furthest off?\", "
            "\"what about the bass?\", \"why?\", then **apply** and **compare**. `/help` lists everything; "
            "`faderwise chat STEMS --reference REFERENCE` opens your own song.")


@dataclass
class OpenChat:
    session: AgentSession
    store: SessionStore
    info: SessionInfo
    problems: list[str]
    """What the user should be told before the chat starts (a damaged database replaced, audio
    that could not be reloaded)."""
    greeting: str | None


def open_chat(*, stems: str | os.PathLike[str] | None, reference: str | os.PathLike[str] | None,
              llm: str | None, resume: str | bool, name: str | None, config: Config,
              store: SessionStore | None = None) -> OpenChat:
    """A saved chat session. ``resume`` is False for a new one, True for the latest, or an id
    (prefix) or name. A new session with no stems opens on the demo song.

    Raises:
        FaderwiseError: bad stems or reference, unknown session, bad model spec.
    """
    store = store or SessionStore(sessions_database())
    notices = list(store.notices)
    if resume is not False:
        info = store.get(None if resume is True else str(resume))
        store.lock(info.id)  # one chat per session: a second window is refused, not confused
        try:
            spec = parse_llm_spec(llm or info.llm)
            workspace = Workspace(output_dir=session_output_dir(info.id), advisor_name=config.advisor,
                                  alm_model=config.alm_model, workers=config.workers, inputs=(store.path,))
            session = AgentSession(workspace=workspace, llm=spec, checkpointer=store.saver, thread_id=info.id,
                                   archive=store.archive(info.id))
            problems = session.restore_workspace()
            if workspace.version_a is None and info.stems and not problems:  # closed before the first turn
                workspace.restore({"stems": info.stems, "reference": info.reference, "advisor": config.advisor})
            store.touch(info.id, llm=str(spec))
        except BaseException:
            store.unlock(info.id)
            raise
        return OpenChat(session, store, info, notices + problems, None)
    spec: LLMSpec = parse_llm_spec(llm or config.llm)
    greeting = None
    if stems is None:
        stems, reference = demo_folder() / "version_a", demo_folder() / "version_b"
        greeting = demo_greeting()
    stems_path, reference_path = resolve_input(stems), resolve_input(reference) if reference is not None else None
    # Load before the session exists, so bad input makes no empty session.
    probe = Workspace(output_dir=Path(), advisor_name=config.advisor, alm_model=config.alm_model,
                      workers=config.workers, inputs=(store.path,))  # no output of a tool may replace the database
    if reference_path is not None:
        probe.load_pair(stems_path, reference_path)
    else:
        probe.load_stems(stems_path)
    info = store.create(name=name, stems=str(stems_path), reference=str(reference_path) if reference_path else None,
                        llm=str(spec))
    store.lock(info.id)
    probe.output_dir = session_output_dir(info.id)
    session = AgentSession(workspace=probe, llm=spec, checkpointer=store.saver, thread_id=info.id,
                           archive=store.archive(info.id))
    if greeting is None:
        loaded = f"{len(probe.require_a().stems.names)} stems from {stems_path}"
        against = f" and the reference {reference_path}" if reference_path else " (no reference: advice will judge your mix alone)"
        greeting = f"Loaded {loaded}{against}. Ask for an **overview**, or `/help`."
    return OpenChat(session, store, info, notices, greeting)
