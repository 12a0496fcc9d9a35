"""faderwise mcp: the SDK's own client talks to the server over stdio (and streamable HTTP)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from daw_projects import reaper_project_text, write_project_with_stems
from mcp import Client, StdioServerParameters

from faderwise.tools.daw_project import read_project

TOOLS = ["load", "measure", "compare", "advise", "explain", "bundle", "export", "apply"]


def payload(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text
    return dict(result.structured_content)


def server_env(tmp_path: Path) -> dict[str, str]:
    return {"FADERWISE_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": os.pathsep.join(sys.path)}


def test_stdio_list_tools_and_a_full_advise_on_the_demo(tmp_path: Path, demo_dir: Path) -> None:
    project = write_project_with_stems(tmp_path / "song", reaper_project_text(), ".RPP", demo_dir / "version_a")
    params = StdioServerParameters(command=sys.executable, args=["-m", "faderwise", "mcp", "--workers", "1"],
                                   env=server_env(tmp_path))

    async def session() -> None:
        async with Client(params) as client:
            listed = await client.list_tools()
            assert [tool.name for tool in listed.tools] == TOOLS
            schemas = {tool.name: tool.input_schema for tool in listed.tools}
            assert schemas["apply"]["properties"]["confirm"]["type"] == "boolean"
            assert schemas["load"]["required"] == ["stems"]
            assert all(tool.description for tool in listed.tools)
            resources = await client.list_resources()
            assert [str(r.uri) for r in resources.resources] == ["faderwise://advice"]
            templates = await client.list_resource_templates()
            assert [t.uri_template for t in templates.resource_templates] == ["faderwise://plot/{kind}"]

            loaded = payload(await client.call_tool("load", {"stems": str(demo_dir / "version_a"),
                                                             "reference": str(demo_dir / "version_b")}))
            assert loaded["text"].startswith(f"Loaded Version A: 5 stems from {demo_dir / 'version_a'}")
            advice = payload(await client.call_tool("advise", {}))
            assert advice["text"].startswith("Advice (measured): vocals -4.0 dB (likely -4.1 to -3.9); drums +3.0 dB")
            moves = {m["stem"]: m["delta_db"] for m in advice["data"]["moves"]}
            assert moves == {"vocals": pytest.approx(-4.0, abs=0.05), "drums": pytest.approx(3.0, abs=0.05)}
            explained = payload(await client.call_tool("explain", {"stem": "vox"}))
            assert explained["text"].startswith("Lower the vocals by about 4 dB: in your mix this stem is 4.0 dB louder")
            missing = await client.call_tool("explain", {"stem": "theremin"})
            assert missing.is_error
            assert missing.content[0].text == (f"Error executing tool explain: no stem called 'theremin' in "
                                               f"{demo_dir / 'version_a'} (it has: bass, drums, guitar, keys, vocals)")
            resource = await client.read_resource("faderwise://advice")
            assert json.loads(resource.contents[0].text)["moves"][0]["stem"] == "vocals"
            plot = await client.read_resource("faderwise://plot/levels")
            assert plot.contents[0].mime_type == "image/png"

            dry = payload(await client.call_tool("apply", {}))
            assert dry["data"]["applied"] is False and not list((tmp_path / "data" / "mcp").glob("apply-*"))
            applied = payload(await client.call_tool("apply", {"confirm": True}))
            folder = Path(applied["data"]["folder"])
            assert applied["data"]["applied"] is True and (folder / "mix.wav").is_file()
            assert folder.parent == tmp_path / "data" / "mcp"

            loaded = payload(await client.call_tool("load", {"stems": str(project),
                                                             "reference": str(demo_dir / "version_b")}))
            payload(await client.call_tool("advise", {}))
            exported = payload(await client.call_tool("export", {}))
            assert exported["data"]["file"] == str(project.with_name("song-faderwise-01.RPP"))
            assert exported["text"].startswith(f"Wrote {project.with_name('song-faderwise-01.RPP')}: fader moves are "
                                               "relative")
    anyio.run(session)
    old, new = read_project(project), read_project(project.with_name("song-faderwise-01.RPP"))
    assert new.track("Vocals").gain_db - old.track("Vocals").gain_db == pytest.approx(-4.0, abs=0.05)
    assert new.track("Bass").gain == old.track("Bass").gain


def test_streamable_http_on_loopback(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "faderwise", "mcp", "--http", "--port", str(port)],
                              env={**os.environ, **server_env(tmp_path)}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)

        async def session() -> list[str]:
            async with Client(f"http://127.0.0.1:{port}/mcp") as client:
                return [tool.name for tool in (await client.list_tools()).tools]
        assert anyio.run(session) == TOOLS
    finally:
        server.terminate()
        server.wait(timeout=10)
