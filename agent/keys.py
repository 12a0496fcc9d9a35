"""The chat's key bindings: each has an id that the config file's ``[keys]`` table can remap,
and every remapping is checked here, so a typo is one clear error instead of a key that stops
working (``cancel = "esc"`` would leave the turn with no way to cancel it)."""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class KeyBinding:
    id: str
    keys: str
    action: str
    description: str
    priority: bool = False


BINDINGS = (
    KeyBinding("cancel", "escape", "cancel", "Cancel turn"),
    KeyBinding("copy_reply", "ctrl+o", "copy_reply", "Copy reply"),
    KeyBinding("toggle_log", "ctrl+l", "toggle_log", "Log"),
    KeyBinding("quit", "ctrl+q", "quit", "Quit", priority=True),
)
BINDING_IDS = tuple(binding.id for binding in BINDINGS)
MODIFIERS = frozenset({"ctrl", "shift", "alt", "meta", "super", "hyper"})
NAMED_KEYS = frozenset({
    "escape", "enter", "return", "tab", "space", "backspace", "delete", "insert", "home", "end", "pageup",
    "pagedown", "up", "down", "left", "right", *(f"f{n}" for n in range(1, 25)),
})


def key_problem(spec: str) -> str | None:
    """What is wrong with a key spec such as ``"ctrl+o"`` or ``"f2, escape"`` (Textual's key
    names, comma-separated), or None when every key in it exists."""
    keys = [key.strip() for key in spec.split(",")]
    if not spec.strip() or any(not key for key in keys):
        return "no key named"
    for key in keys:
        *modifiers, base = key.split("+")
        unknown = [modifier for modifier in modifiers if modifier not in MODIFIERS]
        if unknown:
            return f"unknown modifier {unknown[0]!r} in {key!r} (modifiers: {', '.join(sorted(MODIFIERS))})"
        if not _is_key(base):
            return f"unknown key {base!r} in {key!r} (keys are named like escape, enter, f2, a, ctrl+o)"
    return None


def _is_key(name: str) -> bool:
    if name in NAMED_KEYS or (len(name) == 1 and name in string.printable and not name.isspace()):
        return True
    # Textual names punctuation by its Unicode name: "slash", "full_stop", "question_mark"…
    if name in {"slash", "backslash", "at", "minus", "plus", "underscore"}:
        return True
    try:
        character = unicodedata.lookup(name.replace("_", " "))
    except KeyError:
        return False
    return name == name.lower() and character.isprintable() and not character.isspace()


def check_keymap(keymap: Mapping[str, object]) -> str | None:
    """What is wrong with a ``[keys]`` table, or None. Each entry maps a binding id of
    :data:`BINDING_IDS` to a key spec (:func:`key_problem`)."""
    for binding_id, spec in keymap.items():
        if binding_id not in BINDING_IDS:
            return f"unknown binding {binding_id!r} (bindings: {', '.join(BINDING_IDS)})"
        if not isinstance(spec, str):
            return f"{binding_id} must be a key name in quotes, e.g. {binding_id} = \"f2\""
        problem = key_problem(spec)
        if problem:
            return f"{binding_id} = {spec!r}: {problem}"
    return None
