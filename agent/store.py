"""Saved chat sessions: one SQLite file in the user data folder.

LangGraph's SQLite checkpointer keeps every step of every conversation (WAL mode, committed per
step, so killing the process mid-turn loses no earlier turn). Beside it, the table
``faderwise_sessions`` names each conversation: its name, the stems it was opened on, the model
spec (never a key), and when it was created and last used.

The file is created readable by its owner only (0600; SQLite gives its WAL and shared-memory
files the same mode), and everything stored passes :class:`~faderwise.agent.secrets.MaskingSerializer`. A
damaged file is found when it is opened (``PRAGMA quick_check``), moved aside under a dated name
and replaced by a new one, with one line saying so (:attr:`SessionStore.notices`). A session is
locked while a chat has it open, so a second window cannot answer the first one's questions.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from faderwise.agent.history import HISTORY_TABLE, PruningSqliteSaver, SqliteArchive
from faderwise.agent.secrets import MaskingSerializer, mask_secrets
from faderwise.tools.errors import FaderwiseError
from faderwise.tools.outputs import note_input, text_signature, write_text

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: sessions are not locked
    fcntl = None  # type: ignore[assignment]

SESSIONS_TABLE = """
CREATE TABLE IF NOT EXISTS faderwise_sessions (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    stems TEXT,
    reference TEXT,
    llm TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
)"""
SIDE_FILES = ("-wal", "-shm", "-journal")


class SessionNotFoundError(FaderwiseError):
    """No saved session matches the id (or id prefix, or name) given."""


class SessionBusyError(FaderwiseError):
    """The session is open in another chat (another window or process)."""


class SessionDatabaseError(FaderwiseError):
    """The sessions database failed while in use (the message names the file)."""


@dataclass(frozen=True)
class SessionInfo:
    id: str
    name: str
    stems: str | None
    reference: str | None
    llm: str
    created: float
    updated: float


class SessionStore:
    """The sessions database at ``path`` (created on first use, moved aside if damaged).

    Attributes:
        notices: one line per thing the user should know about the database (it was damaged
            and replaced).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.notices: list[str] = []
        self._locks: dict[str, int] = {}
        note_input(self.path)  # no output (an export, a plot) may replace the database
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _create_private(self.path)
        except OSError as exc:
            raise SessionDatabaseError(f"{self.path}: cannot create the sessions database: "
                                       f"{exc.strerror or exc}") from exc
        problem = _damage(self.path)
        if problem is not None:
            aside = self._move_aside()
            self.notices.append(f"{self.path} was damaged ({problem}); it was moved to {aside.name} and a new "
                                "sessions database was started")
            _create_private(self.path)
        try:
            self._connection = sqlite3.connect(self.path, check_same_thread=False)
            self.saver = PruningSqliteSaver(self._connection)
            self.saver.serde = MaskingSerializer(self.saver.serde)
            with self.saver.cursor() as cursor:  # the saver's set-up also switches the file to WAL
                cursor.execute(SESSIONS_TABLE)
                cursor.execute(HISTORY_TABLE)
        except sqlite3.DatabaseError as exc:
            raise SessionDatabaseError(f"{self.path}: cannot open the sessions database: {exc}") from exc

    def _move_aside(self) -> Path:
        aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        number = 1
        while aside.exists():
            number += 1
            aside = aside.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{number}")
        for side in ("", *SIDE_FILES):
            source = Path(f"{self.path}{side}")
            if source.exists():
                os.replace(source, Path(f"{aside}{side}"))
        return aside

    @contextlib.contextmanager
    def _failures(self) -> Iterator[None]:
        """Turn the database's failures into one :class:`SessionDatabaseError` naming the file."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise SessionDatabaseError(f"{self.path}: the sessions database failed: {exc}") from exc

    @contextlib.contextmanager
    def _database(self) -> Iterator[sqlite3.Cursor]:
        """A cursor whose failures are one :class:`SessionDatabaseError` naming the file."""
        with self._failures(), self.saver.cursor() as cursor:
            yield cursor

    def close(self) -> None:
        for session_id in list(self._locks):
            self.unlock(session_id)
        self._connection.close()

    # -- one chat per session -------------------------------------------------------------------

    def lock(self, session_id: str) -> None:
        """Hold ``session_id`` for this chat until :meth:`unlock` or :meth:`close` (or the process ends).

        Raises:
            SessionBusyError: another chat holds it.
        """
        if fcntl is None or session_id in self._locks:
            return
        folder = self.path.parent / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / f"{session_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode("ascii", "replace").strip() or "another process"
            os.close(fd)
            raise SessionBusyError(f"session {session_id} is open in another faderwise chat (pid {holder}); "
                                   "close it there first, or start a new chat") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._locks[session_id] = fd

    def unlock(self, session_id: str) -> None:
        fd = self._locks.pop(session_id, None)
        if fd is not None:
            os.close(fd)

    # -- sessions -------------------------------------------------------------------------------

    def create(self, *, name: str | None, stems: str | None, reference: str | None, llm: str) -> SessionInfo:
        now = time.time()
        info = SessionInfo(id=uuid.uuid4().hex[:12], name=name or time.strftime("session %Y-%m-%d %H:%M"),
                           stems=stems, reference=reference, llm=llm, created=now, updated=now)
        with self._database() as cursor:
            cursor.execute("INSERT INTO faderwise_sessions VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (info.id, info.name, info.stems, info.reference, info.llm, info.created, info.updated))
        return info

    def list(self) -> list[SessionInfo]:
        """Every session, most recently used first."""
        with self._database() as cursor:
            rows = cursor.execute(
                "SELECT id, name, stems, reference, llm, created, updated FROM faderwise_sessions "
                "ORDER BY updated DESC").fetchall()
        return [SessionInfo(*row) for row in rows]

    def get(self, key: str | None = None) -> SessionInfo:
        """The session whose id starts with ``key`` or whose name is ``key``; the latest if ``key``
        is None.

        Raises:
            SessionNotFoundError: none, or more than one, matches.
        """
        sessions = self.list()
        if key is None:
            if not sessions:
                raise SessionNotFoundError("there are no saved sessions yet")
            return sessions[0]
        matches = [s for s in sessions if s.id.startswith(key) or s.name == key]
        if len(matches) != 1:
            known = ", ".join(f"{s.id} ({s.name})" for s in sessions[:10]) or "none"
            problem = "no session" if not matches else f"{len(matches)} sessions"
            raise SessionNotFoundError(f"{problem} match {key!r}; saved sessions: {known}")
        return matches[0]

    def touch(self, session_id: str, *, llm: str | None = None) -> None:
        with self._database() as cursor:
            cursor.execute("UPDATE faderwise_sessions SET updated = ?, llm = COALESCE(?, llm) WHERE id = ?",
                           (time.time(), llm, session_id))

    def rename(self, key: str, name: str) -> SessionInfo:
        info = self.get(key)
        with self._database() as cursor:
            cursor.execute("UPDATE faderwise_sessions SET name = ? WHERE id = ?", (name, info.id))
        return self.get(info.id)

    def delete(self, key: str) -> SessionInfo:
        """Forget a session and its conversation (the audio it rendered stays on disk).

        Raises:
            SessionBusyError: a chat has it open.
        """
        info = self.get(key)
        held = info.id in self._locks
        self.lock(info.id)
        try:
            with self._failures():  # the conversation first: if it cannot go, the session stays listed
                self.saver.delete_thread(info.id)
                self.archive(info.id).delete()
            with self._database() as cursor:
                cursor.execute("DELETE FROM faderwise_sessions WHERE id = ?", (info.id,))
        finally:
            if not held:
                self.unlock(info.id)
        return info

    def archive(self, session_id: str) -> SqliteArchive:
        """Where the session's older turns are kept (:mod:`faderwise.agent.history`)."""
        return SqliteArchive(self._connection, self.saver.lock, self.saver.serde, session_id)

    def messages(self, session_id: str) -> list[BaseMessage]:
        """The whole conversation: the archived turns, then those in the latest checkpoint."""
        with self._failures():
            checkpoint = self.saver.get_tuple({"configurable": {"thread_id": session_id}})
            archived = self.archive(session_id).messages()
        recent = list(checkpoint.checkpoint["channel_values"].get("messages", [])) if checkpoint else []
        return archived + recent

    def export_markdown(self, key: str, out: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write the conversation as Markdown through the guarded writer: owner-only (0600), keys
        masked, a new file unless ``force`` (and then only over an earlier faderwise export)."""
        info = self.get(key)
        text = mask_secrets(transcript_markdown(info, self.messages(info.id)))
        return write_text(out, text, force=force, private=True)


def _create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it is missing; make an existing one 0600."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _damage(path: Path) -> str | None:
    """What is wrong with the database at ``path`` (``PRAGMA quick_check``), or None when it is sound."""
    try:
        connection = sqlite3.connect(path)
    except sqlite3.DatabaseError as exc:
        return str(exc)
    try:
        rows = connection.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    finally:
        connection.close()
    findings = [str(row[0]) for row in rows]
    return None if findings == ["ok"] else "; ".join(findings[:3])


def transcript_markdown(info: SessionInfo, messages: list[BaseMessage]) -> str:
    """The conversation as Markdown: the producer's words, each tool call folded, the replies."""
    lines = [text_signature("session export"), f"# {info.name}", "", f"- session: `{info.id}`", f"- stems: `{info.stems}`",
             f"- reference: `{info.reference}`", f"- model: `{info.llm}`",
             f"- started: {time.strftime('%Y-%m-%d %H:%M', time.localtime(info.created))}", ""]
    results = {m.tool_call_id: m for m in messages if isinstance(m, ToolMessage)}
    for message in messages:
        if isinstance(message, HumanMessage):
            lines += ["## You", "", str(message.content), ""]
        elif isinstance(message, AIMessage):
            for call in message.tool_calls:
                result = results.get(call["id"])
                lines += [f"<details><summary>tool: {call['name']}({_args(call['args'])})</summary>", "",
                          result.content if result is not None else "(no result)", "", "</details>", ""]
            if message.content:
                lines += ["## faderwise", "", str(message.content), ""]
    return "\n".join(lines)


def _args(args: dict[str, object]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in args.items())
