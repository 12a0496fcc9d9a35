"""Tool calls a model wrote as text instead of as calls, read back into real calls.

Small local models behind OpenAI-compatible servers often write the call into the reply:

- Hermes / Qwen tags: ``<tool_call>{"name": "advise", "arguments": {"stem": "vocals"}}</tool_call>``
- a bare object (or a list of them, or one in a ```json fence): ``{"name": "advise", "arguments": {…}}``
  (``parameters`` instead of ``arguments`` too, and arguments as a JSON string)
- the OpenAI prompt's own notation: ``functions.compare_to_reference:`` with or without ``{…}``

:func:`read_text_calls` finds such a call, checks it against the tool's argument schema (names,
types, no unknown arguments) and returns real tool calls; a reply that looks like a call but cannot
be validated comes back as a problem, so it is never shown to the producer as an answer.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.tools import BaseTool
from pydantic import ValidationError

TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
FUNCTIONS = re.compile(r"\bfunctions\.(\w+)\s*[:(]?\s*")
EMBEDDED = re.compile(r'\{\s*"name"\s*:\s*"\w+"\s*,\s*"(?:arguments|parameters)"\s*:')
FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


@dataclass(frozen=True)
class TextCalls:
    """What a reply's text holds: ``calls`` (validated, LangChain tool-call dicts) or a ``problem``
    (it is an attempted call that cannot run); both empty for an ordinary answer."""

    calls: tuple[dict[str, Any], ...] = ()
    problem: str | None = None


def read_text_calls(text: str, tools: Mapping[str, BaseTool]) -> TextCalls:
    """The tool calls written in ``text`` (see the module's doc), validated against ``tools``."""
    written = _written_calls(text.strip())
    if written is None:
        return TextCalls()
    if isinstance(written, str):
        return TextCalls(problem=f"the model wrote a tool call faderwise could not read ({written})")
    calls = []
    for name, arguments in written:
        checked = _checked_call(name, arguments, tools)
        if isinstance(checked, str):
            return TextCalls(problem=f"the model wrote a tool call faderwise could not run ({checked})")
        calls.append(checked)
    return TextCalls(calls=tuple(calls))


def _written_calls(text: str) -> list[tuple[str, object]] | str | None:
    """(name, arguments) pairs; a string saying what is wrong with an attempted call; or None for
    text that attempts no call."""
    tagged = TAGGED.findall(text)
    if tagged:
        calls: list[tuple[str, object]] = []
        for body in tagged:
            parsed = _object_call(body)
            if isinstance(parsed, str):
                return parsed
            calls += parsed
        return calls
    fenced = FENCE.match(text)
    body = fenced.group(1) if fenced else text
    if body.startswith(("{", "[")) and re.search(r'"name"\s*:', body):
        return _object_call(body)
    embedded = EMBEDDED.search(text)  # prose, then the call
    if embedded:
        return _object_call(_first_json(text[embedded.start():]))
    named = FUNCTIONS.search(text)
    if named:
        rest = text[named.end():].strip().rstrip(")")
        if not rest:
            return [(named.group(1), {})]
        if rest.startswith("{"):
            try:
                return [(named.group(1), json.loads(_first_json(rest)))]
            except json.JSONDecodeError as exc:
                return f"functions.{named.group(1)}: the arguments are not JSON ({exc.msg})"
        return [(named.group(1), {})] if len(rest) < 3 else f"functions.{named.group(1)} followed by prose"
    return None


def _first_json(text: str) -> str:
    """The first balanced ``{…}`` of ``text`` (strings with braces taken into account)."""
    depth, in_string, escaped = 0, False, False
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[:index + 1]
    return text


def _object_call(body: str) -> list[tuple[str, object]] | str:
    try:
        payload = json.loads(body)
    except json.JSONDecodeError:
        try:
            payload = json.loads(_first_json(body))
        except json.JSONDecodeError as exc:
            return f"not JSON: {exc.msg} at character {exc.pos}"
    items = payload if isinstance(payload, list) else [payload]
    calls: list[tuple[str, object]] = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("function"), dict):  # {"type": "function", "function": …}
            item = item["function"]
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            return "a call without a tool name"
        arguments = item.get("arguments", item.get("parameters", {}))
        calls.append((item["name"], arguments))
    return calls


def _checked_call(name: str, arguments: object, tools: Mapping[str, BaseTool]) -> dict[str, Any] | str:
    """A LangChain tool call, or what is wrong with it."""
    tool = tools.get(name)
    if tool is None:
        return f"there is no tool {name!r}"
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            return f"{name}: the arguments are not JSON ({exc.msg})"
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return f"{name}: the arguments are not an object"
    schema = tool.tool_call_schema
    fields = set(getattr(schema, "model_fields", {}))
    unknown = sorted(set(arguments) - fields)
    if unknown:
        return f"{name}: unknown argument {', '.join(unknown)}"
    try:
        schema.model_validate(arguments)  # type: ignore[union-attr]
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem.get("loc", ())) or "arguments"
        return f"{name}: {where}: {problem.get('msg', 'invalid')}"
    return {"name": name, "args": dict(arguments), "id": f"call_{uuid.uuid4().hex[:12]}", "type": "tool_call"}
