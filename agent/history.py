"""A conversation that grows linearly, and a model context that does not grow at all.

LangGraph checkpoints the whole graph state at every step. Left alone, a session's ``messages``
would be written again, whole, with every step (tool results and their artifacts included): state,
database and serialising time grow with the square of the conversation (a 2000-turn scripted run
passed 16 GB). So:

* the graph state keeps only the :data:`RECENT_TURNS` latest turns: what a model is sent,
  next to a summary of the workspace;
* older turns move, once, to an append-only :class:`MessageArchive` (a table of the sessions
  database, or a list for scripted runs), from which transcripts, exports and a resumed chat read
  the whole conversation;
* superseded checkpoints of a thread are pruned after each turn (:class:`PruningSqliteSaver`,
  :class:`PruningMemorySaver`), so a tool artifact is stored once.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from typing import Protocol

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.sqlite import SqliteSaver

RECENT_TURNS = 8
"""Turns (a producer's message and everything that answered it) kept in the graph state."""

HISTORY_TABLE = """
CREATE TABLE IF NOT EXISTS faderwise_history (
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    message BLOB NOT NULL,
    PRIMARY KEY (session_id, seq)
)"""


def settled_split(messages: Sequence[BaseMessage], *, keep_turns: int = RECENT_TURNS,
                  ) -> tuple[list[BaseMessage], list[BaseMessage]]:
    """``(older, recent)``: ``recent`` starts at the ``keep_turns``-th last producer message, so a
    tool call and its result are never split. Nothing is older while the conversation is not
    settled (its last message is not a finished reply)."""
    starts = [index for index, message in enumerate(messages) if isinstance(message, HumanMessage)]
    last = messages[-1] if messages else None
    settled = isinstance(last, AIMessage) and not last.tool_calls
    if not settled or len(starts) <= keep_turns:
        return [], list(messages)
    cut = starts[-keep_turns]
    return list(messages[:cut]), list(messages[cut:])


class MessageArchive(Protocol):
    """Turns that left the graph state, in order."""

    def append(self, messages: Sequence[BaseMessage]) -> None: ...

    def messages(self) -> list[BaseMessage]: ...


class MemoryArchive:
    """An archive in memory (scripted runs, tests)."""

    def __init__(self) -> None:
        self._messages: list[BaseMessage] = []

    def append(self, messages: Sequence[BaseMessage]) -> None:
        self._messages.extend(messages)

    def messages(self) -> list[BaseMessage]:
        return list(self._messages)


class SqliteArchive:
    """One session's archive in the sessions database, serialised like its checkpoints (keys masked)."""

    def __init__(self, connection: sqlite3.Connection, lock: threading.Lock, serde: SerializerProtocol,
                 session_id: str) -> None:
        self._connection, self._lock, self._serde, self.session_id = connection, lock, serde, session_id
        with self._lock, self._connection:
            self._connection.execute(HISTORY_TABLE)

    def append(self, messages: Sequence[BaseMessage]) -> None:
        with self._lock, self._connection:
            start = self._connection.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM faderwise_history "
                                             "WHERE session_id = ?", (self.session_id,)).fetchone()[0]
            self._connection.executemany(
                "INSERT INTO faderwise_history VALUES (?, ?, ?, ?)",
                [(self.session_id, start + offset, *self._serde.dumps_typed(message))
                 for offset, message in enumerate(messages)])

    def messages(self) -> list[BaseMessage]:
        with self._lock:
            rows = self._connection.execute("SELECT type, message FROM faderwise_history WHERE session_id = ? "
                                            "ORDER BY seq", (self.session_id,)).fetchall()
        return [self._serde.loads_typed((kind, data)) for kind, data in rows]

    def delete(self) -> None:
        with self._lock, self._connection:
            self._connection.execute("DELETE FROM faderwise_history WHERE session_id = ?", (self.session_id,))


class PruningSqliteSaver(SqliteSaver):
    """LangGraph's SQLite checkpointer with ``prune(..., strategy="keep_latest")``: the latest
    checkpoint of each namespace of a thread, and its pending writes, stay; the rest go. (The
    graph uses no ``DeltaChannel``, so no history is needed to rebuild the latest state.)"""

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        with self.cursor() as cursor:
            for thread_id in thread_ids:
                if strategy == "delete":
                    cursor.execute("DELETE FROM checkpoints WHERE thread_id = ?", (thread_id,))
                    cursor.execute("DELETE FROM writes WHERE thread_id = ?", (thread_id,))
                    continue
                latest = "SELECT checkpoint_ns, MAX(checkpoint_id) FROM checkpoints WHERE thread_id = ? " \
                         "GROUP BY checkpoint_ns"
                for table in ("writes", "checkpoints"):
                    cursor.execute(f"DELETE FROM {table} WHERE thread_id = ? AND (checkpoint_ns, checkpoint_id) "
                                   f"NOT IN ({latest})", (thread_id, thread_id))


class PruningMemorySaver(InMemorySaver):
    """LangGraph's in-memory checkpointer with ``prune(..., strategy="keep_latest")``, dropping
    superseded checkpoints, their writes and every channel blob the latest checkpoint does not use."""

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        for thread_id in thread_ids:
            namespaces = self.storage.get(thread_id, {})
            kept: dict[str, tuple[str, dict[str, object]]] = {}
            for namespace, checkpoints in namespaces.items():
                if strategy == "delete" or not checkpoints:
                    continue
                latest = max(checkpoints)
                versions = self.serde.loads_typed(checkpoints[latest][0])["channel_versions"]
                kept[namespace] = (latest, versions)
                for checkpoint_id in [cid for cid in checkpoints if cid != latest]:
                    del checkpoints[checkpoint_id]
            for key in [key for key in self.writes if key[0] == thread_id]:
                if key[1] not in kept or key[2] != kept[key[1]][0]:
                    del self.writes[key]
            for key in [key for key in self.blobs if key[0] == thread_id]:
                namespace, channel, version = key[1], key[2], key[3]
                if namespace not in kept or kept[namespace][1].get(channel) != version:
                    del self.blobs[key]
            if strategy == "delete":
                self.storage.pop(thread_id, None)
