"""Saved chat sessions: one SQLite file in the user data folder.

LangGraph's SQLite checkpointer keeps every step of every conversation (WAL mode, committed per
step, so killing the process mid-turn loses no earlier turn). Beside it, the table
``faderwise_sessions`` names each conversation: its name, the stems it was opened on, the model
spec (never a key), and when it was created and last used.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.sqlite import SqliteSaver

from tools.errors import FaderwiseError, OutputExistsError
from tools.outputs import atomic_file

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


class SessionNotFoundError(FaderwiseError):
    """No saved session matches the id (or id prefix, or name) given."""


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
    """The sessions database at ``path`` (created on first use)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._connection = sqlite3.connect(self.path, check_same_thread=False)
            self.saver = SqliteSaver(self._connection)
            with self.saver.cursor() as cursor:  # the saver's set-up also switches the file to WAL
                cursor.execute(SESSIONS_TABLE)
        except sqlite3.DatabaseError as exc:
            raise FaderwiseError(f"{self.path}: cannot open the sessions database: {exc}") from exc

    def close(self) -> None:
        self._connection.close()

    def create(self, *, name: str | None, stems: str | None, reference: str | None, llm: str) -> SessionInfo:
        now = time.time()
        info = SessionInfo(id=uuid.uuid4().hex[:12], name=name or time.strftime("session %Y-%m-%d %H:%M"),
                           stems=stems, reference=reference, llm=llm, created=now, updated=now)
        with self.saver.cursor() as cursor:
            cursor.execute("INSERT INTO faderwise_sessions VALUES (?, ?, ?, ?, ?, ?, ?)",
                                     (info.id, info.name, info.stems, info.reference, info.llm, info.created,
                                      info.updated))
        return info

    def list(self) -> list[SessionInfo]:
        """Every session, most recently used first."""
        with self.saver.cursor() as cursor:
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
        with self.saver.cursor() as cursor:
            cursor.execute("UPDATE faderwise_sessions SET updated = ?, llm = COALESCE(?, llm) WHERE id = ?",
                                     (time.time(), llm, session_id))

    def rename(self, key: str, name: str) -> SessionInfo:
        info = self.get(key)
        with self.saver.cursor() as cursor:
            cursor.execute("UPDATE faderwise_sessions SET name = ? WHERE id = ?", (name, info.id))
        return self.get(info.id)

    def delete(self, key: str) -> SessionInfo:
        """Forget a session and its conversation (the audio it rendered stays on disk)."""
        info = self.get(key)
        self.saver.delete_thread(info.id)
        with self.saver.cursor() as cursor:
            cursor.execute("DELETE FROM faderwise_sessions WHERE id = ?", (info.id,))
        return info

    def messages(self, session_id: str) -> list[BaseMessage]:
        checkpoint = self.saver.get_tuple({"configurable": {"thread_id": session_id}})
        if checkpoint is None:
            return []
        return list(checkpoint.checkpoint["channel_values"].get("messages", []))

    def export_markdown(self, key: str, out: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write the conversation as Markdown (a new file unless ``force``)."""
        info = self.get(key)
        out = Path(out)
        if out.exists() and not force:
            raise OutputExistsError(f"{out}: already exists; choose a new file or pass --force to replace it")
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(out) as tmp:
            tmp.write_text(transcript_markdown(info, self.messages(info.id)), encoding="utf-8")
        return out


def transcript_markdown(info: SessionInfo, messages: list[BaseMessage]) -> str:
    """The conversation as Markdown: the producer's words, each tool call folded, the replies."""
    lines = [f"# {info.name}", "", f"- session: `{info.id}`", f"- stems: `{info.stems}`",
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
