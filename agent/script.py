"""Scripted conversations: ``faderwise run SCRIPT.yaml`` plays a list of turns through the same
:class:`~faderwise.agent.session.AgentSession` the chat uses, checks what each reply must say, and writes a
JSONL transcript (one object per turn).

Script format (relative paths are relative to the script file; ``@demo/version_a`` and
``@demo/version_b`` are the built-in demo song)::

    stems: path/to/versionA
    reference: path/to/versionB      # optional
    llm: offline                     # optional; --llm overrides
    turns:
      - user: "Which stem is furthest off compared to the reference?"
        expect:                      # optional, every key optional
          mentions: [vocals]         # words the reply must contain (case-insensitive)
          moves: {vocals: [-5, -3]}  # a move the reply states for that stem must fall in this dB range
          no_tool_error: true        # no tool failed, and a turn that needs a tool ran one
          tools: [advise]            # tools this turn must call (and that must not fail)
          grounded: true             # every dB, LU, time or Hz the reply states came from a tool
      - user: "apply"
        confirm: yes                 # optional: answer the confirmation this turn asks for

A turn that asks for confirmation without ``confirm`` ends on the question; the next turn's
words ("yes", "no", or anything else, which declines) answer it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faderwise.advisor.parse import parse_moves
from faderwise.agent.grounding import Grounding
from faderwise.agent.history import PruningMemorySaver
from faderwise.agent.launch import DEMO_PREFIX, resolve_input
from faderwise.agent.llm import LLMSpec, parse_llm_spec
from faderwise.agent.planner import classify
from faderwise.agent.secrets import mask_secrets
from faderwise.agent.session import (
    AgentSession,
    Confirm,
    Event,
    Guarded,
    Notice,
    Reply,
    ToolEnd,
    ToolStart,
    TurnError,
)
from faderwise.agent.tools import TOOL_NAMES
from faderwise.agent.workspace import Workspace
from faderwise.tools.errors import FaderwiseError
from faderwise.tools.input_files import SCRIPT_LIMIT_BYTES
from faderwise.tools.json_files import is_number, read_yaml
from faderwise.tools.outputs import check_target, note_input, write_text

EXPECT_KEYS = frozenset({"mentions", "moves", "no_tool_error", "tools", "grounded"})
TURN_KEYS = frozenset({"user", "expect", "confirm"})
SCRIPT_KEYS = frozenset({"stems", "reference", "llm", "turns"})
TRANSCRIPT_FORMAT = "faderwise.transcript/2"
RETRY_HINT = "run the script again to retry the model, or run it with --llm offline to use the built-in planner"


class ScriptError(FaderwiseError):
    """A script that cannot be run (the message names the file and what is wrong)."""


@dataclass(frozen=True)
class Turn:
    user: str
    expect: Mapping[str, Any] = field(default_factory=dict)
    confirm: bool | None = None


@dataclass(frozen=True)
class Script:
    path: Path
    stems: Path
    reference: Path | None
    llm: str | None
    turns: tuple[Turn, ...]


def read_script(path: str | os.PathLike[str]) -> Script:
    """Parse and check a script.

    Raises:
        ScriptError: unreadable YAML, a missing or unknown key, or a malformed expectation.
    """
    path = Path(path)
    payload = read_yaml(path, error=ScriptError, missing="no such script", limit=SCRIPT_LIMIT_BYTES, what="a script")
    if not isinstance(payload, dict):
        raise ScriptError(f"{path}: expected a mapping with 'stems' and 'turns'")
    unknown = sorted(set(payload) - SCRIPT_KEYS)
    if unknown:
        raise ScriptError(f"{path}: unknown key {', '.join(unknown)} (known: {', '.join(sorted(SCRIPT_KEYS))})")
    if not isinstance(payload.get("stems"), str):
        raise ScriptError(f"{path}: 'stems' must name the folder of stems (Version A)")
    reference = payload.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise ScriptError(f"{path}: 'reference' must be a path")
    llm = payload.get("llm")
    if llm is not None:
        try:
            parse_llm_spec(str(llm))
        except FaderwiseError as exc:
            raise ScriptError(f"{path}: llm: {exc}") from exc
    turns_payload = payload.get("turns")
    if not isinstance(turns_payload, list) or not turns_payload:
        raise ScriptError(f"{path}: 'turns' must be a non-empty list")
    turns = tuple(_read_turn(path, index, item) for index, item in enumerate(turns_payload, start=1))
    return Script(path=path, stems=_relative_to(path, payload["stems"]),
                  reference=_relative_to(path, reference) if reference else None,
                  llm=str(llm) if llm is not None else None, turns=turns)


def _relative_to(script: Path, value: str) -> Path:
    """A script's path: ``@demo/...`` is the demo song, a relative path starts at the script."""
    return resolve_input(value) if value.startswith(DEMO_PREFIX) else script.parent / value


def _read_turn(path: Path, index: int, item: object) -> Turn:
    where = f"{path}: turn {index}"
    if not isinstance(item, dict) or not isinstance(item.get("user"), str):
        raise ScriptError(f"{where}: needs 'user: <what the producer says>'")
    unknown = sorted(set(item) - TURN_KEYS)
    if unknown:
        raise ScriptError(f"{where}: unknown key {', '.join(unknown)} (known: {', '.join(sorted(TURN_KEYS))})")
    confirm = item.get("confirm")
    if confirm is not None and not isinstance(confirm, bool):
        raise ScriptError(f"{where}: 'confirm' must be yes or no")
    expect = item.get("expect") or {}
    if not isinstance(expect, dict):
        raise ScriptError(f"{where}: 'expect' must be a mapping")
    unknown = sorted(set(expect) - EXPECT_KEYS)
    if unknown:
        raise ScriptError(f"{where}: unknown expectation {', '.join(unknown)} (known: {', '.join(sorted(EXPECT_KEYS))})")
    mentions = expect.get("mentions", [])
    if not isinstance(mentions, list) or not all(isinstance(word, str) for word in mentions):
        raise ScriptError(f"{where}: 'mentions' must be a list of words")
    moves = expect.get("moves", {})
    if not isinstance(moves, dict):
        raise ScriptError(f"{where}: 'moves' must map stems to [low, high] dB")
    for stem, bounds in moves.items():
        if (not isinstance(bounds, list) or len(bounds) != 2 or not all(is_number(b) for b in bounds)
                or bounds[0] > bounds[1]):
            raise ScriptError(f"{where}: moves: {stem}: expected [low, high] in dB with low <= high, got {bounds!r}")
    for flag in ("no_tool_error", "grounded"):
        if flag in expect and not isinstance(expect[flag], bool):
            raise ScriptError(f"{where}: '{flag}' must be true or false")
    tools = expect.get("tools", [])
    if not isinstance(tools, list) or not all(isinstance(name, str) for name in tools):
        raise ScriptError(f"{where}: 'tools' must be a list of tool names")
    unknown_tools = sorted(set(tools) - set(TOOL_NAMES))
    if unknown_tools:
        raise ScriptError(f"{where}: tools: unknown tool {', '.join(unknown_tools)} (known: {', '.join(TOOL_NAMES)})")
    return Turn(user=item["user"], expect=expect, confirm=confirm)



def check_expectations(expect: Mapping[str, Any], reply: str, tool_calls: Sequence[Mapping[str, Any]],
                       stem_names: Sequence[str], *, needs_tools: bool = False,
                       grounding: Grounding | None = None) -> list[str]:
    """Each way ``reply`` (and the turn's tool calls) misses ``expect``; empty when it passes.
    ``needs_tools``: the offline planner would have called a tool for this turn; ``grounding``: the
    numbers the session's tools returned (for ``grounded``)."""
    failures = []
    for word in expect.get("mentions", []):
        if word.casefold() not in reply.casefold():
            failures.append(f"the reply does not mention {word!r}")
    if expect.get("moves"):
        stated = {move.stem: move.delta_db for move in parse_moves(reply, stem_names)}
        for stem, (low, high) in expect["moves"].items():
            moved = stated.get(stem)
            if moved is None:
                failures.append(f"the reply states no move for {stem}")
            elif not low <= moved <= high:
                failures.append(f"the reply moves {stem} by {moved:+.1f} dB, outside [{low}, {high}]")
    if expect.get("no_tool_error"):
        failures += [f"tool {call['name']} failed: {call['result']}" for call in tool_calls if call.get("failed")]
        if needs_tools and not tool_calls:
            failures.append("the turn needed a tool and none ran")
    ran = {call["name"] for call in tool_calls if "result" in call and not call.get("failed")}
    for name in expect.get("tools", []):
        if name not in ran:
            called = ", ".join(dict.fromkeys(call["name"] for call in tool_calls)) or "none"
            failures.append(f"the turn did not run {name} (tools run: {called})")
    if expect.get("grounded"):
        missing = grounding.ungrounded(reply) if grounding is not None else []
        if missing:
            failures.append(f"the reply states numbers no tool returned: {', '.join(missing)}")
    return failures


def collect(events: Sequence[Event] | Any) -> tuple[str, list[dict[str, Any]], Confirm | None, str | None]:
    """A turn's reply text, tool calls, the confirmation it ended on, and its error."""
    reply, calls, by_id, pending, error = "", [], {}, None, None
    for event in events:
        if isinstance(event, ToolStart):
            by_id[event.call_id] = {"name": event.name, "args": event.args}
            calls.append(by_id[event.call_id])
        elif isinstance(event, ToolEnd):
            call = by_id.setdefault(event.call_id, {"name": event.name, "args": {}})
            if call not in calls:
                calls.append(call)
            call.update({"result": event.content, "failed": event.failed})
        elif isinstance(event, Confirm):
            pending, reply = event, event.question
        elif isinstance(event, Reply):
            reply, pending = event.text, None
        elif isinstance(event, TurnError):
            error = event.message
    return reply, calls, pending, error


def run_script(script: Script, *, llm: LLMSpec | None, output_dir: Path,
               transcript: Path | None = None, force: bool = False) -> list[dict[str, Any]]:
    """Play ``script``; return one record per turn (also written to ``transcript`` as JSONL when
    given: owner-only, keys masked, through the guarded writer, replaced only with ``force``).
    ``llm`` overrides the script's model."""
    if transcript is not None:
        note_input(script.stems, *([script.reference] if script.reference is not None else []))
        check_target(transcript, folder=False, force=force)  # refuse before playing, not after
    spec = llm or parse_llm_spec(script.llm or "offline")
    workspace = Workspace(output_dir=output_dir)
    workspace.load_stems(script.stems)
    if script.reference is not None:
        workspace.set_reference(script.reference)
    session = AgentSession(workspace=workspace, llm=spec, checkpointer=PruningMemorySaver(), thread_id="script")
    records = []
    for number, turn in enumerate(script.turns, start=1):
        started = time.perf_counter()
        context = session.context()
        needs_tools = bool(classify(turn.user, context["stems"], has_reference=context["has_reference"]).calls)
        events = list(session.send(turn.user))
        reply, calls, pending, error = collect(events)
        if pending is not None and turn.confirm is not None:
            events += list(session.confirm(turn.confirm))
            reply, calls, pending, error = collect(events)  # one record per call, asked and answered
        grounding = Grounding.of(session.messages(), also=[workspace.summary()],
                                 stems=workspace.require_a().stems.names)
        failures = check_expectations(turn.expect, reply, calls, workspace.require_a().stems.names,
                                      needs_tools=needs_tools, grounding=grounding)
        if error:
            failures.append(f"the turn failed: {error} ({RETRY_HINT})")
        records.append({
            "format": TRANSCRIPT_FORMAT, "turn": number, "user": turn.user, "assistant": reply,
            "tool_calls": [{"name": c["name"], "args": c["args"], "result": c.get("result")} for c in calls],
            "seconds": round(time.perf_counter() - started, 3), "expect": dict(turn.expect),
            "ungrounded": grounding.ungrounded(reply),
            "guarded": [{"reason": e.reason, "text": e.text} for e in events if isinstance(e, Guarded)],
            "notices": [e.text for e in events if isinstance(e, Notice)],
            "passed": not failures, "failures": failures,
        })
    if transcript is not None:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        write_text(transcript, mask_secrets(text), force=force, private=True)
    return records
