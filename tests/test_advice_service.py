"""One registry of advisors and one advice service behind the command line, the chat and the MCP
server: a new advisor appears everywhere at once, and no front end shows a move the advice does not hold."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest
from langgraph.checkpoint.memory import InMemorySaver
from mcp import Client

from faderwise.advisor import registry
from faderwise.advisor.faithful import faithful, unheld_statements
from faderwise.advisor.model import Advice, GainMove
from faderwise.advisor.registry import ADVISORS, UnknownAdvisorError, parse_advisor, spelled_choices
from faderwise.advisor.service import AdviceService
from faderwise.agent.config import ConfigError, load_config
from faderwise.agent.llm import LLMSpec
from faderwise.agent.mcp_server import build_server
from faderwise.agent.script import collect
from faderwise.agent.session import AgentSession
from faderwise.agent.understand import advisor_named
from faderwise.agent.workspace import Workspace
from faderwise.cli import build_parser, main
from faderwise.tools.stem_files import StemSource

STEMS = ["bass", "drums", "guitar", "keys", "vocals"]


def test_every_advisor_is_offered_by_every_front_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = [kind.name for kind in ADVISORS]
    assert names == ["measured", "single-mix", "equal-loudness", "alm", "alm-single-mix", "alm-pretrained",
                     "alm-pretrained-single-mix", "alm-pretrained-zero-shot"]
    from faderwise.advisor.alm import SHIPPED_MODELS

    assert [kind.name for kind in ADVISORS if kind.is_model] == list(SHIPPED_MODELS)  # the models it can load
    from faderwise.evals.advisors import DSP_ADVISORS, SINGLE_MIX_TWINS, hears_reference, make_advisor

    # the evaluation reads the same table: its advisors, and each differential one's single-mix twin
    assert DSP_ADVISORS == ("measured", "single-mix", "equal-loudness", "no-change")
    assert SINGLE_MIX_TWINS == {"measured": "single-mix", "alm": "alm-single-mix",
                                "alm-pretrained": "alm-pretrained-single-mix", "llm": "llm-single-mix"}
    for kind in ADVISORS:
        assert hears_reference(kind.name) == kind.hears_reference
        if kind.single_mix_twin is not None:
            twin = next(other for other in ADVISORS if other.name == kind.single_mix_twin)
            assert kind.hears_reference and not twin.hears_reference and twin.extra == kind.extra
        if kind.shipped_model is not None:
            folder = Path(__file__).resolve().parents[1] / "advisor" / "models" / kind.shipped_model
            assert (folder / "config.json").is_file() or (folder / "adapter_config.json").is_file(), kind.name
    assert make_advisor("equal-loudness").hears_reference is False and make_advisor("measured").hears_reference
    advise_help = next(action.help for action in build_parser()._subparsers._group_actions[0].choices["advise"]._actions
                       if "--advisor" in action.option_strings)
    workspace = Workspace(output_dir=tmp_path, workers=1)
    schema = anyio.run(lambda: _advise_schema(build_server(workspace)))
    assert schema["anyOf"][0]["enum"] == names  # MCP: the advise tool's choices
    for name in names:
        assert f"{name}[:MODEL_FOLDER]" in advise_help or name in advise_help  # the command line
        assert advisor_named(f"use the {name} advisor") == name  # the chat's words
        monkeypatch.setenv("FADERWISE_CONFIG", str(tmp_path / "config.toml"))
        (tmp_path / "config.toml").write_text(f'advisor = "{name}"\n')
        assert load_config().advisor == name  # the config
    (tmp_path / "config.toml").write_text('advisor = "oracle"\n')
    with pytest.raises(ConfigError) as refused:
        load_config()
    assert str(refused.value) == f"{tmp_path / 'config.toml'}: unknown advisor 'oracle': choose {spelled_choices()}"
    assert advisor_named("use the audio-language model") == "alm"
    assert advisor_named("advise without a reference") == "single-mix"
    assert advisor_named("try the alm pretrained single mix") == "alm-pretrained-single-mix"


async def _advise_schema(server: Any) -> dict[str, Any]:
    async with Client(server) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        return tools["advise"].input_schema["properties"]["advisor"]


@pytest.mark.parametrize(("spec", "message"), [
    ("oracle", "unknown advisor 'oracle'"),
    ("measured:/models/x", "unknown advisor 'measured:/models/x'"),  # a DSP advisor takes no folder
    ("alm:", "unknown advisor 'alm:'"),
])
def test_a_spec_that_names_no_advisor_is_refused_with_the_choices(spec: str, message: str) -> None:
    with pytest.raises(UnknownAdvisorError) as refused:
        parse_advisor(spec)
    assert str(refused.value) == f"{message}: choose {spelled_choices()}"
    assert parse_advisor("alm:/models/mine").folder == Path("/models/mine")


def test_the_text_states_only_moves_the_advice_holds() -> None:
    advice = Advice(advisor="alm", moves=(GainMove("drums", 3.5, 2.5, 4.5),),
                    text="Lower the lead by about 3 dB. Raise the drums by about 3.5 dB. Leave the bass as it is. "
                         "The keys are 2 dB too loud.")
    assert unheld_statements(advice, STEMS) == [("Lower the lead by about 3 dB.", "", 0.0),
                                                ("The keys are 2 dB too loud.", "keys", -2.0)]
    checked = faithful(advice, STEMS)
    assert checked.text == ("(A sentence that moved something this mix has no stem for was left out.) Raise the drums "
                            "by about 3.5 dB. Leave the bass as it is. The advice holds no move for the keys.")
    assert checked.moves == advice.moves
    assert checked.evidence["replaced_sentences"][0] == {"sentence": "Lower the lead by about 3 dB.", "stem": "",
                                                         "stated_db": 0.0}
    named = Advice(advisor="alm", moves=(), text="Lower the lead vocal by about 3 dB. Lower the master by 2 dB.")
    assert faithful(named, STEMS).text == "The advice holds no move for the vocals. Lower the master by 2 dB."
    rounded = Advice(advisor="measured", moves=(GainMove.exact("vocals", -3.8),), text="Lower the vocals by about 4 dB.")
    assert faithful(rounded, STEMS) is rounded  # the words round a move to 0.5 dB: that is the same move
    other_size = Advice(advisor="x", moves=(GainMove.exact("vocals", -2.0),), text="Lower the vocals by 6 dB.")
    assert faithful(other_size, STEMS).text == "Lower the vocals by about 2 dB."


class LyingAdvisor:
    """An advisor whose words disagree with its moves (seen from an audio-language model)."""

    name = "alm"

    def __init__(self) -> None:
        self.on_progress = None

    def advise(self, version_a: StemSource, version_b: StemSource | None = None, *,
               stems: Sequence[str] | None = None) -> Advice:
        return Advice(advisor="alm:lying", moves=(GainMove("drums", 3.5, 2.5, 4.5),),
                      text="Lower the lead by about 3 dB. Raise the drums by about 3.5 dB.")


HELD = "(A sentence that moved something this mix has no stem for was left out.) Raise the drums by about 3.5 dB."


def test_no_front_end_shows_a_move_the_advice_does_not_hold(demo_dir: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(registry._BUILDERS, "alm", lambda choice, **_: LyingAdvisor())
    # the command line
    code = main(["advise", str(demo_dir / "version_a"), "--reference", str(demo_dir / "version_b"), "--advisor", "alm",
                 "--json", "--workers", "1"])
    printed = json.loads(capsys.readouterr().out)
    assert code == 0 and printed["text"] == HELD and [m["stem"] for m in printed["moves"]] == ["drums"]
    # the MCP server
    workspace = Workspace(output_dir=tmp_path / "mcp", workers=1)

    async def over_mcp() -> dict[str, Any]:
        async with Client(build_server(workspace)) as client:
            await client.call_tool("load", {"stems": str(demo_dir / "version_a"),
                                            "reference": str(demo_dir / "version_b")})
            return dict((await client.call_tool("advise", {"advisor": "alm"})).structured_content)
    advised = anyio.run(over_mcp)
    assert advised["text"] == f"Advice (alm:lying): drums +3.5 dB (likely +2.5 to +4.5). {HELD}"
    assert [m["stem"] for m in advised["moves"]] == ["drums"]
    # the chat
    chat = Workspace(output_dir=tmp_path / "chat", workers=1)
    chat.load_pair(demo_dir / "version_a", demo_dir / "version_b")
    session = AgentSession(workspace=chat, llm=LLMSpec("offline"), checkpointer=InMemorySaver(), thread_id="t")
    reply, _, _, error = collect(list(session.send("use the alm advisor")))
    assert error is None and "Raise the drums by about 3.5 dB" in reply
    assert "lead" not in reply and "Lower" not in reply and "vocals -" not in reply


def test_the_service_turns_advice_into_gains_as_every_front_end_applies_them() -> None:
    advice = Advice(advisor="measured", moves=(GainMove.exact("vocals", -4.0), GainMove.exact("drums", 3.0)), text="",
                    global_offset_db=-1.5)
    plan = AdviceService.planned_gains
    assert plan(advice, STEMS) == {"vocals": -4.0, "drums": 3.0}
    assert plan(advice, STEMS, stems=["drums"]) == {"drums": 3.0}
    assert plan(advice, STEMS, master=True) == {"bass": -1.5, "drums": 1.5, "guitar": -1.5, "keys": -1.5,
                                                "vocals": -5.5}
    with pytest.raises(Exception) as refused:
        plan(advice, STEMS, stems=["bass"])
    assert str(refused.value) == "no pending move for bass: the advice leaves it as it is"
    with pytest.raises(Exception) as nothing:
        plan(Advice(advisor="measured", moves=(), text=""), STEMS)
    assert str(nothing.value) == "the advice moves no fader: there is nothing to apply"
