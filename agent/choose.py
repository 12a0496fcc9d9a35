"""A local language model chooses what a message asks for, under a grammar.

Instead of free text, the model answers with one JSON object that a schema fixes (the intent from
:data:`~faderwise.agent.understand.INTENTS`, the stems from the session's names, a number or null
for dB…): llama.cpp and llama-cpp-python turn the schema into a grammar, so the model cannot write
anything else; Ollama takes it as ``format``. The answer becomes the same typed
:class:`~faderwise.agent.understand.Request` the offline reader makes, and the same intent table
answers it. ``bench/understanding.py`` measures it against the offline reader on the held-out set.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from faderwise.advisor.registry import advisor_names
from faderwise.agent.understand import INTENTS, Request
from faderwise.tools.errors import FaderwiseError

Dialect = Literal["json_object", "json_schema", "ollama"]
"""How a server takes a schema: llama-cpp-python's ``response_format: {type: json_object, schema}``,
OpenAI's and vLLM's ``{type: json_schema, json_schema: {schema}}``, or Ollama's ``format``."""

DESCRIPTIONS = {
    "overview": "how is my mix / what should I change (all stems)", "which": "which stem is too loud/quiet/off",
    "ranking": "order the moves, top N", "can_stay": "which stems are fine as they are",
    "overall": "is the whole mix louder or quieter than the reference", "mix_level":
    "the mix's own loudness, true peak, headroom or clipping", "stem": "a question about named stems' balance",
    "why": "the evidence for a move", "how_much": "the exact amount of a move", "measure": "measure a stem's loudness",
    "compare": "every stem against the reference, or check after applying", "what_if":
    "what would happen if a stem moved by some dB (nothing changes)", "own_move":
    "the producer sets their own amount for a stem's move", "apply": "render the moves (only some, or all but some)",
    "forget": "drop pending moves", "undo": "undo the last apply", "group": "stems summed as one (drums and bass)",
    "judge": "a second opinion on the advice", "plot": "a chart", "bundle": "write a stem's A/B clips",
    "export": "write a DAW project", "push": "move a running DAW's faders", "undo_push": "put the DAW's faders back",
    "advisor": "switch advisor", "list": "list the stems", "load": "load stems from a path",
    "reference": "load the reference from a path", "help": "what can you do", "greeting": "hello",
    "thanks": "thank you", "scope": "EQ, compression, effects, tone (beyond gain)", "clarify": "too vague to act on",
    "unknown": "not about mixing",
}


DETAILS = ("loud", "quiet", "off", "loudness", "peak", "headroom", "clipping", "levels", "reaper", "ardour",
           *advisor_names())
"""Every ``detail`` a request can have but a path (which has its own field)."""


class ChoiceError(FaderwiseError):
    """The model's answer is not the JSON the schema asks for (the message says what is wrong)."""


def request_schema(stem_names: Sequence[str]) -> dict[str, Any]:
    """The JSON schema a model's choice must follow for a session with ``stem_names``."""
    stem = {"type": "string", "enum": list(stem_names)} if stem_names else {"type": "string"}
    return {
        "type": "object",
        "properties": {
            "intent": {"type": "string", "enum": list(INTENTS)},
            "stems": {"type": "array", "items": stem},
            "db": {"type": ["number", "null"]},
            "except_stems": {"type": "array", "items": stem},
            "n": {"type": ["integer", "null"]},
            "detail": {"type": ["string", "null"], "enum": [*DETAILS, None]},
            "path": {"type": ["string", "null"], "maxLength": 200},
        },
        "required": ["intent", "stems", "db", "except_stems", "n", "detail", "path"],
    }


def system_prompt(stem_names: Sequence[str]) -> str:
    listed = "\n".join(f"- {name}: {what}" for name, what in DESCRIPTIONS.items())
    return ("You read one message from a music producer to a mixing assistant that only changes stem gains. Answer "
            "with one JSON object: the intent, the stems it is about (from: " + ", ".join(stem_names) + "; kick, "
            "snare, hats are drums; vox, BVs are vocals; 808 and sub are bass; piano, pads, synth are keys), db (the "
            "producer's own amount in dB, negative to lower, else null), except_stems (stems to leave out of an apply "
            "or forget), n (how many, for a ranking), detail (which: loud, quiet or off; mix_level: loudness, peak, "
            "headroom or clipping; plot: levels or loudness; push: reaper or ardour; advisor: its name), path (load or "
            "reference: the path given, else null).\nIntents:\n" + listed)


def response_format(schema: dict[str, Any], dialect: Dialect) -> dict[str, Any]:
    """The keyword arguments that make a server hold its answer to ``schema`` (for OpenAI-compatible
    servers sent as they are, in the body: the OpenAI client would otherwise parse the reply itself)."""
    if dialect == "ollama":
        return {"format": schema}
    if dialect == "json_object":
        return {"extra_body": {"response_format": {"type": "json_object", "schema": schema}}}
    return {"extra_body": {"response_format": {"type": "json_schema", "json_schema": {
        "name": "request", "schema": schema, "strict": True}}}}


def parse_choice(text: str, stem_names: Sequence[str]) -> Request:
    """The :class:`Request` a model's JSON answer holds.

    Raises:
        ChoiceError: not one JSON object, or an intent or stem outside the schema.
    """
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ChoiceError(f"the model's choice is not JSON ({exc.msg} at {exc.pos})") from exc
    if not isinstance(payload, dict) or payload.get("intent") not in INTENTS:
        raise ChoiceError(f"the model's choice names no intent faderwise has: {str(payload)[:80]!r}")
    names = set(stem_names)
    stems = [str(s) for s in payload.get("stems") or [] if not names or s in names]
    left_out = [str(s) for s in payload.get("except_stems") or [] if not names or s in names]
    db = payload.get("db")
    n = payload.get("n")
    detail = payload.get("detail")
    if payload["intent"] in ("load", "reference"):
        detail = payload.get("path")
    return Request(str(payload["intent"]), tuple(dict.fromkeys(stems)),
                   db=float(db) if isinstance(db, (int, float)) and not isinstance(db, bool) else None,
                   except_stems=tuple(dict.fromkeys(left_out)), n=n if isinstance(n, int) and n > 0 else None,
                   detail=detail if isinstance(detail, str) and detail else None, how="model")


def choose_request(model: Any, text: str, stem_names: Sequence[str], *, dialect: Dialect = "json_object") -> Request:
    """Ask ``model`` (a LangChain chat model) what ``text`` asks for, its answer held to the schema."""
    from langchain_core.messages import HumanMessage, SystemMessage

    bound = model.bind(**response_format(request_schema(stem_names), dialect))
    reply = bound.invoke([SystemMessage(system_prompt(stem_names)), HumanMessage(text)])
    content = reply.content if isinstance(reply.content, str) else json.dumps(reply.content)
    return parse_choice(content, stem_names)
