"""Scripted runs (`faderwise run`), model specs, the config file and the chat-related commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from conftest import REPO
from faderwise.agent.config import ConfigError, load_config
from faderwise.agent.grounding import Grounding
from faderwise.agent.llm import LLMSpec, LLMSpecError, make_chat_model, parse_llm_spec
from faderwise.agent.script import ScriptError, check_expectations, read_script
from faderwise.cli import main
from faderwise.tools.errors import MissingDependencyError

SCRIPTS = REPO / "evals" / "scripts"


@pytest.fixture(autouse=True)
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FADERWISE_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "empty.toml").write_text("")
    monkeypatch.setenv("FADERWISE_CONFIG", str(tmp_path / "empty.toml"))
    monkeypatch.delenv("FADERWISE_LLM", raising=False)
    return tmp_path / "data"


@pytest.mark.parametrize("script", sorted(SCRIPTS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_scripts_pass(script: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "transcript.jsonl"
    assert main(["run", str(script), "--out", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == len(read_script(script).turns)
    assert all(record["passed"] for record in records)
    first = records[0]
    assert set(first) == {"format", "turn", "user", "assistant", "tool_calls", "seconds", "expect", "ungrounded",
                          "guarded", "notices", "passed", "failures"}
    assert first["format"] == "faderwise.transcript/2"
    assert all(r["ungrounded"] == [] and r["guarded"] == [] and r["notices"] == [] for r in records)
    assert all(r["expect"].get("grounded") and r["expect"].get("tools") for r in records)
    assert all(set(call) == {"name", "args", "result"} for call in first["tool_calls"])
    assert capsys.readouterr().out.splitlines()[-2:] == [f"{len(records)} passed, 0 failed", f"wrote {out}"]


def test_a_failed_expectation_exits_1(demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "script.yaml"
    script.write_text(f"stems: {demo_dir / 'version_a'}\nreference: {demo_dir / 'version_b'}\nturns:\n"
                      "  - user: which stem is furthest off?\n    expect:\n      mentions: [bass]\n"
                      "      moves: {vocals: [1, 3], drums: [2.5, 3.5], keys: [-1, 1]}\n")
    out = tmp_path / "t.jsonl"
    assert main(["run", str(script), "--out", str(out)]) == 1
    record = json.loads(out.read_text())
    assert record["passed"] is False
    assert record["failures"] == ["the reply does not mention 'bass'",
                                  "the reply moves vocals by -4.0 dB, outside [1, 3]",
                                  "the reply states no move for keys"]
    printed = capsys.readouterr().out
    assert "FAIL turn 1" in printed and "0 passed, 1 failed" in printed


@pytest.mark.parametrize(("text", "message"), [
    ("turns: []\n", "'stems' must name the folder of stems (Version A)"),
    ("stems: a\nturns: []\n", "'turns' must be a non-empty list"),
    ("stems: a\nturns:\n  - say: hi\n", "turn 1: needs 'user: <what the producer says>'"),
    ("stems: a\nturns:\n  - user: hi\n    expect: {moves: {vocals: [3, 1]}}\n",
     "turn 1: moves: vocals: expected [low, high] in dB with low <= high, got [3, 1]"),
    ("stems: a\nturns:\n  - user: hi\n    expect: {tone: warm}\n",
     "turn 1: unknown expectation tone (known: grounded, mentions, moves, no_tool_error, tools)"),
    ("stems: a\nturns:\n  - user: hi\n    expect: {tools: [apply]}\n",
     "turn 1: tools: unknown tool apply (known: load_stems, set_reference, list_stems, measure, compare_to_reference, "
     "advise, explain_stem, make_ab_bundle, plot, apply_moves, undo_apply, forget_move, export_project, push_faders, "
     "undo_push, what_if, set_move, measure_group, second_opinion)"),
    ("stems: a\nturns:\n  - user: hi\n    expect: {tools: apply_moves}\n", "turn 1: 'tools' must be a list of tool names"),
    ("stems: a\nturns:\n  - user: hi\n    expect: {grounded: maybe}\n", "turn 1: 'grounded' must be true or false"),
    ("stems: a\nllm: gpt4\nturns:\n  - user: hi\n",
     "llm: unknown model 'gpt4': expected offline, ollama:MODEL[@HOST], openai:MODEL or anthropic:MODEL"),
    ("stems: [a\n", "not valid YAML"),
])
def test_bad_scripts_name_the_file_and_exit_2(text: str, message: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "bad.yaml"
    script.write_text(text)
    with pytest.raises(ScriptError) as error:
        read_script(script)
    assert str(error.value).startswith(f"{script}: ") and message in str(error.value)
    assert main(["run", str(script)]) == 2
    assert capsys.readouterr().err.startswith(f"faderwise: error: {script}: ")


def test_check_expectations_reads_moves_from_text() -> None:
    reply = "Lower the vocals by about 4 dB. Raise the drums by 3 dB."
    assert check_expectations({"moves": {"vocals": [-5, -3], "drums": [2, 4]}}, reply, [], ["vocals", "drums"]) == []
    failed_call = [{"name": "advise", "args": {}, "result": "Error: boom", "failed": True}]
    assert check_expectations({"no_tool_error": True}, reply, failed_call, ["vocals"]) == ["tool advise failed: Error: boom"]


def test_a_reply_that_says_applied_without_the_tool_fails() -> None:
    """The reported hole: "Apply the moves" passed because the reply said "applied", with no call."""
    expect = {"mentions": ["applied"], "tools": ["apply_moves"], "no_tool_error": True, "grounded": True}
    said = "I have applied the moves and lowered the vocals by 4 dB."
    sources = Grounding.of([HumanMessage("Apply the moves")], stems=["vocals"])
    assert check_expectations(expect, said, [], ["vocals"], needs_tools=True, grounding=sources) == [
        "the turn needed a tool and none ran", "the turn did not run apply_moves (tools run: none)",
        "the reply states numbers no tool returned: 4 dB"]
    ran = [{"name": "advise", "args": {}, "result": "Advice (measured): vocals -4.0 dB", "failed": False},
           {"name": "apply_moves", "args": {}, "result": "Not applied: the producer declined", "failed": True}]
    assert check_expectations({"tools": ["advise", "apply_moves"]}, said, ran, ["vocals"]) == [
        "the turn did not run apply_moves (tools run: advise, apply_moves)"]


@pytest.mark.parametrize(("text", "spec"), [
    ("offline", LLMSpec("offline")),
    ("OFFLINE", LLMSpec("offline")),
    ("ollama:llama3.1", LLMSpec("ollama", "llama3.1")),
    ("ollama:qwen2.5:7b@http://gpu-box:11434", LLMSpec("ollama", "qwen2.5:7b", "http://gpu-box:11434")),
    ("openai:gpt-4o-mini", LLMSpec("openai", "gpt-4o-mini")),
    ("anthropic:claude-sonnet-4", LLMSpec("anthropic", "claude-sonnet-4")),
])
def test_parse_llm_spec(text: str, spec: LLMSpec) -> None:
    assert parse_llm_spec(text) == spec
    assert parse_llm_spec(str(spec)) == spec


@pytest.mark.parametrize(("text", "message"), [
    ("gpt-4", "unknown model 'gpt-4': expected offline, ollama:MODEL[@HOST], openai:MODEL or anthropic:MODEL"),
    ("openai:", "unknown model 'openai:': expected offline"),
    ("openai:gpt-4o@host", "unknown model 'openai:gpt-4o@host': only ollama takes @HOST; for openai set OPENAI_BASE_URL"),
    ("ollama:llama3@not a host", "unknown model 'ollama:llama3@not a host': the host after @ should look like"),
])
def test_bad_llm_specs(text: str, message: str) -> None:
    with pytest.raises(LLMSpecError, match="^" + message.replace("(", r"\(").replace("[", r"\[")):
        parse_llm_spec(text)


def test_a_provider_without_its_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_langchain_openai(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("langchain_openai"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_langchain_openai)
    monkeypatch.delitem(__import__("sys").modules, "langchain_openai", raising=False)
    with pytest.raises(MissingDependencyError) as error:
        make_chat_model(parse_llm_spec("openai:gpt-4o"), context=dict)
    assert str(error.value) == ("--llm openai:gpt-4o: needs the langchain-openai package; install it with: "
                                "pip install 'faderwise[llm]'")


def test_config_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.toml"
    config.write_text('llm = "ollama:llama3.1"\nadvisor = "single-mix"\n[keys]\ncancel = "ctrl+c"\n')
    env = {"FADERWISE_CONFIG": str(config)}
    loaded = load_config(env)
    assert (loaded.llm, loaded.advisor, dict(loaded.keys), loaded.source) == (
        "ollama:llama3.1", "single-mix", {"cancel": "ctrl+c"}, config)
    assert load_config({**env, "FADERWISE_LLM": "offline"}).llm == "offline"  # the environment wins
    assert loaded.alm_model is None
    config.write_text('advisor = "alm"\nalm_model = "~/models/alm"\n')
    assert load_config(env).alm_model == Path("~/models/alm").expanduser()
    assert load_config({**env, "FADERWISE_ALM_MODEL": "/m"}).alm_model == Path("/m")
    config.write_text('llm = "gpt4"\n')
    with pytest.raises(ConfigError, match=f"^{config}: llm: unknown model 'gpt4'"):
        load_config(env)
    config.write_text('llm = "offline"\ncolour = "red"\n')
    with pytest.raises(ConfigError, match=f"^{config}: unknown setting colour"):
        load_config(env)
    config.write_text('llm = \n')
    with pytest.raises(ConfigError, match=f"^{config}: not valid TOML"):
        load_config(env)
    with pytest.raises(ConfigError, match="none.toml: no such config file"):
        load_config({"FADERWISE_CONFIG": str(tmp_path / "none.toml")})


def test_sessions_command(demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from faderwise.agent.config import Config
    from faderwise.agent.launch import open_chat, sessions_database
    from faderwise.agent.store import SessionStore

    assert main(["sessions"]) == 0
    assert capsys.readouterr().out == "no saved sessions yet: faderwise chat starts one\n"
    store = SessionStore(sessions_database())
    opened = open_chat(stems=demo_dir / "version_a", reference=None, llm=None, resume=False, name="take 1",
                       config=Config(), store=store)
    store.close()
    session_id = opened.info.id
    assert main(["sessions", "rename", session_id, "take one"]) == 0
    assert main(["sessions", "export", "take one", str(tmp_path / "t.md")]) == 0
    assert (tmp_path / "t.md").read_text().startswith("<!-- written by faderwise: session export -->\n# take one\n")
    assert main(["sessions", "delete", session_id[:5]]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"deleted session {session_id} (take one)"
    assert main(["sessions", "delete", "nope"]) == 2
    assert capsys.readouterr().err == "faderwise: error: no session match 'nope'; saved sessions: none\n"


def test_chat_refuses_conflicting_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "--llm", "gpt4"]) == 2
    assert capsys.readouterr().err == ("faderwise: error: unknown model 'gpt4': expected offline, "
                                       "ollama:MODEL[@HOST], openai:MODEL or anthropic:MODEL\n")
    assert main(["chat", "--reference", "b"]) == 2
    assert capsys.readouterr().err == "faderwise: error: --reference needs STEMS (your Version A) too\n"
    assert main(["chat", "a", "--resume"]) == 2
    assert capsys.readouterr().err == ("faderwise: error: --resume reopens a saved session with its own stems; "
                                       "drop STEMS and --reference\n")
