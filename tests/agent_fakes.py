"""A scripted chat model for agent tests: it answers with the messages (or raises the errors) it
was given, in order, and records what it was shown. ``bind_tools`` returns the model itself."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field


def call(name: str, call_id: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


class ScriptedChatModel(BaseChatModel):
    responses: list[Any] = Field(default_factory=list)  # AIMessage to answer, an exception to raise
    seen: list[list[BaseMessage]] = Field(default_factory=list)
    gate: threading.Event | None = None  # when set, each call waits for it first

    model_config = {"arbitrary_types_allowed": True}

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:  # type: ignore[override]
        return self

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        if self.gate is not None:
            self.gate.wait(10)
        self.seen.append(list(messages))
        if not self.responses:
            raise AssertionError("the scripted model ran out of responses")
        response = self.responses.pop(0)
        if isinstance(response, BaseException):
            raise response
        return ChatResult(generations=[ChatGeneration(message=response)])
