"""The agent graph: model → tools → remember → model, until the model answers without tools.

``remember`` copies the workspace snapshot into the graph state after every tool step, so the
session database always knows which stems, reference, advice and applied moves a session has.
A tool may pause the graph (``interrupt``) to ask the producer; the checkpointer keeps the pause.

With a real language model the ``agent`` step also guards what reaches the producer:

* a tool call the model wrote as text is read back, validated and run as a real call
  (:mod:`faderwise.agent.text_calls`); one that cannot be validated is never shown as an answer;
* a reply that states a level, gain, time or frequency no tool returned is kept from the producer
  (:mod:`faderwise.agent.grounding`): the offline planner answers the turn from its own tool calls
  instead, with one line saying why (the turn's ``fallback``);
* in *routed* mode (:class:`Route`) the planner picks the tools and the model only words the answer
  from their results, under the same guard; a wording that drops or changes a move of the planner's
  answer, or the stem the producer asked about, is replaced by that answer too. ``auto`` starts native and switches the session to routed
  the first time the model answers without a tool where the planner would have called one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command

from faderwise.advisor.explain import is_leave
from faderwise.advisor.parse import parse_moves
from faderwise.advisor.stem_names import mentioned_stems
from faderwise.agent.grounding import MOVE_TOLERANCE_DB, Grounding, describe_ungrounded
from faderwise.agent.llm import provider_error_line
from faderwise.agent.messages import message_text, turn_start
from faderwise.agent.planner import Intent, OfflinePlanner
from faderwise.agent.prompts import WORDING_PROMPT
from faderwise.agent.secrets import mask_secrets
from faderwise.agent.text_calls import TextCalls, read_text_calls
from faderwise.agent.tools import CHANGES_SESSION, CONFIRMS_ITSELF, ask_producer
from faderwise.agent.workspace import Workspace
from faderwise.tools.errors import FaderwiseError

ROUTE_KEY = "faderwise_route"
"""``response_metadata`` key of a message faderwise made for the model: "planner" (the offline
planner's step) or "text-call" (a call read back from the model's text)."""


class ModelError(FaderwiseError):
    """The chat model failed to answer (its service is down, refused, or replied badly).

    The message is one short line; ``detail`` is the provider's whole error, keys masked."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail or message


class AgentState(MessagesState):
    """The conversation, the workspace snapshot (:meth:`Workspace.snapshot`), and this turn's guard
    record: ``fallback`` (why the planner answers it, or None) and ``rejected`` (replies kept from
    the producer: ``{"text", "reason"}``)."""

    workspace: dict[str, Any]
    fallback: str | None
    rejected: list[dict[str, str]]


class Route:
    """Who picks the tools in a session: ``mode`` is native, routed or auto (see the module's doc);
    ``current`` is native or routed. Shared by the session and its graph, so a switch lasts."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.current = "routed" if mode == "routed" else "native"
        self._notice: str | None = None

    def switch_to_routed(self, model: str, *, why: str | None = None) -> None:
        """Switch for good; ``why`` says what the model did (default: it answered without a tool)."""
        if self.current != "routed":
            self.current = "routed"
            self._notice = (f"{model} {why or 'answered without calling a tool'}, so for the rest of this session "
                            "the built-in planner picks the tools and the model words the answers from their results.")

    def take_notice(self) -> str | None:
        """The one-time note about a switch, once."""
        notice, self._notice = self._notice, None
        return notice


def tool_error_message(error: Exception) -> str:
    """What the model (and the producer) reads when a tool fails: faderwise's own message, or
    the exception's type and message for anything unexpected."""
    if isinstance(error, FaderwiseError):
        return mask_secrets(f"Error: {error}")
    return mask_secrets(f"Error: {type(error).__name__}: {error}")


def is_planner_step(message: BaseMessage) -> bool:
    return isinstance(message, AIMessage) and message.response_metadata.get(ROUTE_KEY) == "planner"


def planner_view(messages: Sequence[BaseMessage], start: int, wanted: set[str] | None = None) -> list[BaseMessage]:
    """What the planner reads of this turn: the conversation up to the producer's message, then its
    own steps and the results of the tools named in ``wanted`` that already ran this turn (whoever
    called them: a tool that ran, an apply above all, is never run twice)."""
    own: set[str] = set()
    view = list(messages[:start + 1])
    for message in messages[start + 1:]:
        if is_planner_step(message):
            own |= {call["id"] for call in message.tool_calls}  # type: ignore[attr-defined]
            view.append(message)
        elif isinstance(message, ToolMessage) and (message.tool_call_id in own or message.name in (wanted or set())):
            view.append(message)
    return view


UNGROUNDED = "the model's reply stated numbers that no tool returned"
UNHELD = "the model's reply stated a fader move the advice does not hold"
WROTE_CALL = "the model wrote a tool call faderwise could not run"
LEFT_OUT = "the model's wording left out part of the answer"
KEPT_CALLING = "the model kept calling tools without answering"
MAX_MODEL_STEPS = 8  # steps of tool calls one turn may take before the planner answers it
HELD_TOLERANCE_DB = 0.26  # a reply's "about 4 dB" holds a -3.8 dB move: words round moves to 0.5 dB


def fallback_line(reason: str) -> str:
    return f"(faderwise: {reason}, so this answer is the built-in planner's, from the tools' results.)"


def _bind(model: BaseChatModel, tools: Sequence[BaseTool], tool_choice: str) -> Runnable[Any, BaseMessage]:
    if tool_choice == "omit":
        return model.bind_tools(list(tools))
    if tool_choice == "required" and model._llm_type.startswith("anthropic"):
        tool_choice = "any"  # Anthropic's name for it
    return model.bind_tools(list(tools), tool_choice=tool_choice)


def build_graph(model: BaseChatModel, tools: Sequence[BaseTool], workspace: Workspace, *,
                checkpointer: BaseCheckpointSaver | None, system_prompt: str | None,
                planner: OfflinePlanner | None = None, route: Route | None = None, tool_choice: str = "omit",
                name: str = "the model") -> CompiledStateGraph:
    """The graph. ``planner`` and ``route`` given: ``model`` is a language model under the guard
    (see the module's doc); else ``model`` (the offline planner, or a test's fake) answers alone."""
    first = _bind(model, tools, tool_choice)
    then = _bind(model, tools, "auto") if tool_choice == "required" else first
    by_name = {tool.name: tool for tool in tools}

    def system(messages: list[BaseMessage]) -> list[BaseMessage]:
        if not system_prompt:
            return messages
        summary = f"What this session holds now (older turns are not shown): {workspace.summary()}"
        return [SystemMessage(f"{system_prompt}\n\n{summary}"), *messages]

    def ask(runnable: Runnable[Any, BaseMessage], messages: list[BaseMessage], config: RunnableConfig | None,
            ) -> BaseMessage:
        try:
            return runnable.invoke(messages, config)
        except Exception as exc:  # unreachable service, refused request, malformed reply
            raise ModelError(provider_error_line(exc),
                             detail=mask_secrets(f"{type(exc).__name__}: {exc}")) from exc

    def stem_names() -> list[str]:
        return workspace.version_a.stems.names if workspace.version_a else []

    def grounding(messages: Sequence[BaseMessage]) -> Grounding:
        return Grounding.of(messages, also=[workspace.summary()], stems=stem_names())

    def unheld(text: str) -> str:
        """The moves ``text`` tells the producer to make that neither the pending advice nor an applied
        step holds (a "leave it" is held where the advice leaves that stem); empty when it tells none of
        those. Descriptions ("4 dB louder than in the reference") are evidence, which the grounding guard
        checks; with no advice and nothing applied, there is nothing to hold a move against."""
        if workspace.advice is None and not workspace.applied:
            return ""
        stems = stem_names()
        held: dict[str, list[float]] = {}
        if workspace.advice is not None:
            for move in workspace.advice.moves:
                held.setdefault(move.stem, []).append(move.delta_db)
        for step in workspace.applied:
            for stem, gain in step.gains_db.items():
                held.setdefault(stem, []).append(gain)
        for stem, gain in workspace.total_gains().items():
            held.setdefault(stem, []).append(gain)
        wrong = []
        for stated in parse_moves(text, stems, instructions_only=True):
            deltas = held.get(stated.stem, [])
            if (not deltas and is_leave(stated.delta_db)) or any(abs(d - stated.delta_db) <= HELD_TOLERANCE_DB
                                                                for d in deltas):
                continue
            wrong.append(f"the {stated.stem} {stated.delta_db:+.1f} dB")
        return ", ".join(wrong)

    def planner_step(messages: list[BaseMessage], start: int) -> tuple[AIMessage, Intent, list[ToolMessage]]:
        """The planner's next step of this turn: the calls its intent still needs (those that did not
        run this turn), or its answer; with the intent and the results the answer comes from."""
        assert planner is not None
        intent = planner.intent(messages[:start + 1])
        view = planner_view(messages, start, {name for name, _ in intent.calls})
        results = [m for m in view[start + 1:] if isinstance(m, ToolMessage)]
        ran = {m.name for m in results}
        missing = [(name, args) for name, args in intent.calls if name not in ran]
        if missing and ran:
            calls = [{"name": name, "args": args, "id": f"call_{uuid.uuid4().hex[:12]}", "type": "tool_call"}
                     for name, args in missing]
            return AIMessage(content="", tool_calls=calls, response_metadata={ROUTE_KEY: "planner"}), intent, results
        step = planner.respond(view)
        return (AIMessage(content=step.content, tool_calls=step.tool_calls, response_metadata={ROUTE_KEY: "planner"}),
                intent, results)

    def planner_turn(messages: list[BaseMessage], start: int, update: dict[str, Any]) -> dict[str, Any]:
        """The planner's next step; its answer carries the fallback's line."""
        step, _, _ = planner_step(messages, start)
        reason = update.get("fallback")
        if not step.tool_calls and reason:
            step = AIMessage(content=f"{step.content}\n\n{fallback_line(reason)}",
                             response_metadata={ROUTE_KEY: "planner"})
        return {**update, "messages": [step]}

    def fall_back(messages: list[BaseMessage], start: int, state: AgentState, reason: str, text: str, *,
                  detail: str | None = None) -> dict[str, Any]:
        """The planner answers this turn; ``reason`` goes in the answer's line (no numbers: it must
        pass the guard itself), ``detail`` with the rejected ``text`` to the log."""
        rejected = [*state.get("rejected", []), {"text": text, "reason": detail or reason}]
        return planner_turn(messages, start, {"fallback": reason, "rejected": rejected})

    def unfaithful(draft: str, wording: str, asked: Sequence[str]) -> str:
        """What a rewording leaves out of the planner's answer: a stem it moves (or moves otherwise),
        or a stem the producer asked about; empty when it keeps them all."""
        stems = stem_names()
        kept = {m.stem: m.delta_db for m in parse_moves(wording, stems)}
        problems = [f"the {m.stem} move ({m.delta_db:+.1f} dB)" for m in parse_moves(draft, stems)
                    if not is_leave(m.delta_db) and abs(kept.get(m.stem, 0.0) - m.delta_db) > MOVE_TOLERANCE_DB]
        named = set(mentioned_stems(wording, stems))
        problems += [f"the {stem}" for stem in asked if stem in stems and stem not in named]
        return ", ".join(dict.fromkeys(problems))

    def worded(messages: list[BaseMessage], start: int, state: AgentState, config: RunnableConfig,
               ) -> dict[str, Any]:
        """Routed mode: the planner's tools have run (or it needs none); the model words the answer."""
        draft, intent, results = planner_step(messages, start)
        if draft.tool_calls or intent.kind in ("help", "stray-answer", "clarify", "which-daw"):
            return {"messages": [draft]}
        if results:
            facts = "\n".join(f"- {m.name}: {m.content}" for m in results)
            prompt = [SystemMessage(WORDING_PROMPT), HumanMessage(
                f"The producer said: {messages[start].content}\n\nWhat the tools returned:\n{facts}\n\n"
                f"A correct answer to reword:\n{draft.content}")]
        else:  # nothing to measure (small talk, a question about faderwise): the model answers
            prompt = system(list(messages))
        reply = ask(model, prompt, config)
        text = message_text(reply.content)
        problem = read_text_calls(text, by_name)
        if problem.calls or problem.problem:
            return fall_back(messages, start, state, WROTE_CALL, text,
                             detail=problem.problem or "the model wrote a tool call instead of the answer")
        if not text.strip():
            return fall_back(messages, start, state, "the model's reply was empty", text)
        missing = grounding(messages).ungrounded(text)
        if missing:
            return fall_back(messages, start, state, UNGROUNDED, text, detail=describe_ungrounded(missing))
        stated = unheld(text)
        if stated:
            return fall_back(messages, start, state, UNHELD, text, detail=f"{UNHELD}: {stated}")
        left_out = unfaithful(message_text(draft.content), text, intent.stems)
        if results and left_out:
            return fall_back(messages, start, state, LEFT_OUT, text, detail=f"{LEFT_OUT}: {left_out}")
        return {"messages": [AIMessage(content=text, response_metadata={ROUTE_KEY: "worded"})]}

    def call_model(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        messages = list(state["messages"])  # the recent turns only (faderwise.agent.history)
        if planner is None or route is None:
            return {"messages": [ask(first, system(messages), config)]}
        start = turn_start(messages)
        if start is None:
            return {"messages": [ask(first, system(messages), config)]}
        if state.get("fallback"):
            return planner_turn(messages, start, {"fallback": state["fallback"]})
        if messages[start].additional_kwargs.get("request"):  # a slash command runs as it was read
            return planner_turn(messages, start, {})
        if route.current == "routed":
            return worded(messages, start, state, config)
        turn = messages[start + 1:]
        ran = {m.name for m in turn if isinstance(m, ToolMessage)}
        if sum(1 for m in turn if isinstance(m, AIMessage) and m.tool_calls) >= MAX_MODEL_STEPS:
            return fall_back(messages, start, state, KEPT_CALLING, "", detail=f"{KEPT_CALLING} ({MAX_MODEL_STEPS} "
                             f"steps of tool calls in one turn: {', '.join(sorted(ran))})")
        reply = ask(then if ran else first, system(messages), config)
        text = message_text(reply.content)
        written = read_text_calls(text, by_name) if not getattr(reply, "tool_calls", None) else TextCalls()
        calls = list(getattr(reply, "tool_calls", None) or written.calls)
        wanted = {call_name for call_name, _ in planner.intent(messages[:start + 1]).calls}
        problem = written.problem
        unasked = sorted({c["name"] for c in calls if c["name"] in CHANGES_SESSION and c["name"] not in wanted})
        if unasked:
            problem = f"the model called {', '.join(unasked)}, which the producer's message did not ask for"
        missed = not calls and bool(wanted) and not wanted & ran  # none of the tools the message needs ran
        if route.mode == "auto" and (missed or problem):
            # the model cannot pick tools here: the planner picks them from now on
            route.switch_to_routed(name, why=problem and ("wrote a tool call faderwise could not run"
                                                          if written.problem else "called a tool the message did not "
                                                          "ask for"))
            shown = text or ", ".join(f"{c['name']}({c['args']})" for c in calls)
            rejected = [*state.get("rejected", []), {
                "text": shown, "reason": problem or ("the model answered without calling the tools the message "
                                                     "needed" if ran else "the model answered without calling a tool")}]
            update = worded(messages, start, {**state, "rejected": rejected}, config)  # type: ignore[typeddict-item]
            return {"rejected": rejected, **update}
        if calls:
            if reply.tool_calls:
                return {"messages": [reply]}
            return {"messages": [AIMessage(content="", tool_calls=calls, response_metadata={ROUTE_KEY: "text-call"})]}
        if written.problem:
            return fall_back(messages, start, state, WROTE_CALL, text, detail=written.problem)
        if not text.strip():
            return fall_back(messages, start, state, "the model's reply was empty", text)
        missing = grounding(messages).ungrounded(text)
        if missing:
            return fall_back(messages, start, state, UNGROUNDED, text, detail=describe_ungrounded(missing))
        stated = unheld(text)
        if stated:
            return fall_back(messages, start, state, UNHELD, text, detail=f"{UNHELD}: {stated}")
        return {"messages": [reply]}

    def approve(state: AgentState) -> Command[Any]:
        """A model's call of a tool that changes the session, which the producer's message did not ask
        for, runs only when the producer says yes (the tools that ask on their own, apply and push and
        their undos, ask then). Declined: no call of that step runs, and the model is told why."""
        messages = list(state["messages"])
        step = messages[-1]
        calls = list(getattr(step, "tool_calls", None) or [])
        start = turn_start(messages)
        if planner is None or start is None or is_planner_step(step):
            return Command(goto="tools")
        wanted = {name for name, _ in planner.intent(messages[:start + 1]).calls}
        unasked = [call for call in calls if call["name"] in CHANGES_SESSION - CONFIRMS_ITSELF
                   and call["name"] not in wanted]
        if not unasked:
            return Command(goto="tools")
        listed = "; ".join(f"{call['name']}({', '.join(f'{k}={v!r}' for k, v in call['args'].items())})"
                           for call in unasked)
        question = mask_secrets(f"The model ({name.partition(',')[0]}) wants to run {listed}, which your message did "
                                "not ask for. Go ahead? (yes/no)")
        if ask_producer(unasked[0]["id"], "confirm-tool", question,
                        [[call["id"], call["name"], call["args"]] for call in unasked]) == "yes":
            return Command(goto="tools")
        declined = {call["id"] for call in unasked}
        return Command(goto="agent", update={"messages": [ToolMessage(
            content=("Not run: the producer did not allow it (their message did not ask for it)."
                     if call["id"] in declined else "Not run: another call of this step was declined."),
            tool_call_id=call["id"], name=call["name"], status="error") for call in calls]})

    def remember(state: AgentState) -> dict[str, Any]:
        return {"workspace": workspace.snapshot()}

    graph = StateGraph(AgentState)
    graph.add_node("agent", call_model)
    graph.add_node("approve", approve, destinations=("tools", "agent"))
    graph.add_node("tools", ToolNode(list(tools), handle_tool_errors=tool_error_message))
    graph.add_node("remember", remember)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition, {"tools": "approve", END: END})
    graph.add_edge("tools", "remember")
    graph.add_edge("remember", "agent")
    return graph.compile(checkpointer=checkpointer)
