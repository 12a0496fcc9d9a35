"""Reading chat messages whatever the provider: a content is a string or a list of blocks."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import BaseMessage, HumanMessage


def message_text(content: object) -> str:
    """The text of a message's content: a string, or the text parts of a list of blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content
                       if not isinstance(part, dict) or part.get("type") in (None, "text"))
    return ""


def turn_start(messages: Sequence[BaseMessage]) -> int | None:
    """The index of the producer's latest message (where the current turn starts), or None."""
    return max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=None)
