"""Which chat model drives the agent: ``offline`` (the built-in planner) or a real LLM.

Specs: ``offline``, ``ollama:MODEL[@HOST]``, ``openai:MODEL`` (``OPENAI_BASE_URL`` points it at
vLLM, llama.cpp's server, llama-cpp-python's server or LM Studio), ``anthropic:MODEL``, each
optionally followed by ``,KEY=VALUE`` options:

- ``tool_choice=auto|required|none|omit``: what is sent as the request's ``tool_choice`` on the
  first step of a turn (later steps send ``auto`` when it is ``required``, so the model can answer).
  Default: ``auto`` for openai and anthropic (llama-cpp-python's server leaves the tools out of the
  prompt when it gets none), ``omit`` for ollama (whose API has no such field).
- ``mode=native|routed|auto``: who picks the tools. ``native``: the model calls them. ``routed``:
  the offline planner calls them and the model only words the answer from their results. ``auto``
  (the default for local servers: ollama, or openai with ``OPENAI_BASE_URL`` set) starts native
  and switches the session to routed the first time the model answers without a tool where the
  planner would have called one. Cloud providers default to ``native``.
- ``timeout=SECONDS``: how long one request may take (default 120).
- ``max_tokens=N``: the longest reply (default 1024; faderwise's answers are short, and a small model
  that loses its way stops there instead of filling its context).
- ``understand=offline|model``: who reads what a message asks for when the planner picks the tools
  (routed mode, and the check of a native model's calls). ``offline`` (the default): the grammar and
  the labelled examples (:mod:`faderwise.agent.understand`). ``model``: the model chooses, its answer
  held to a JSON schema by the server's grammar (:mod:`faderwise.agent.choose`); ollama and openai only.

API keys are read by the provider libraries from the environment only; a spec never holds one,
so nothing that stores specs (sessions, transcripts, logs) can leak a key.
"""

from __future__ import annotations

import functools
import importlib
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from langchain_core.language_models import BaseChatModel

from faderwise.agent.secrets import mask_secrets
from faderwise.tools.errors import FaderwiseError, MissingDependencyError

PROVIDERS = ("ollama", "openai", "anthropic")
SPEC_HELP = "offline, ollama:MODEL[@HOST], openai:MODEL or anthropic:MODEL"
KEY_VARIABLES = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
TOOL_CHOICES = ("auto", "required", "none", "omit")
MODES = ("native", "routed", "auto")
UNDERSTAND = ("offline", "model")
OPTION_VALUES: Mapping[str, tuple[str, ...] | None] = {"tool_choice": TOOL_CHOICES, "mode": MODES, "timeout": None,
                                                       "max_tokens": None, "understand": UNDERSTAND}
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MAX_TOKENS = 1024
CLOUD_HOSTS = ("api.openai.com", "api.anthropic.com")


class LLMSpecError(FaderwiseError):
    """A model spec that names no known provider or no model, or has a bad option."""


@dataclass(frozen=True)
class LLMSpec:
    """``provider`` is "offline" or one of :data:`PROVIDERS`; ``host`` only for ollama;
    ``options`` the ``,KEY=VALUE`` options in the order given (see the module's doc)."""

    provider: str
    model: str | None = None
    host: str | None = None
    options: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        if self.provider == "offline":
            return "offline"
        text = f"{self.provider}:{self.model}" + (f"@{self.host}" if self.host else "")
        return text + "".join(f",{key}={value}" for key, value in self.options)

    def option(self, key: str) -> str | None:
        return dict(self.options).get(key)

    @property
    def tool_choice(self) -> str:
        """The ``tool_choice`` sent on a turn's first step (``omit``: none is sent)."""
        return self.option("tool_choice") or ("omit" if self.provider in ("ollama", "offline") else "auto")

    def mode(self, env: Mapping[str, str] = os.environ) -> str:
        """``native``, ``routed`` or ``auto`` (the default for a local server)."""
        return self.option("mode") or ("auto" if self.is_local(env) else "native")

    def is_local(self, env: Mapping[str, str] = os.environ) -> bool:
        """Whether the model runs on a server of the producer's own: ollama, or an OpenAI-compatible
        server named by ``OPENAI_BASE_URL`` that is not OpenAI's."""
        if self.provider == "ollama":
            return True
        if self.provider == "openai" and env.get("OPENAI_BASE_URL"):
            return (urlparse(env["OPENAI_BASE_URL"]).hostname or "") not in CLOUD_HOSTS
        return False

    @property
    def timeout_s(self) -> float:
        return float(self.option("timeout") or DEFAULT_TIMEOUT_S)

    @property
    def max_tokens(self) -> int:
        return int(self.option("max_tokens") or DEFAULT_MAX_TOKENS)

    @property
    def understand(self) -> str:
        """Who reads a message's request: ``offline`` or ``model`` (see the module's doc)."""
        return self.option("understand") or "offline"

    def grammar_dialect(self, env: Mapping[str, str] = os.environ) -> str:
        """How this provider's server takes a JSON schema (:data:`faderwise.agent.choose.Dialect`)."""
        if self.provider == "ollama":
            return "ollama"
        return "json_object" if self.is_local(env) else "json_schema"


def parse_llm_spec(text: str) -> LLMSpec:
    """Read a spec such as ``ollama:llama3.1@http://gpu-box:11434`` or
    ``openai:qwen2.5-0.5b-instruct,mode=routed``.

    Raises:
        LLMSpecError: the spec is not one of :data:`SPEC_HELP`, or an option is unknown or bad.
    """
    spec = text.strip()
    if spec.casefold() == "offline":
        return LLMSpec("offline")
    provider, _, rest = spec.partition(":")
    provider = provider.casefold()
    rest, *option_texts = rest.split(",")
    if provider not in PROVIDERS or not rest.strip():
        raise LLMSpecError(f"unknown model {text!r}: expected {SPEC_HELP}")
    options = tuple(_read_option(text, option) for option in option_texts)
    model, host = rest, None
    if provider == "ollama" and "@" in rest:
        model, _, host = rest.partition("@")
        if not re.match(r"^(https?://)?[\w.\-]+(:\d+)?/?$", host):
            raise LLMSpecError(f"unknown model {text!r}: the host after @ should look like http://HOST:PORT")
    if provider != "ollama" and "@" in rest:
        raise LLMSpecError(f"unknown model {text!r}: only ollama takes @HOST; for openai set OPENAI_BASE_URL")
    if provider == "anthropic" and dict(options).get("understand") == "model":
        raise LLMSpecError(f"understand=model in {text!r}: needs a server that holds a reply to a JSON schema "
                           "(ollama, or an OpenAI-compatible one)")
    return LLMSpec(provider, model.strip(), host, options)


def _read_option(text: str, option: str) -> tuple[str, str]:
    key, equals, value = (part.strip() for part in option.partition("="))
    if key not in OPTION_VALUES or not equals or not value:
        raise LLMSpecError(f"unknown model option {option.strip()!r} in {text!r}: expected "
                           + ", ".join(f"{name}=…" for name in OPTION_VALUES))
    allowed = OPTION_VALUES[key]
    if allowed is not None and value not in allowed:
        raise LLMSpecError(f"{key}={value} in {text!r}: expected one of {', '.join(allowed)}")
    if key == "timeout":
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
        if not seconds > 0 or not math.isfinite(seconds):
            raise LLMSpecError(f"timeout={value} in {text!r}: expected a number of seconds above 0")
    if key == "max_tokens" and (not value.isdigit() or int(value) < 1):
        raise LLMSpecError(f"max_tokens={value} in {text!r}: expected a whole number of tokens above 0")
    return key, value


def make_chat_model(spec: LLMSpec, *, context: Callable[[], dict[str, Any]]) -> BaseChatModel:
    """The chat model for ``spec``. ``context`` feeds the offline planner (stems, reference).

    Raises:
        MissingDependencyError: the provider's LangChain package is not installed.
    """
    if spec.provider == "offline":
        from faderwise.agent.planner import OfflinePlanner

        return OfflinePlanner(context=context)
    module, class_name = {"ollama": ("langchain_ollama", "ChatOllama"), "openai": ("langchain_openai", "ChatOpenAI"),
                          "anthropic": ("langchain_anthropic", "ChatAnthropic")}[spec.provider]
    try:
        provider_module = importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(f"--llm {spec}: needs the {module.replace('_', '-')} package; "
                                     "install it with: pip install 'faderwise[llm]'") from exc
    # One whole reply per request: the guard reads a reply before the producer sees any of it, and
    # llama-cpp-python's function-calling handler refuses to stream with tool_choice "auto".
    options: dict[str, Any] = {"model": spec.model, "disable_streaming": True}
    if spec.provider == "ollama":
        if spec.host:
            options["base_url"] = spec.host if spec.host.startswith("http") else f"http://{spec.host}"
        options.update(client_kwargs={"timeout": spec.timeout_s}, num_predict=spec.max_tokens)
    else:
        # one retry: a local server that is down should say so in seconds, not after three tries
        options.update(timeout=spec.timeout_s, max_retries=1, max_tokens=spec.max_tokens)
    model_class = getattr(provider_module, class_name)
    if spec.provider == "openai":
        model_class = _strict_openai_class(model_class)
        options["local_server"] = spec.is_local()
    try:
        return model_class(**options)  # type: ignore[no-any-return]
    except Exception as exc:  # a provider that refuses at construction (no key) says why
        raise LLMSpecError(f"--llm {spec}: {mask_secrets(str(exc))}") from exc


def wire_messages(payload: dict[str, Any], *, local: bool) -> dict[str, Any]:
    """The request ``payload`` as strict OpenAI-compatible servers take it: every message's
    ``content`` a string (an assistant message that carries tool calls goes out with ``""``, never
    ``null``, which llama-cpp-python's server refuses with HTTP 500); and, for a ``local`` server,
    the reply's length as ``max_tokens``, which every local server reads (llama-cpp-python ignores
    ``max_completion_tokens``, OpenAI's newer name)."""
    for message in payload.get("messages", []):
        if isinstance(message, dict) and message.get("content") is None:
            message["content"] = ""
    if local and "max_completion_tokens" in payload:
        payload["max_tokens"] = payload.pop("max_completion_tokens")
    return payload


@functools.cache
def _strict_openai_class(base: type) -> type:
    """``ChatOpenAI`` whose requests pass through :func:`wire_messages`."""

    class StrictChatOpenAI(base):  # type: ignore[misc,valid-type]
        local_server: bool = False  # LLMSpec.is_local(): OPENAI_BASE_URL names a server that is not OpenAI's

        def _get_request_payload(self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any) -> dict[str, Any]:
            payload = super()._get_request_payload(input_, stop=stop, **kwargs)
            return wire_messages(payload, local=self.local_server)

    StrictChatOpenAI.__name__ = StrictChatOpenAI.__qualname__ = "StrictChatOpenAI"
    return StrictChatOpenAI


def provider_error_line(error: BaseException) -> str:
    """One short line for a provider's failure (an unreachable server, a refused request, a time-out):
    what the producer can act on. The whole error goes to the log, keys masked."""
    name = type(error).__name__
    text = " ".join(str(error).split())
    status = getattr(error, "status_code", None) or getattr(getattr(error, "response", None), "status_code", None)
    if "timeout" in name.casefold() or "timed out" in text.casefold():
        return "no answer in time (the request timed out)"
    if "connect" in name.casefold() or "connection refused" in text.casefold() or "connection error" in text.casefold():
        return "cannot reach the model's server"
    if isinstance(status, int):
        detail = _server_message(error, text)
        return f"the server answered HTTP {status}" + (f": {detail}" if detail else "")
    return mask_secrets(f"{name}: {_clip(text)}" if text else name)


def _server_message(error: BaseException, text: str) -> str:
    """The readable part of a server's error (the "message" of its JSON error body), clipped."""
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if isinstance(message, str) and message.strip():
            return mask_secrets(_clip(" ".join(message.split())))
    return mask_secrets(_clip(re.sub(r"^Error code: \d+ - ", "", text)))


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"
