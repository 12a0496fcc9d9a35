"""faderwise mcp driven by a client nobody on this team wrote: the official MCP Inspector's CLI mode (npm, pinned
in tests/mcp_inspector; install with `npm ci --prefix tests/mcp_inspector`), over stdio and streamable HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported by pytest as a plugin (the fixtures), before this module could import it unrewritten
    from inspector import Inspector

pytest_plugins = ("inspector",)

TOOLS = ["load", "measure", "compare", "advise", "explain", "plot", "bundle", "export", "apply", "what_if", "set_move",
         "measure_group", "second_opinion", "remove_output"]


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_the_inspector_lists_the_tools_and_the_advice_resource(transport: str, request: pytest.FixtureRequest) -> None:
    inspector: Inspector = request.getfixturevalue(f"faderwise_{transport}")

    listed = inspector.run("tools/list")
    assert listed.stdout.endswith("}\n") and listed.stdout.count("\n") == 1  # one JSON line: {"result": ...}
    assert list(listed.printed) == ["result"] and listed.error is None
    tools = {tool["name"]: tool for tool in listed.result["tools"]}
    assert list(tools) == TOOLS
    assert tools["apply"]["inputSchema"]["properties"]["confirm"]["type"] == "boolean"
    assert all(tool["description"] for tool in tools.values())
    assert all(tool["annotations"]["title"] == tool["title"] for tool in tools.values())
    assert tools["advise"]["outputSchema"]["properties"]["moves"]["type"] == "array"
    prompts = [prompt["name"] for prompt in inspector.result("prompts/list")["prompts"]]
    assert prompts == ["balance", "explain_stem", "export_to_daw"]

    resources = inspector.result("resources/list")["resources"]
    advice = {resource["uri"]: resource for resource in resources}["faderwise://advice"]
    assert (advice["name"], advice["mimeType"]) == ("advice", "application/json")


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_the_inspector_drives_the_whole_chain(transport: str, request: pytest.FixtureRequest, demo_dir: Path,
                                              tmp_path: Path) -> None:
    """load → measure → compare → advise → explain → plot → bundle → apply → export → the outputs listed and one
    removed. Over stdio every invocation is a new server: the session resumes from the output folder."""
    from daw_projects import reaper_project_text, write_project_with_stems

    inspector: Inspector = request.getfixturevalue(f"faderwise_{transport}")
    project = write_project_with_stems(tmp_path / "song", reaper_project_text(), ".RPP", demo_dir / "version_a")
    # --tool-arg as a person types it: a path is not JSON, so it stays a string
    loaded = inspector.result("tools/call", "--tool-name", "load", "--tool-arg",
                              f"stems={project}", f"reference={demo_dir / 'version_b'}")
    assert loaded["isError"] is False
    assert loaded["structuredContent"]["text"].startswith(
        f"Loaded Version A and the reference. Version A: 5 stems from {project}: Drums, Bass, Keys, Guitar, Vocals")
    assert json.loads(loaded["content"][0]["text"]) == loaded["structuredContent"]

    measured = inspector.call_tool("measure", {"stem": "vox"})["structuredContent"]
    assert measured["text"].startswith("Vocals: ") and set(measured["data"]["stems"]) == {"Vocals"}
    compared = inspector.call_tool("compare")["structuredContent"]
    assert compared["data"]["stems"]["Vocals"]["a_minus_b_lu"] == pytest.approx(4.0, abs=0.1)

    advice = inspector.call_tool("advise")  # its structuredContent passed the Inspector's check against outputSchema
    assert advice["structuredContent"]["text"].startswith("Advice (measured): Vocals -4.0 dB")
    moves = {move["stem"]: move["delta_db"] for move in advice["structuredContent"]["moves"]}
    assert moves == {"Vocals": pytest.approx(-4.0, abs=0.05), "Drums": pytest.approx(3.0, abs=0.05)}
    explained = inspector.call_tool("explain", {"stem": "drums"})["structuredContent"]
    assert explained["stem"] == "Drums" and explained["text"].startswith("Raise the Drums by about 3 dB")
    pending = json.loads(inspector.result("resources/read", "--uri", "faderwise://advice")["contents"][0]["text"])
    assert [move["stem"] for move in pending["moves"]] == ["Vocals", "Drums"]  # biggest first

    plot = inspector.call_tool("plot", {"kind": "levels"})
    assert [block["type"] for block in plot["content"]] == ["text", "image"]
    assert plot["content"][1]["mimeType"] == "image/png" and plot["content"][1]["data"].startswith("iVBORw0KGgo")
    bundle = inspector.call_tool("bundle", {"stem": "vox"})["structuredContent"]["data"]["folder"]

    assert inspector.data_dir is not None
    dry = inspector.call_tool("apply")["structuredContent"]
    assert dry["data"]["applied"] is False and not list(inspector.data_dir.glob("mcp/apply-*"))
    assert dry["text"].startswith("Not applied yet: this would render Vocals -4.0 dB, Drums +3.0 dB to a new folder.")
    applied = inspector.call_tool("apply", {"confirm": True})["structuredContent"]["data"]
    assert applied["applied"] is True and Path(applied["folder"]) == inspector.data_dir / "mcp" / "apply-01"
    exported = inspector.call_tool("export")["structuredContent"]
    assert exported["data"]["file"] == str(project.with_name("song-faderwise-01.RPP"))

    outputs = [r for r in inspector.result("resources/list")["resources"] if r["uri"].startswith("faderwise://outputs/")]
    assert [r["name"] for r in outputs] == [Path(bundle).name, "apply-01", "song-faderwise-01.RPP"]
    removed = inspector.call_tool("remove_output", {"output": outputs[0]["uri"]})["structuredContent"]
    assert removed["text"] == f"Removed {bundle}." and not Path(bundle).exists()
    kept = inspector.call_tool("remove_output", {"output": str(demo_dir / "version_b")}, expect=5)
    assert kept["content"][0]["text"] == (f"Error executing tool remove_output: {demo_dir / 'version_b'}: not written "
                                          "by this session; faderwise removes only what it wrote here")

    # a tool's error: exit code 5, the result still printed, the envelope on stderr
    failed = inspector.run("tools/call", "--tool-name", "explain", "--tool-arg", "stem=theremin", expect=5)
    assert failed.result["content"][0]["text"] == (
        f"Error executing tool explain: no stem called 'theremin' in {inspector.data_dir / 'mcp' / 'apply-01' / 'stems'} "
        "(it has: Bass, Drums, Guitar, Keys, Vocals)")  # the render's stems, by name
    assert failed.error == {"code": "tool_is_error", "message": "Tool 'explain' returned isError:true."}
