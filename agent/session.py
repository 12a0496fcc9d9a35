"""``AgentSession``: one conversation, as a stream of events. The TUI and the scripted runner
both drive the agent through it and nothing else.

``send(text)`` yields :data:`Event` objects while the turn runs: streamed tokens, each tool call
as it starts and ends, a confirmation question when a tool asks one, errors, and the final
reply. A failed turn loses nothing: the conversation up to it stays in the checkpointer, and
``retry()`` runs the failed step again (after ``set_llm``, on another model if wanted).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, RemoveMessage, ToolMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, Interrupt

from faderwise.advisor.judge import LLMJudge
from faderwise.agent.choose import choose_request
from faderwise.agent.graph import ModelError, Route, build_graph
from faderwise.agent.history import MemoryArchive, MessageArchive, settled_split
from faderwise.agent.llm import LLMSpec, make_chat_model
from faderwise.agent.messages import message_text
from faderwise.agent.planner import OfflinePlanner
from faderwise.agent.prompts import SYSTEM_PROMPT
from faderwise.agent.secrets import mask_secrets
from faderwise.agent.semantic import warm_up
from faderwise.agent.tools import is_yes, make_tools
from faderwise.agent.understand import Request
from faderwise.agent.workspace import Workspace
from faderwise.tools.errors import FaderwiseError

NO_WORDS = frozenset({"n", "no", "nope", "cancel", "don't", "do not", "stop"})
INTERRUPTED = "Interrupted: faderwise stopped before this finished, and nothing from it was kept."
CANCELLED = "Cancelled by the producer."


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class ToolStart:
    call_id: str
    name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class ToolEnd:
    call_id: str
    name: str
    content: str
    artifact: dict[str, Any] | None
    failed: bool


@dataclass(frozen=True)
class Confirm:
    """A tool waits for a yes or no: answer with ``send("yes")``/``send("no")`` or ``confirm``.

    ``details["id"]`` names the exact plan asked about and ``interrupt_id`` the pause waiting for
    the answer: the answer is delivered to that pause only, bound to that plan."""

    question: str
    details: dict[str, Any] = field(default_factory=dict)
    interrupt_id: str | None = None


@dataclass(frozen=True)
class Panel:
    """The stems panel's rows after a tool step (:meth:`Workspace.panel`)."""

    rows: list[dict[str, object]]


@dataclass(frozen=True)
class Reply:
    text: str


@dataclass(frozen=True)
class TurnError:
    """A turn that failed: ``message`` is one short line; ``detail`` the whole error for the log
    (keys masked); ``retry`` whether running the turn again can help (the interface says how)."""

    message: str
    detail: str = ""
    retry: bool = False


@dataclass(frozen=True)
class Notice:
    """Something the producer should know once, such as the session switching to routed mode."""

    text: str


@dataclass(frozen=True)
class Guarded:
    """A reply the guard kept from the producer (:mod:`faderwise.agent.graph`), and why."""

    reason: str
    text: str


@dataclass(frozen=True)
class Cancelled:
    pass


Event = Token | ToolStart | ToolEnd | Confirm | Panel | Reply | TurnError | Cancelled | Notice | Guarded


def _confirm_of(interrupt: Interrupt) -> Confirm:
    value = interrupt.value if isinstance(interrupt.value, dict) else {"question": str(interrupt.value)}
    return Confirm(question=str(value.get("question", "")), details=dict(value), interrupt_id=interrupt.id)


log = logging.getLogger(__name__)


def _model_choice(model: BaseChatModel, dialect: str, text: str, stems: tuple[str, ...]) -> Request | None:
    """The model's reading of ``text`` (:func:`~faderwise.agent.choose.choose_request`), or None when it
    failed: an unreachable server, a reply the schema did not hold. Kept per message (the planner reads a
    turn's message several times, and a failure must not be asked again)."""
    try:
        return choose_request(model, text, stems, dialect=dialect)  # type: ignore[arg-type]
    except Exception:  # the offline reader reads the message instead
        log.info("the model's choice of the request failed", exc_info=True)
        return None


class AgentSession:
    """One conversation with the agent.

    Args:
        workspace: the session's audio state (stems may already be loaded).
        llm: which chat model plans and answers.
        checkpointer: where turns are kept (SQLite for the app, in memory for tests and scripts).
        thread_id: the conversation's id in the checkpointer.
        system_prompt: for real models; the offline planner ignores it.
        model: a chat model to use instead of the one ``llm`` names (tests pass a fake one).
        archive: where turns older than the model's window go (:mod:`faderwise.agent.history`);
            in memory by default, the sessions database for a saved chat.
    """

    def __init__(self, *, workspace: Workspace, llm: LLMSpec, checkpointer: BaseCheckpointSaver,
                 thread_id: str, system_prompt: str = SYSTEM_PROMPT, model: BaseChatModel | None = None,
                 archive: MessageArchive | None = None) -> None:
        self.workspace = workspace
        self.thread_id = thread_id
        self.checkpointer = checkpointer
        self.archive: MessageArchive = archive if archive is not None else MemoryArchive()
        self.system_prompt = system_prompt
        self._tools = make_tools(workspace)
        self._cancel = threading.Event()
        self.llm = llm
        self.route: Route | None = None  # who picks the tools, for a language model (set by _build)
        self._graph = self._build(llm, model)
        self.pending: Confirm | None = self._pending_from_state()
        if self.pending is None:
            # a tool call cut off by a kill (not one waiting for an answer) gets its answer now,
            # so the conversation the model reads next is well-formed
            self._answer_unanswered(INTERRUPTED)

    # -- set-up ---------------------------------------------------------------------------------

    def _build(self, llm: LLMSpec, model: BaseChatModel | None = None) -> CompiledStateGraph:
        warm_up()  # the planner's request examples load while the producer types
        model = model or make_chat_model(llm, context=self.context)
        self.workspace.judge = None if llm.provider == "offline" else LLMJudge(model, name=str(llm))
        if llm.provider == "offline":
            self.route = None
            return build_graph(model, self._tools, self.workspace, checkpointer=self.checkpointer, system_prompt=None)
        self.route = Route(llm.mode())
        chooser = None
        if llm.understand == "model":
            chooser = functools.lru_cache(maxsize=32)(functools.partial(_model_choice, model, llm.grammar_dialect()))
        return build_graph(model, self._tools, self.workspace, checkpointer=self.checkpointer,
                           system_prompt=self.system_prompt, planner=OfflinePlanner(context=self.context,
                                                                                    chooser=chooser),
                           route=self.route, tool_choice=llm.tool_choice, name=str(llm))

    @property
    def config(self) -> dict[str, Any]:
        return {"configurable": {"thread_id": self.thread_id}}

    def context(self) -> dict[str, Any]:
        """What the offline planner may know: the stem names, whether a reference is loaded, the pending
        moves (a producer's own amount keeps their direction) and the stem talked about."""
        a, advice = self.workspace.version_a, self.workspace.advice
        return {"stems": a.stems.names if a else [], "has_reference": self.workspace.version_b is not None,
                "pending": advice.gains_db() if advice is not None else {}, "focus": self.workspace.focus}

    def set_llm(self, llm: LLMSpec) -> None:
        """Switch models; the conversation so far is kept."""
        self._graph = self._build(llm)
        self.llm = llm

    def _pending_from_state(self) -> Confirm | None:
        state = self._graph.get_state(self.config)
        for interrupt in state.interrupts:
            return _confirm_of(interrupt)
        return None

    def restore_workspace(self) -> list[str]:
        """Reload the workspace from the last snapshot of this conversation (resuming a session);
        returns what could not be restored."""
        values = self._graph.get_state(self.config).values
        snapshot = values.get("workspace") if values else None
        return self.workspace.restore(snapshot) if snapshot else []

    # -- turns ----------------------------------------------------------------------------------

    def send(self, text: str, *, request: Request | None = None) -> Iterator[Event]:
        """Run one turn. While a confirmation is pending, "yes"/"no" answers it; anything else
        declines it and is then taken as a new message. ``request``: what a slash command asks,
        read already (the planner runs it as it is; no sentence is parsed)."""
        if self.pending is not None:
            words = text.strip().strip(".!").casefold()
            if is_yes(words) or words in NO_WORDS:
                yield from self.confirm(is_yes(words))
                return
            yield from self.confirm(False)
        message = HumanMessage(text, additional_kwargs={"request": request.to_json()} if request is not None else {})
        yield from self._run({"messages": [message], "workspace": self.workspace.snapshot(),
                              "fallback": None, "rejected": []})

    def confirm(self, yes: bool) -> Iterator[Event]:
        """Answer the pending confirmation: the answer goes to the pause that asked, bound to the
        plan it showed (a "no", or an answer to another plan, renders nothing)."""
        if self.pending is None:
            yield TurnError("nothing is waiting for a confirmation")
            return
        pending, self.pending = self.pending, None
        answer = {"id": pending.details.get("id"), "answer": "yes" if yes else "no"}
        resume = {pending.interrupt_id: answer} if pending.interrupt_id else answer
        yield from self._run(Command(resume=resume))

    def retry(self) -> Iterator[Event]:
        """Run the step that failed again (the conversation before it is untouched)."""
        if not self._graph.get_state(self.config).next:
            yield TurnError("there is no failed turn to retry")
            return
        yield from self._run(None)

    def cancel(self) -> None:
        """Stop the running turn at its next step; what it finished is kept."""
        self._cancel.set()

    def _run(self, graph_input: Any) -> Iterator[Event]:
        self._cancel.clear()
        answer: str | None = None
        seen_rejected = 0  # a new message starts the turn's guard record afresh; a retry or an answer continues it
        if not isinstance(graph_input, dict):
            seen_rejected = len(self._graph.get_state(self.config).values.get("rejected") or [])
        stream_tokens = self.llm.provider == "offline"  # a model's reply is shown once the guard passed it
        stream = self._graph.stream(graph_input, self.config, stream_mode=["messages", "updates"])
        try:
            for mode, payload in stream:
                if self._cancel.is_set():
                    stream.close()
                    self._settle_cancelled()
                    yield Cancelled()
                    return
                if mode == "messages":
                    chunk, metadata = payload
                    if (stream_tokens and isinstance(chunk, AIMessageChunk)
                            and metadata.get("langgraph_node") == "agent"):
                        text = message_text(chunk.content)
                        if text:
                            yield Token(text)
                    continue
                for node, update in payload.items():
                    if node == "__interrupt__":
                        for interrupt in update:
                            self.pending = _confirm_of(interrupt)
                            yield self.pending
                    elif node == "agent":
                        rejected = update.get("rejected") or []
                        for record in rejected[seen_rejected:]:
                            yield Guarded(mask_secrets(record["reason"]), mask_secrets(record["text"]))
                        seen_rejected = max(seen_rejected, len(rejected))
                        notice = self.route.take_notice() if self.route is not None else None
                        if notice:
                            yield Notice(notice)
                        for message in update["messages"]:
                            for call in getattr(message, "tool_calls", []):
                                yield ToolStart(call["id"], call["name"], dict(call["args"]))
                            if isinstance(message, AIMessage) and not message.tool_calls:
                                answer = message_text(message.content)
                    elif node == "tools":
                        for message in update["messages"]:
                            if isinstance(message, ToolMessage):
                                yield ToolEnd(message.tool_call_id, message.name or "",
                                              mask_secrets(message_text(message.content)),
                                              message.artifact if isinstance(message.artifact, dict) else None,
                                              message.status == "error")
                        yield Panel(self.workspace.panel())
        except ModelError as exc:
            yield TurnError(mask_secrets(f"the model ({self.llm}) failed: {exc}"),
                            detail=mask_secrets(exc.detail), retry=True)
            return
        except FaderwiseError as exc:  # the sessions database failed, …
            yield TurnError(mask_secrets(str(exc)), retry=True)
            return
        except Exception as exc:  # a fault of faderwise's own: say so, keep the session usable
            yield TurnError(mask_secrets(f"this turn failed inside faderwise: {type(exc).__name__}: {exc}"),
                            detail=mask_secrets(repr(exc)), retry=True)
            return
        if answer is not None:
            self._archive_old_turns()
            yield Reply(answer)

    def _archive_old_turns(self) -> None:
        """Move turns older than the model's window from the graph state to the archive, once, then
        drop the checkpoints they made superseded: state and storage grow linearly with turns and
        a model is sent a bounded context."""
        values = self._graph.get_state(self.config).values
        older, _ = settled_split(values.get("messages", []) if values else [])
        if older:
            self.archive.append(older)
            self._graph.update_state(self.config, {"messages": [RemoveMessage(id=m.id) for m in older]},
                                     as_node="agent")
        with contextlib.suppress(NotImplementedError):  # a checkpointer that cannot prune keeps its history
            self.checkpointer.prune([self.thread_id])

    def _settle_cancelled(self) -> None:
        """After a cancel, answer tool calls left without results, so the next turn's model
        sees a well-formed conversation."""
        self._answer_unanswered(CANCELLED)
        self.pending = None

    def _answer_unanswered(self, text: str) -> None:
        """Answer, with ``text``, the latest step's tool calls that have no result."""
        state = self._graph.get_state(self.config)
        messages: list[BaseMessage] = state.values.get("messages", []) if state.values else []
        if not messages or not isinstance(messages[-1], AIMessage) or not messages[-1].tool_calls:
            return
        answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
        missing = [ToolMessage(content=text, tool_call_id=call["id"], name=call["name"], status="error")
                   for call in messages[-1].tool_calls if call["id"] not in answered]
        if missing:
            # The model's message may be a write of the step the cancel cut short (shown by
            # get_state, not yet checkpointed): write it again with its results. add_messages
            # replaces a message of the same id, so a checkpointed one is not doubled.
            self._graph.update_state(self.config, {"messages": [messages[-1], *missing]}, as_node="tools")

    # -- history --------------------------------------------------------------------------------

    def messages(self) -> list[BaseMessage]:
        """The whole conversation: archived turns, then the recent ones the model sees."""
        values = self._graph.get_state(self.config).values
        return self.archive.messages() + (list(values.get("messages", [])) if values else [])
