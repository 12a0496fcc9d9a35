"""Which chat model drives the agent: ``offline`` (the built-in planner) or a real LLM.

Specs: ``offline``, ``ollama:MODEL[@HOST]``, ``openai:MODEL`` (``OPENAI_BASE_URL`` points it at
vLLM, llama.cpp's server or LM Studio), ``anthropic:MODEL``. API keys are read by the provider
libraries from the environment only; a spec never holds one, so nothing that stores specs
(sessions, transcripts, logs) can leak a key.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel

from faderwise.agent.secrets import mask_secrets
from faderwise.tools.errors import FaderwiseError, MissingDependencyError

PROVIDERS = ("ollama", "openai", "anthropic")
SPEC_HELP = "offline, ollama:MODEL[@HOST], openai:MODEL or anthropic:MODEL"
KEY_VARIABLES = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


class LLMSpecError(FaderwiseError):
    """A model spec that names no known provider or no model."""


@dataclass(frozen=True)
class LLMSpec:
    """``provider`` is "offline" or one of :data:`PROVIDERS`; ``host`` only for ollama."""

    provider: str
    model: str | None = None
    host: str | None = None

    def __str__(self) -> str:
        if self.provider == "offline":
            return "offline"
        return f"{self.provider}:{self.model}" + (f"@{self.host}" if self.host else "")


def parse_llm_spec(text: str) -> LLMSpec:
    """Read a spec such as ``ollama:llama3.1@http://gpu-box:11434``.

    Raises:
        LLMSpecError: the spec is not one of :data:`SPEC_HELP`.
    """
    spec = text.strip()
    if spec.casefold() == "offline":
        return LLMSpec("offline")
    provider, _, rest = spec.partition(":")
    provider = provider.casefold()
    if provider not in PROVIDERS or not rest.strip():
        raise LLMSpecError(f"unknown model {text!r}: expected {SPEC_HELP}")
    model, host = rest, None
    if provider == "ollama" and "@" in rest:
        model, _, host = rest.partition("@")
        if not re.match(r"^(https?://)?[\w.\-]+(:\d+)?/?$", host):
            raise LLMSpecError(f"unknown model {text!r}: the host after @ should look like http://HOST:PORT")
    if provider != "ollama" and "@" in rest:
        raise LLMSpecError(f"unknown model {text!r}: only ollama takes @HOST; for openai set OPENAI_BASE_URL")
    return LLMSpec(provider, model.strip(), host)


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
    options: dict[str, Any] = {"model": spec.model}
    if spec.provider == "ollama" and spec.host:
        options["base_url"] = spec.host if spec.host.startswith("http") else f"http://{spec.host}"
    try:
        return getattr(provider_module, class_name)(**options)
    except Exception as exc:  # a provider that refuses at construction (no key) says why
        raise LLMSpecError(f"--llm {spec}: {mask_secrets(str(exc))}") from exc

