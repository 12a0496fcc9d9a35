"""Settings for the chat: a TOML file plus environment variables (which win), then command-line
options (which win over both).

The file (``$FADERWISE_CONFIG``, else ``config.toml`` in the platform's user config folder)::

    llm = "ollama:llama3.1"          # or offline, openai:MODEL, anthropic:MODEL, with options:
    # llm = "openai:qwen2.5-0.5b-instruct,tool_choice=required,mode=routed,timeout=60"
    # (faderwise.agent.llm: tool_choice auto|required|none|omit, mode native|routed|auto)
    advisor = "measured"             # any advisor of faderwise advise --advisor (faderwise.advisor.registry)
    alm_model = "/models/faderwise-alm"  # what the advisor name "alm" means ([alm] extra)
    pretrained_whisper = "~/models/faster-whisper-tiny.en"  # the pretrained miniature's bases, instead of
    pretrained_language = "~/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"  # the [alm-pretrained] packages
                                     # (faderwise.advisor.pretrained; a relative path is the file's folder's)
    workers = 4                      # processes measuring a session (analyze, advise, chat); default "auto":
                                     # every core this process may use

    [keys]                           # binding id = keys (Textual key names, comma-separated)
    cancel = "escape"
    copy_reply = "ctrl+o"

Environment: ``FADERWISE_LLM``, ``FADERWISE_ADVISOR``, ``FADERWISE_ALM_MODEL``, ``FADERWISE_WORKERS``,
``FADERWISE_PRETRAINED_WHISPER``, ``FADERWISE_PRETRAINED_LANGUAGE``. API keys are never read from the file.
The two pretrained bases are passed on through the environment: :func:`load_config` sets their
variables from the file where they are unset, and the library (and its worker processes) read them there.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from faderwise.advisor.pretrained import LANGUAGE_ENV, WHISPER_ENV
from faderwise.advisor.registry import UnknownAdvisorError, parse_advisor
from faderwise.agent.keys import check_keymap
from faderwise.agent.llm import parse_llm_spec
from faderwise.tools.errors import FaderwiseError
from faderwise.tools.input_files import CONFIG_LIMIT_BYTES, exists_as_file, read_text_bounded
from faderwise.tools.workers import default_workers, parse_workers

CONFIG_ENV = "FADERWISE_CONFIG"
LLM_ENV = "FADERWISE_LLM"
ADVISOR_ENV = "FADERWISE_ADVISOR"
ALM_MODEL_ENV = "FADERWISE_ALM_MODEL"
WORKERS_ENV = "FADERWISE_WORKERS"
PRETRAINED_KEYS = {"pretrained_whisper": WHISPER_ENV, "pretrained_language": LANGUAGE_ENV}
"""The config keys that name the pretrained miniature's bases → the variables the library reads."""
KNOWN_KEYS = frozenset({"llm", "advisor", "alm_model", "keys", "workers", *PRETRAINED_KEYS})
CONFIG_FILE = "a config file"


class ConfigError(FaderwiseError):
    """A config file that cannot be read or holds a bad value (the message names the file and key)."""


@dataclass(frozen=True)
class Config:
    llm: str = "offline"
    advisor: str = "measured"
    keys: Mapping[str, str] = field(default_factory=dict)
    alm_model: Path | None = None
    source: Path | None = None
    workers: int = field(default_factory=default_workers)
    """Processes that measure a session (:func:`faderwise.tools.workers.default_workers` unless set)."""
    pretrained_whisper: Path | None = None
    """The pretrained miniature's Whisper base (:data:`~faderwise.advisor.pretrained.WHISPER_ENV`); None: the package's."""
    pretrained_language: Path | None = None
    """Its language base (:data:`~faderwise.advisor.pretrained.LANGUAGE_ENV`); None: the packages'."""


def config_path(env: Mapping[str, str] = os.environ) -> Path:
    configured = env.get(CONFIG_ENV)
    return Path(configured) if configured else Path(platformdirs.user_config_dir("faderwise", appauthor=False)) / "config.toml"


def load_config(env: Mapping[str, str] = os.environ) -> Config:
    """The file's settings (if the file exists) overridden by the environment. The file's
    ``pretrained_whisper`` / ``pretrained_language`` are passed on into ``env`` where it is a mutable
    mapping (:func:`pass_on_bases`).

    Raises:
        ConfigError: the file is not valid TOML, has an unknown setting, or a bad value.
        NotAFileError: the file is a named pipe (FIFO), a socket or a device.
        InputTooLargeError: the file is larger than :data:`~faderwise.tools.input_files.CONFIG_LIMIT_BYTES`.
    """
    path = config_path(env)
    values: dict[str, object] = {}
    if exists_as_file(path, what=CONFIG_FILE, limit=CONFIG_LIMIT_BYTES):
        try:
            values = tomllib.loads(read_text_bounded(path, limit=CONFIG_LIMIT_BYTES, what=CONFIG_FILE))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read it ({exc.strerror or exc})") from None
        unknown = sorted(set(values) - KNOWN_KEYS)
        if unknown:
            raise ConfigError(f"{path}: unknown setting {', '.join(unknown)} (known: {', '.join(sorted(KNOWN_KEYS))})")
    elif CONFIG_ENV in env:
        raise ConfigError(f"{path}: no such config file (named by ${CONFIG_ENV})")
    llm = str(env.get(LLM_ENV) or values.get("llm") or "offline")
    advisor = str(env.get(ADVISOR_ENV) or values.get("advisor") or "measured")
    where = f"${LLM_ENV}" if env.get(LLM_ENV) else f"{path}: llm"
    try:
        parse_llm_spec(llm)
    except FaderwiseError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    try:
        advisor = parse_advisor(advisor).spec
    except UnknownAdvisorError as exc:
        raise ConfigError(f"{path if not env.get(ADVISOR_ENV) else '$' + ADVISOR_ENV}: {exc}") from None
    keys = values.get("keys", {})
    if not isinstance(keys, dict):
        raise ConfigError(f"{path}: [keys] must map binding ids to key names, e.g. cancel = \"escape\"")
    problem = check_keymap(keys)
    if problem:
        raise ConfigError(f"{path}: [keys] {problem}")
    alm_model = env.get(ALM_MODEL_ENV) or values.get("alm_model")
    if alm_model is not None and not isinstance(alm_model, str):
        raise ConfigError(f"{path}: alm_model must be a folder path")
    workers_value = env.get(WORKERS_ENV) or values.get("workers", "auto")
    try:
        workers = parse_workers(workers_value, where=f"${WORKERS_ENV}" if env.get(WORKERS_ENV) else f"{path}")
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    bases = {key: pretrained_path(key, env=env, values=values, path=path) for key in PRETRAINED_KEYS}
    config = Config(llm=llm, advisor=advisor, keys=dict(keys),
                    alm_model=Path(alm_model).expanduser() if alm_model else None,
                    source=path if path.is_file() else None, workers=workers, **bases)
    if isinstance(env, MutableMapping):
        pass_on_bases(config, env)
    return config


def pretrained_path(key: str, *, env: Mapping[str, str], values: Mapping[str, object], path: Path) -> Path | None:
    """A pretrained base's path: its variable (:data:`PRETRAINED_KEYS`), else the file's ``key``
    (``~`` expanded; relative to the file's folder). Whether it is a base is checked where it is used
    (:mod:`faderwise.advisor.pretrained`), so that a chat that never uses it does not fail on it."""
    if env.get(PRETRAINED_KEYS[key]):
        return Path(env[PRETRAINED_KEYS[key]]).expanduser()
    value = values.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{path}: {key} must be a file or folder path")
    return path.parent / Path(value).expanduser()


def pass_on_bases(config: Config, env: MutableMapping[str, str] = os.environ) -> None:
    """Set :data:`PRETRAINED_KEYS`' variables in ``env`` from ``config`` where they are unset: the
    library reads the bases there (:func:`faderwise.advisor.pretrained.named_bases`), and so do
    worker processes, which inherit the environment."""
    for key, variable in PRETRAINED_KEYS.items():
        value = getattr(config, key)
        if value is not None and not env.get(variable):
            env[variable] = str(value)
