"""Keys never leave the process: every text faderwise shows, logs, stores or exports passes
:func:`mask_secrets` first.

The values masked are the ones actually present: every environment variable whose name says it
holds a secret (``*_API_KEY``, ``*_TOKEN``, ``*_SECRET``, ``*PASSWORD*``, ``*CREDENTIAL*``…),
whatever the value's shape, and anything registered with :func:`register_secret` (configured
headers). Shapes of well-known key formats (``sk-…``, ``gsk_…``, ``hf_…``, ``Bearer …``) are masked
as well, for keys that reached a message some other way.

The sessions database stores conversations through :class:`MaskingSerializer`, which masks the
serialized bytes of every checkpoint and write, so not even a provider's error that echoes the key
reaches the disk.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from typing import Any

from langgraph.checkpoint.serde.base import SerializerProtocol

MASK = "***"
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH", re.IGNORECASE)
MIN_SECRET_LENGTH = 8
"""Shorter values are not masked: they would mask ordinary words (and are no real keys)."""
KEY_SHAPES = re.compile(
    r"\b(?:sk|gsk|xai|hf|key|api|pk|rk)[-_][A-Za-z0-9_\-]{8,}"  # OpenAI, Groq, xAI, Hugging Face, generic
    r"|\bsk-ant-[A-Za-z0-9_\-]{8,}"  # Anthropic
    r"|(?<=Bearer )[A-Za-z0-9_\-.=+/]{8,}",  # an Authorization header echoed back
)

_registered: set[str] = set()
_registered_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Mask ``value`` from now on in this process (a configured header, a key read elsewhere)."""
    if len(value) >= MIN_SECRET_LENGTH:
        with _registered_lock:
            _registered.add(value)


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """The secrets to mask, longest first (so a key that contains another is masked whole)."""
    env = os.environ if env is None else env
    found = {value for name, value in env.items() if SECRET_NAME.search(name) and len(value) >= MIN_SECRET_LENGTH}
    with _registered_lock:
        found |= _registered
    return sorted(found, key=len, reverse=True)


def mask_secrets(text: str, *, env: Mapping[str, str] | None = None) -> str:
    """``text`` with every secret value and every key-shaped word replaced by ``***``."""
    for value in secret_values(env):
        text = text.replace(value, MASK)
    return KEY_SHAPES.sub(MASK, text)


def mask_bytes(data: bytes, *, env: Mapping[str, str] | None = None) -> bytes:
    """``data`` with every secret value's UTF-8 bytes overwritten by as many ``*``: the length is
    kept, so length-prefixed encodings (msgpack, the checkpointer's) stay valid."""
    for value in secret_values(env):
        encoded = value.encode("utf-8")
        if encoded in data:
            data = data.replace(encoded, b"*" * len(encoded))
    return data


class MaskingSerializer(SerializerProtocol):
    """A checkpoint serializer that masks secrets in everything it writes (see :func:`mask_bytes`)."""

    def __init__(self, inner: SerializerProtocol) -> None:
        self.inner = inner

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        kind, data = self.inner.dumps_typed(obj)
        return kind, mask_bytes(data)

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        return self.inner.loads_typed(data)
