"""The agent graph: model → tools → remember → model, until the model answers without tools.

``remember`` copies the workspace snapshot into the graph state after every tool step, so the
session database always knows which stems, reference, advice and applied moves a session has.
A tool may pause the graph (``interrupt``) to ask the producer; the checkpointer keeps the pause.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import SystemMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from faderwise.agent.secrets import mask_secrets
from faderwise.agent.workspace import Workspace
from faderwise.tools.errors import FaderwiseError


class ModelError(FaderwiseError):
    """The chat model failed to answer (its service is down, refused, or replied badly)."""


class AgentState(MessagesState):
    """The conversation and the workspace snapshot (:meth:`Workspace.snapshot`)."""

    workspace: dict[str, Any]


def tool_error_message(error: Exception) -> str:
    """What the model (and the producer) reads when a tool fails: faderwise's own message, or
    the exception's type and message for anything unexpected."""
    if isinstance(error, FaderwiseError):
        return mask_secrets(f"Error: {error}")
    return mask_secrets(f"Error: {type(error).__name__}: {error}")


def build_graph(model: BaseChatModel, tools: Sequence[BaseTool], workspace: Workspace, *,
                checkpointer: BaseCheckpointSaver | None, system_prompt: str | None) -> CompiledStateGraph:
    bound = model.bind_tools(list(tools))

    def call_model(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        messages = list(state["messages"])  # the recent turns only (faderwise.agent.history)
        if system_prompt:
            summary = f"What this session holds now (older turns are not shown): {workspace.summary()}"
            messages = [SystemMessage(f"{system_prompt}\n\n{summary}"), *messages]
        try:
            return {"messages": [bound.invoke(messages, config)]}
        except Exception as exc:  # unreachable service, refused request, malformed reply
            raise ModelError(mask_secrets(f"{type(exc).__name__}: {exc}")) from exc

    def remember(state: AgentState) -> dict[str, Any]:
        return {"workspace": workspace.snapshot()}

    graph = StateGraph(AgentState)
    graph.add_node("agent", call_model)
    graph.add_node("tools", ToolNode(list(tools), handle_tool_errors=tool_error_message))
    graph.add_node("remember", remember)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    graph.add_edge("tools", "remember")
    graph.add_edge("remember", "agent")
    return graph.compile(checkpointer=checkpointer)
