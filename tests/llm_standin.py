"""A stand-in OpenAI-compatible server for the chat's language-model paths, as strict as the real
local servers, with scripted model behaviours ("personas") seen from small local models.

Requests are validated the way llama-cpp-python's server does (its pydantic request types,
``llama_cpp/llama_types.py`` of 0.3.x: an assistant message's ``content`` is a string when present,
never null; a tool message needs ``tool_call_id``; a tool needs ``type: "function"`` and
``function.parameters``) plus vLLM's further checks (tool names of ``[A-Za-z0-9_-]``, parameters a
JSON-schema object, a tool result answers an earlier call, ``tool_choice`` other than none/auto only
with tools, call arguments a JSON string), and refuses a streamed request with tools and
``tool_choice`` auto or required, as llama-cpp-python's ``chatml-function-calling`` handler does
("Automatic streaming tool choice is not supported", seen against the real server). A request that
fails answers HTTP 500 with the whole validation dump, as llama-cpp-python's server does.

Personas decide from the request alone, like a model: which tool a message asks for (a keyword
table of their own, not faderwise's planner), how they write a call, what they say after the
tools ran, and how they word an answer when asked to (the routed mode's request has no tools).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, NotRequired

from pydantic import TypeAdapter, ValidationError
from typing_extensions import TypedDict

# -- llama-cpp-python's request types (llama_cpp/llama_types.py, 0.3.x) ---------------------------


class ToolCallFunction(TypedDict):
    name: str
    arguments: str


class ToolCall(TypedDict):
    id: str
    type: Literal["function"]
    function: ToolCallFunction


class SystemMessage(TypedDict):
    role: Literal["system"]
    content: str | None


class UserMessage(TypedDict):
    role: Literal["user"]
    content: str | list[dict[str, Any]] | None


class AssistantMessage(TypedDict):
    role: Literal["assistant"]
    content: NotRequired[str]
    tool_calls: NotRequired[list[ToolCall]]


class ToolMessage(TypedDict):
    role: Literal["tool"]
    content: str | None
    tool_call_id: str


class ToolFunction(TypedDict):
    name: str
    description: NotRequired[str]
    parameters: dict[str, Any]


class Tool(TypedDict):
    type: Literal["function"]
    function: ToolFunction


class NamedToolChoiceFunction(TypedDict):
    name: str


class NamedToolChoice(TypedDict):
    type: Literal["function"]
    function: NamedToolChoiceFunction


class ChatRequest(TypedDict):
    model: NotRequired[str | None]
    messages: list[SystemMessage | UserMessage | AssistantMessage | ToolMessage]
    tools: NotRequired[list[Tool] | None]
    tool_choice: NotRequired[Literal["none", "auto", "required"] | NamedToolChoice | None]
    stream: NotRequired[bool]
    temperature: NotRequired[float]
    max_tokens: NotRequired[int | None]
    n: NotRequired[int | None]


REQUEST = TypeAdapter(ChatRequest)


def validation_problems(body: dict[str, Any]) -> list[str]:
    """What a strict server rejects in ``body`` (empty: accepted)."""
    try:
        REQUEST.validate_python(body)
    except ValidationError as exc:
        return [f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()]
    problems = []
    called: set[str] = set()
    for index, message in enumerate(body["messages"]):
        for call in message.get("tool_calls") or []:
            called.add(call["id"])
            try:
                json.loads(call["function"]["arguments"])
            except json.JSONDecodeError:
                problems.append(f"messages.{index}.tool_calls: arguments are not a JSON string")
        if message["role"] == "tool" and message["tool_call_id"] not in called:
            problems.append(f"messages.{index}: tool result for unknown call {message['tool_call_id']!r}")
    for index, tool in enumerate(body.get("tools") or []):
        function = tool["function"]
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", function["name"]):
            problems.append(f"tools.{index}.function.name: {function['name']!r} is not a valid name")
        if function["parameters"].get("type") != "object":
            problems.append(f"tools.{index}.function.parameters: not an object schema")
    choice = body.get("tool_choice")
    if choice not in (None, "none", "auto") and not body.get("tools"):
        problems.append(f"tool_choice: {choice!r} needs tools")
    if body.get("stream") and body.get("tools") and choice in ("auto", "required"):
        # llama-cpp-python's chatml-function-calling handler (llama_chat_format.py)
        problems.append("Automatic streaming tool choice is not supported")
    return problems


# -- personas -----------------------------------------------------------------------------------

INVENTED = ("This stem has loudness values of 1770 dB, so lower the kick by 2 dB and raise the vocals by "
            "3.5 dB for a balanced mix.")


def _plan(text: str) -> list[tuple[str, dict[str, Any]]]:
    """The tool calls a producer's message asks for, by a persona's own keyword table."""
    said = text.casefold()
    named = re.search(r"\bthe (\w+)", said)
    stem = {"stem": named.group(1)} if named and named.group(1) not in ("moves", "reference", "mix") else {}
    number = re.search(r"\b(up|down) (\d+(?:\.\d+)?)", said)
    amount = (1 if number.group(1) == "up" else -1) * float(number.group(2)) if number else 0.0
    except_stem = re.search(r"except the (\w+)", said)
    for pattern, name, args in (
            (r"what if", "what_if", {**stem, "gain_db": amount}),
            (r"instead", "set_move", {**stem, "delta_db": amount}),
            (r"except", "apply_moves", {"except_stems": [except_stem.group(1)] if except_stem else []}),
            (r"headroom|clipping", "measure", {}),
            (r"together", "measure_group", {"stems": re.findall(r"\b(drums|bass|vocals|keys|guitar)\b", said)}),
            (r"second opinion", "second_opinion", {}),
            (r"overview|how'?s my mix", "advise", {}),
            (r"furthest|too quiet|too loud|poking out|buried", "advise", {}),
            (r"forget", "forget_move", stem),
            (r"\bapply\b", "apply_moves", {}),
            (r"\bundo\b", "undo_apply", {}),
            (r"compare", "compare_to_reference", {}),
            (r"how loud", "measure", stem),
            (r"what about|why|how much|and the", "explain_stem", stem)):
        if re.search(pattern, said):
            return [(name, args)]
    return []


@dataclass
class Persona:
    """How a stand-in model behaves. ``calls``: "native" (real tool calls), "hermes"
    (``<tool_call>`` tags), "functions" (``functions.NAME:`` text), "malformed" (a broken tag) or
    "never"; ``without_tool_choice``: what it does when the request sends tools but no
    ``tool_choice`` ("same", or "prose" as llama-cpp-python's server does, leaving the tools out of
    the prompt); ``words``: "draft" (rewords the answer it is given: returns it), "prefix" (the same after a
    sentence of its own), "vague" (drops the advice) or "invent"; ``delay_s``: how long each reply takes; ``fail_status``: an
    HTTP error status it answers every request with."""

    name: str
    calls: str = "native"
    without_tool_choice: str = "same"
    words: str = "draft"
    after_tools: str = "quote"
    delay_s: float = 0.0
    fail_status: int | None = None

    def reply(self, body: dict[str, Any]) -> dict[str, Any]:
        """``{"content": text}`` or ``{"tool_calls": [(name, args), …]}``."""
        messages = body["messages"]
        if not body.get("tools"):  # the routed mode's wording request, or a plain question
            return {"content": self._word(messages)}
        last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
        results = [m for m in messages[last_user + 1:] if m["role"] == "tool"]
        if results:
            return {"content": " ".join(str(m["content"]) for m in results) if self.after_tools == "quote"
                    else INVENTED}
        calls = _plan(str(messages[last_user]["content"]))
        style = self.calls
        if ("tool_choice" not in body and self.without_tool_choice == "prose") or body.get("tool_choice") == "none":
            style = "never"
        if not calls or style == "never":
            return {"content": INVENTED}
        if style == "native":
            return {"tool_calls": calls}
        if style == "hermes":
            return {"content": "".join(f'<tool_call>\n{json.dumps({"name": n, "arguments": a})}\n</tool_call>'
                                       for n, a in calls)}
        if style == "functions":
            name, args = calls[0]
            return {"content": f"functions.{name}:\n{json.dumps(args)}" if args else f"functions.{name}:"}
        return {"content": '<tool_call>{"name": "advise", "arguments": {"stem": </tool_call>'}  # malformed

    def _word(self, messages: list[dict[str, Any]]) -> str:
        if self.words == "invent":
            return INVENTED
        if self.words == "vague":
            return "Your mix sounds good to me, nice work on the balance overall."
        if self.words == "prefix" and "A correct answer to reword:" in str(messages[-1]["content"]):
            return "Here is what I found. " + str(messages[-1]["content"]).partition("A correct answer to reword:\n")[2]
        prompt = str(messages[-1]["content"])
        draft = prompt.partition("A correct answer to reword:\n")[2]
        return draft or "I only advise gain: fader moves for whole stems. Ask me about your mix's balance."


PERSONAS = {
    "native": Persona("native"),
    "hermes-tags": Persona("hermes-tags", calls="hermes"),
    "functions-text": Persona("functions-text", calls="functions", without_tool_choice="prose"),
    "prose-inventor": Persona("prose-inventor", calls="never", words="invent"),
    "malformed-calls": Persona("malformed-calls", calls="malformed"),
    "invents-after-tools": Persona("invents-after-tools", after_tools="invent"),
}


# -- the server ---------------------------------------------------------------------------------


@dataclass
class StandIn:
    """The server's state: the persona, every request body, the ones it rejected."""

    persona: Persona
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    rejected: list[list[str]] = field(default_factory=list)
    url: str = ""


def _completion(reply: dict[str, Any]) -> tuple[dict[str, Any], str]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.get("content")}
    if "tool_calls" in reply:
        message["tool_calls"] = [{"id": f"call_{index}_{int(time.monotonic_ns() % 10**9)}", "type": "function",
                                  "function": {"name": name, "arguments": json.dumps(args)}}
                                 for index, (name, args) in enumerate(reply["tool_calls"])]
    finish = "tool_calls" if "tool_calls" in reply else "stop"
    return message, finish


def _sse(message: dict[str, Any], finish: str, model: str) -> Iterator[bytes]:
    def chunk(delta: dict[str, Any], reason: str | None) -> bytes:
        payload = {"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": 0, "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": reason}]}
        return f"data: {json.dumps(payload)}\n\n".encode()

    yield chunk({"role": "assistant", "content": ""}, None)
    for index, call in enumerate(message.get("tool_calls") or []):
        yield chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                     "function": {"name": call["function"]["name"], "arguments": ""}}]}, None)
        yield chunk({"tool_calls": [{"index": index, "function": {"arguments": call["function"]["arguments"]}}]},
                    None)
    for word in re.findall(r"\S+\s*", message.get("content") or ""):
        yield chunk({"content": word}, None)
    yield chunk({}, finish)
    yield b"data: [DONE]\n\n"


def make_handler(state: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append(body)
            state.headers.append({key.lower(): value for key, value in self.headers.items()})
            problems = validation_problems(body)
            if problems:
                state.rejected.append(problems)
                dump = json.dumps({"error": {"message": "; ".join(problems) * 8, "type": "internal_server_error",
                                             "code": 500}}).encode()
                self._send(500, "application/json", dump)
                return
            time.sleep(state.persona.delay_s)
            if state.persona.fail_status:
                dump = json.dumps({"error": {"message": "model 'standin' failed to load: out of memory while "
                                             "allocating the KV cache " + "x" * 1500, "code": 503}}).encode()
                self._send(state.persona.fail_status, "application/json", dump)
                return
            model = str(body.get("model") or "standin")
            message, finish = _completion(state.persona.reply(body))
            if body.get("stream"):
                self._send(200, "text/event-stream", b"".join(_sse(message, finish, model)))
            else:
                payload = {"id": "chatcmpl-standin", "object": "chat.completion", "created": 0, "model": model,
                           "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                           "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
                self._send(200, "application/json", json.dumps(payload).encode())

        def _send(self, status: int, kind: str, payload: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (a time-out test)
                pass

        def log_message(self, *args: object) -> None:
            pass

    return Handler


class StandInServer:
    """``with StandInServer(persona) as state:`` serves on 127.0.0.1 until the block ends; ``state.url``
    is the base URL (``…/v1``) for ``OPENAI_BASE_URL``."""

    def __init__(self, persona: Persona) -> None:
        self.state = StandIn(persona)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(self.state))
        self.server.daemon_threads = True
        self.state.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> StandIn:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.state

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
