"""faderwise mcp: the SDK's own client talks to the server over stdio, streamable HTTP and in memory,
as a client would, and as an attacker would (strings for booleans, named pipes, NUL bytes, slow calls)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import mcp_types
import pytest
from daw_projects import reaper_project_text, write_project_with_stems
from mcp import Client, StdioServerParameters

from faderwise.agent import mcp_server
from faderwise.agent.mcp_server import STATE_FILE, build_server, restore_state
from faderwise.agent.workspace import Workspace
from faderwise.tools.daw.project import read_project

TOOLS = ["load", "measure", "compare", "advise", "explain", "plot", "bundle", "export", "apply", "what_if", "set_move",
         "measure_group", "second_opinion", "remove_output"]
WRITES = {"bundle", "apply", "remove_output"}  # may replace or remove (force, removal); export only adds
READS_ONLY = {"measure", "compare", "explain", "plot", "what_if", "measure_group", "second_opinion"}


def payload(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text
    return dict(result.structured_content)


def error_text(result: Any) -> str:
    assert result.is_error, result.structured_content
    (block,) = result.content
    return block.text


def server_env(tmp_path: Path) -> dict[str, str]:
    return {"FADERWISE_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": os.pathsep.join(sys.path)}


def in_memory(tmp_path: Path, **options: Any) -> tuple[Any, Workspace]:
    workspace = Workspace(output_dir=tmp_path / "out", workers=1)
    return build_server(workspace, **options), workspace


def test_stdio_lists_described_tools_and_runs_the_chain_on_the_demo(tmp_path: Path, demo_dir: Path) -> None:
    project = write_project_with_stems(tmp_path / "song", reaper_project_text(), ".RPP", demo_dir / "version_a")
    params = StdioServerParameters(command=sys.executable, args=["-m", "faderwise", "mcp", "--workers", "1"],
                                   env=server_env(tmp_path))

    async def session() -> None:
        async with Client(params) as client:
            listed = (await client.list_tools()).tools
            assert [tool.name for tool in listed] == TOOLS
            by_name = {tool.name: tool for tool in listed}
            for tool in listed:  # every tool: a title, annotations, one clean paragraph
                assert tool.title and tool.annotations is not None and tool.annotations.title == tool.title
                assert tool.annotations.read_only_hint is (tool.name in READS_ONLY)
                assert tool.annotations.destructive_hint is (tool.name in WRITES)
                assert tool.annotations.open_world_hint is False
                assert tool.description and "\n" not in tool.description and "  " not in tool.description
            assert by_name["load"].annotations.idempotent_hint is True
            assert by_name["apply"].annotations.idempotent_hint is False
            assert by_name["apply"].input_schema["properties"]["confirm"]["type"] == "boolean"
            assert by_name["load"].input_schema["required"] == ["stems"]
            advice_schema = by_name["advise"].output_schema
            assert set(advice_schema["required"]) >= {"text", "advisor", "moves", "global_offset_db"}
            assert by_name["advise"].input_schema["properties"]["advisor"]["anyOf"][0]["enum"][:3] == [
                "measured", "single-mix", "equal-loudness"]
            resources = await client.list_resources()
            assert [str(r.uri) for r in resources.resources] == ["faderwise://advice"]
            templates = await client.list_resource_templates()
            assert [t.uri_template for t in templates.resource_templates] == ["faderwise://plot/{kind}",
                                                                              "faderwise://outputs/{key}"]
            prompts = (await client.list_prompts()).prompts
            assert [p.name for p in prompts] == ["balance", "explain_stem", "export_to_daw"]
            got = await client.get_prompt("balance", {"stems": "A", "reference": "B"})
            assert got.messages[0].content.text.startswith("Load my stems from 'A' and the balanced reference 'B'")

            loaded = payload(await client.call_tool("load", {"stems": str(demo_dir / "version_a"),
                                                             "reference": str(demo_dir / "version_b")}))
            assert loaded["text"].startswith(f"Loaded Version A and the reference. Version A: 5 stems from "
                                             f"{demo_dir / 'version_a'}")
            advice = payload(await client.call_tool("advise", {}))
            assert advice["text"].startswith("Advice (measured): vocals -4.0 dB (likely -4.1 to -3.9); drums +3.0 dB")
            moves = {m["stem"]: m["delta_db"] for m in advice["moves"]}
            assert moves == {"vocals": pytest.approx(-4.0, abs=0.05), "drums": pytest.approx(3.0, abs=0.05)}
            assert advice["master_trim_db"] == 0.0 and advice["advisor"] == "measured"
            explained = payload(await client.call_tool("explain", {"stem": "vox"}))
            assert explained["stem"] == "vocals" and explained["move"]["delta_db"] == pytest.approx(-4.0, abs=0.05)
            assert explained["text"].startswith("Lower the vocals by about 4 dB: in your mix this stem is 4.0 dB louder")
            missing = await client.call_tool("explain", {"stem": "theremin"})
            assert error_text(missing) == (f"Error executing tool explain: no stem called 'theremin' in "
                                           f"{demo_dir / 'version_a'} (it has: bass, drums, guitar, keys, vocals)")
            resource = await client.read_resource("faderwise://advice")
            assert json.loads(resource.contents[0].text)["moves"][0]["stem"] == "vocals"

            dry = payload(await client.call_tool("apply", {}))
            assert dry["data"] == {"kind": "apply", "applied": False, "asked": False,
                                   "gains_db": {"vocals": pytest.approx(-4.0, abs=0.05),
                                                "drums": pytest.approx(3.0, abs=0.05)}}
            assert not list((tmp_path / "data" / "mcp").glob("apply-*"))
            applied = payload(await client.call_tool("apply", {"confirm": True}))
            folder = Path(applied["data"]["folder"])
            assert applied["data"]["applied"] is True and (folder / "mix.wav").is_file()
            assert folder.parent == tmp_path / "data" / "mcp"

            payload(await client.call_tool("load", {"stems": str(project), "reference": str(demo_dir / "version_b")}))
            payload(await client.call_tool("advise", {}))
            exported = payload(await client.call_tool("export", {}))
            assert exported["data"]["file"] == str(project.with_name("song-faderwise-01.RPP"))
            assert exported["text"].startswith(f"Wrote {project.with_name('song-faderwise-01.RPP')}: fader moves are "
                                               "relative")
            listed_outputs = [str(r.uri) for r in (await client.list_resources()).resources]
            assert listed_outputs == ["faderwise://advice", mcp_server.output_uri(folder),
                                      mcp_server.output_uri(project.with_name("song-faderwise-01.RPP"))]
    anyio.run(session)
    old, new = read_project(project), read_project(project.with_name("song-faderwise-01.RPP"))
    assert new.named("Vocals")[0].gain_db - old.named("Vocals")[0].gain_db == pytest.approx(-4.0, abs=0.05)
    assert new.named("Bass")[0].gain == old.named("Bass")[0].gain


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_streamable_http_on_loopback_and_one_line_port_errors(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "faderwise", "mcp", "--http", "--port", str(port)]
    server = subprocess.Popen(command, env={**os.environ, **server_env(tmp_path)}, stdout=subprocess.DEVNULL,
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
        # a second server on the same port: one line, exit 2, not uvicorn's log
        busy = subprocess.run(command + ["--out", str(tmp_path / "second")], env={**os.environ, **server_env(tmp_path)},
                              capture_output=True, text=True, timeout=60)
        assert (busy.returncode, busy.stdout) == (2, "")
        assert busy.stderr == (f"faderwise: error: port {port} on 127.0.0.1 is in use (another faderwise mcp?): choose "
                               "another with --port\n")
    finally:
        server.terminate()
        server.wait(timeout=10)
    wrong = subprocess.run([sys.executable, "-m", "faderwise", "mcp", "--http", "--port", "99999"],
                           env={**os.environ, **server_env(tmp_path)}, capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert wrong.stderr.splitlines()[-1] == ("faderwise mcp: error: argument --port: 99999 is not a port number "
                                             "(1 to 65535)")


def test_a_failed_load_leaves_the_session_as_it_was(tmp_path: Path, demo_dir: Path) -> None:
    server, workspace = in_memory(tmp_path)

    async def session() -> None:
        async with Client(server) as client:
            payload(await client.call_tool("load", {"stems": str(demo_dir / "version_a"),
                                                    "reference": str(demo_dir / "version_b")}))
            payload(await client.call_tool("advise", {}))
            failed = await client.call_tool("load", {"stems": str(demo_dir / "version_b"),
                                                     "reference": str(tmp_path / "nowhere")})
            assert error_text(failed) == f"Error executing tool load: {tmp_path / 'nowhere'}: no such file or folder"
            assert workspace.version_a.path == demo_dir / "version_a"  # A, B and the advice as they were
            assert workspace.version_b.path == demo_dir / "version_b"
            assert workspace.advice is not None and workspace.advice.move_for("vocals") is not None
            nul = await client.call_tool("load", {"stems": f"{demo_dir}/version_a\x00x"})
            assert error_text(nul) == f"Error executing tool load: {demo_dir}/version_a\\x00x: a path cannot hold a NUL byte"
            no_reference = await client.call_tool("load", {"stems": str(demo_dir / "version_a")})
            payload(no_reference)
            assert workspace.version_b.path == demo_dir / "version_b"  # stems alone keep the reference
    anyio.run(session)


@pytest.mark.parametrize("confirm", ["yes", "true", 1, "1", "on", None])
def test_apply_renders_only_on_json_true(tmp_path: Path, demo_dir: Path, confirm: object) -> None:
    server, workspace = in_memory(tmp_path)

    async def session() -> None:
        async with Client(server) as client:
            payload(await client.call_tool("load", {"stems": str(demo_dir / "version_a"),
                                                    "reference": str(demo_dir / "version_b")}))
            refused = await client.call_tool("apply", {"confirm": confirm})
            assert error_text(refused) == (f"apply: bad arguments, nothing was done: confirm: Input should be a valid "
                                           f"boolean (got {confirm!r})")
    anyio.run(session)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("apply-*"))
    assert workspace.applied == []


def test_apply_asks_through_the_client_where_it_can(tmp_path: Path, demo_dir: Path) -> None:
    server, workspace = in_memory(tmp_path)
    asked: list[str] = []
    answers = iter([False, True])

    async def answer(context: Any, params: mcp_types.ElicitRequestParams) -> mcp_types.ElicitResult:
        asked.append(params.message)
        return mcp_types.ElicitResult(action="accept", content={"confirm": next(answers)})

    async def session() -> None:
        async with Client(server, elicitation_callback=answer) as client:
            payload(await client.call_tool("load", {"stems": str(demo_dir / "version_a"),
                                                    "reference": str(demo_dir / "version_b")}))
            declined = payload(await client.call_tool("apply", {"confirm": True}))  # the producer's answer counts
            assert declined["text"] == "Not applied: the producer did not agree (vocals -4.0 dB, drums +3.0 dB)."
            assert workspace.applied == []
            applied = payload(await client.call_tool("apply", {}))
            assert applied["data"]["applied"] is True
    anyio.run(session)
    assert asked == ["Render vocals -4.0 dB, drums +3.0 dB to a new folder? Version A becomes the render; your files "
                     "are not changed."] * 2


def test_what_if_own_move_except_groups_and_second_opinion(tmp_path: Path, demo_dir: Path) -> None:
    """The chat's new actions over MCP: a what-if changes nothing; the producer's own move replaces the advised one
    and is what apply renders; apply leaves out the stems it is told to; a group is measured as one; the judge scores."""
    server, workspace = in_memory(tmp_path)
    asked: list[str] = []

    async def answer(context: Any, params: mcp_types.ElicitRequestParams) -> mcp_types.ElicitResult:
        asked.append(params.message)
        return mcp_types.ElicitResult(action="accept", content={"confirm": True})

    async def session() -> None:
        async with Client(server, elicitation_callback=answer) as client:
            payload(await client.call_tool("load", {"stems": str(demo_dir / "version_a"),
                                                    "reference": str(demo_dir / "version_b")}))
            payload(await client.call_tool("advise", {}))
            tried = payload(await client.call_tool("what_if", {"stem": "gtr", "gain_db": 2}))["data"]
            row = tried["stems"]["guitar"]
            assert row["level_after_lufs"] == pytest.approx(row["level_a_lufs"] + 2.0, abs=0.011)
            assert row["after_minus_b_lu"] == pytest.approx(row["level_after_lufs"] - row["level_b_lufs"], abs=0.011)
            assert workspace.advice is not None and workspace.advice.gains_db() == pytest.approx(
                {"vocals": -4.0, "drums": 3.0}, abs=0.1)  # nothing changed
            own = payload(await client.call_tool("set_move", {"stem": "vox", "delta_db": -2}))
            assert own["text"].startswith("The vocals move is now -2.0 dB (the producer's; it was the advised -4.0 dB)")
            group = payload(await client.call_tool("measure_group", {"stems": ["drums", "bass"]}))["data"]
            assert group["members"] == ["drums", "bass"] and group["b_lufs"] is not None
            opinion = payload(await client.call_tool("second_opinion", {}))["data"]
            # the producer's -2 dB is just over 2 dB from the measured move: right direction, correctness 3 of 5
            vocals = opinion["stems"]["vocals"]
            assert vocals["true_move_db"] < -4.0 and vocals["verdict"]["scores"]["correctness"] == 3
            assert opinion["judge"] == "rubric" and opinion["stems"]["drums"]["verdict"]["scores"]["correctness"] == 5
            assert vocals["explanation"].startswith("Lower the vocals by about 2 dB")
            applied = payload(await client.call_tool("apply", {"except_stems": ["drums"]}))["data"]
            assert applied["applied"] is True and applied["gains_db"] == {"vocals": -2.0}
    anyio.run(session)
    assert asked == ["Render vocals -2.0 dB to a new folder? Version A becomes the render; your files are not changed."]


def test_progress_while_measuring_and_no_folder_per_plot_read(tmp_path: Path, demo_dir: Path) -> None:
    server, _ = in_memory(tmp_path)
    notes: list[tuple[float, str | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        notes.append((done, message))

    async def session() -> None:
        async with Client(server) as client:
            payload(await client.call_tool("load", {"stems": str(demo_dir / "version_a"),
                                                    "reference": str(demo_dir / "version_b")}))
            payload(await client.call_tool("advise", {}, progress_callback=progress))
            first = await client.read_resource("faderwise://plot/loudness")
            second = await client.read_resource("faderwise://plot/levels")
            assert first.contents[0].mime_type == second.contents[0].mime_type == "image/png"
            drawn = await client.call_tool("plot", {"kind": "levels"})
            assert [block.type for block in drawn.content] == ["text", "image"]
            assert drawn.content[1].mime_type == "image/png" and drawn.content[0].text.startswith("The levels chart")
    anyio.run(session)
    assert notes == [(1.0, "A: 5 stems, 0:30 of 0:30 measured (1/2)"), (2.0, "B: 5 stems, 0:30 of 0:30 measured (2/2)")]
    assert not (tmp_path / "out").exists()  # plots are drawn in memory: nothing was written


def test_outputs_are_listed_and_only_what_the_session_wrote_is_removed(tmp_path: Path, demo_dir: Path) -> None:
    server, workspace = in_memory(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "apply-01").symlink_to(tmp_path / "gone")  # a dangling link takes a slot: apply uses the next one

    async def session() -> None:
        async with Client(server) as client:
            no_reference = await client.call_tool("bundle", {"stem": "vox"})
            assert error_text(no_reference) == ("Error executing tool bundle: no stems loaded yet: load a folder of "
                                                "stems first (call load with the stems)")
            payload(await client.call_tool("load", {"stems": str(demo_dir / "version_a")}))
            no_reference = await client.call_tool("bundle", {"stem": "vox"})
            assert error_text(no_reference) == ("Error executing tool bundle: no reference loaded: set a balanced "
                                                "reference first (call load with a reference)")
            payload(await client.call_tool("load", {"stems": str(demo_dir / "version_a"),
                                                    "reference": str(demo_dir / "version_b")}))
            bundled = payload(await client.call_tool("bundle", {"stem": "vox"}))
            bundle = Path(bundled["data"]["folder"])
            assert bundle == out / "bundle-vocals-01"
            again = await client.call_tool("bundle", {"stem": "vox", "out": str(bundle)})
            assert error_text(again) == (f"Error executing tool bundle: {bundle}: already exists; choose a new folder "
                                         "or call the tool again with force: true to replace it")
            payload(await client.call_tool("bundle", {"stem": "vox", "out": str(bundle), "force": True}))
            applied = payload(await client.call_tool("apply", {"confirm": True}))
            render = Path(applied["data"]["folder"])
            assert render == out / "apply-02"
            uris = [str(r.uri) for r in (await client.list_resources()).resources]
            assert uris == ["faderwise://advice", mcp_server.output_uri(bundle), mcp_server.output_uri(render)]
            described = json.loads((await client.read_resource(mcp_server.output_uri(render))).contents[0].text)
            assert described["kind"] == "render" and "mix.wav" in described["files"]
            in_use = await client.call_tool("remove_output", {"output": str(render)})
            assert error_text(in_use) == (f"Error executing tool remove_output: {render}: it is Version A now; undo the "
                                          "apply first")
            foreign = await client.call_tool("remove_output", {"output": str(demo_dir / "version_a")})
            assert error_text(foreign) == (f"Error executing tool remove_output: {demo_dir / 'version_a'}: not written "
                                           "by this session; faderwise removes only what it wrote here")
            removed = payload(await client.call_tool("remove_output", {"output": mcp_server.output_uri(bundle)}))
            assert removed["text"] == f"Removed {bundle}." and not bundle.exists()
            assert [str(r.uri) for r in (await client.list_resources()).resources] == [
                "faderwise://advice", mcp_server.output_uri(render)]
    anyio.run(session)
    assert (demo_dir / "version_a" / "vocals.wav").is_file()


def test_a_slow_call_has_a_limit_and_others_are_told_busy(tmp_path: Path, demo_dir: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    server, workspace = in_memory(tmp_path, time_limit_s=1.0, busy_wait_s=0.3)
    release = threading.Event()
    real = Workspace.comparison

    def stuck(self: Workspace) -> Any:
        release.wait(20)
        return real(self)
    monkeypatch.setattr(Workspace, "comparison", stuck)

    async def session() -> None:
        async with Client(server) as client:
            payload(await client.call_tool("load", {"stems": str(demo_dir / "version_a"),
                                                    "reference": str(demo_dir / "version_b")}))
            started = time.monotonic()
            slow = await client.call_tool("compare", {})
            assert 0.9 < time.monotonic() - started < 5
            assert error_text(slow) == ("Error executing tool compare: compare_to_reference: stopped waiting after 1 s; "
                                        "the work goes on in the background and the session answers busy until it "
                                        "ends (faderwise mcp --time-limit sets the limit)")
            busy = await client.call_tool("measure", {})
            assert error_text(busy) == ("Error executing tool measure: busy: this session is still working on "
                                        "compare_to_reference; try again when it ends")
            release.set()
            for _ in range(50):  # the slow call ends; the session answers again
                answer = await client.call_tool("measure", {"stem": "vox"})
                if not answer.is_error:
                    break
                await anyio.sleep(0.1)
            assert payload(answer)["text"].startswith("vocals: ")
    anyio.run(session)


def test_a_named_pipe_project_is_refused_and_other_calls_go_on(tmp_path: Path, demo_dir: Path) -> None:
    server, _ = in_memory(tmp_path, time_limit_s=20.0)
    fifo = tmp_path / "fifo.RPP"
    os.mkfifo(fifo)

    async def session() -> None:
        async with Client(server) as client:
            payload(await client.call_tool("load", {"stems": str(demo_dir / "version_a"),
                                                    "reference": str(demo_dir / "version_b")}))
            started = time.monotonic()
            refused = await client.call_tool("export", {"project": str(fifo)})
            assert time.monotonic() - started < 5
            assert error_text(refused) == (f"Error executing tool export: {fifo}: is a named pipe (FIFO), not a file; "
                                           "faderwise reads only regular files")
            assert payload(await client.call_tool("measure", {"stem": "drums"}))["text"].startswith("drums: ")
    anyio.run(session)


def test_the_session_resumes_in_the_next_server(tmp_path: Path, demo_dir: Path) -> None:
    state = tmp_path / "out" / STATE_FILE
    server, _ = in_memory(tmp_path, state_file=state)

    async def first() -> None:
        async with Client(server) as client:
            payload(await client.call_tool("load", {"stems": str(demo_dir / "version_a"),
                                                    "reference": str(demo_dir / "version_b")}))
            payload(await client.call_tool("advise", {}))
    anyio.run(first)
    assert state.stat().st_mode & 0o777 == 0o600
    later = Workspace(output_dir=tmp_path / "out", workers=1)
    assert restore_state(later, state) == []
    assert later.version_a.path == demo_dir / "version_a" and later.version_b.path == demo_dir / "version_b"
    assert {m.stem for m in later.advice.moves} == {"vocals", "drums"}

    async def second() -> None:
        async with Client(build_server(later, state_file=state)) as client:
            applied = payload(await client.call_tool("apply", {"confirm": True}))
            assert applied["data"]["gains_db"] == {"vocals": pytest.approx(-4.0, abs=0.05),
                                                   "drums": pytest.approx(3.0, abs=0.05)}
    anyio.run(second)


def test_completions_name_the_loaded_stems(tmp_path: Path, demo_dir: Path) -> None:
    server, _ = in_memory(tmp_path)

    async def session() -> None:
        async with Client(server) as client:
            payload(await client.call_tool("load", {"stems": str(demo_dir / "version_a")}))
            stems = await client.complete(mcp_types.PromptReference(type="ref/prompt", name="explain_stem"),
                                          {"name": "stem", "value": "v"})
            assert stems.completion.values == ["vocals"]
            kinds = await client.complete(mcp_types.ResourceTemplateReference(type="ref/resource",
                                                                              uri="faderwise://plot/{kind}"),
                                          {"name": "kind", "value": "l"})
            assert kinds.completion.values == ["levels", "loudness"]
    anyio.run(session)


def test_concurrent_calls_that_read_and_write_overlapping_paths(tmp_path: Path, demo_dir: Path) -> None:
    """Calls at once, each with its own inputs: a write into what the session reads is refused, a write
    beside it goes through, whatever runs alongside."""
    import shutil

    song = tmp_path / "song"
    shutil.copytree(demo_dir, song)
    server, workspace = in_memory(tmp_path)
    results: dict[str, Any] = {}

    async def session() -> None:
        async with Client(server) as client:
            payload(await client.call_tool("load", {"stems": str(song / "version_a"),
                                                    "reference": str(song / "version_b")}))

            async def call(key: str, name: str, arguments: dict[str, Any]) -> None:
                results[key] = await client.call_tool(name, arguments)
            async with anyio.create_task_group() as group:
                group.start_soon(call, "into A", "bundle", {"stem": "vox", "out": str(song / "version_a" / "b")})
                group.start_soon(call, "into B", "apply", {"confirm": True, "out": str(song / "version_b" / "r")})
                group.start_soon(call, "reload", "load", {"stems": str(song / "version_a"),
                                                          "reference": str(song / "version_b")})
                group.start_soon(call, "beside", "bundle", {"stem": "drums", "out": str(song / "bundles" / "d")})
                group.start_soon(call, "measure", "measure", {})
    anyio.run(session)
    never = "faderwise never writes over its input: choose another place"
    assert error_text(results["into A"]) == (f"Error executing tool bundle: {song / 'version_a' / 'b'}: lies inside the "
                                             f"input {song / 'version_a'}; {never}")
    assert error_text(results["into B"]) == (f"Error executing tool apply: {song / 'version_b' / 'r'}: lies inside the "
                                             f"input {song / 'version_b'}; {never}")
    assert payload(results["beside"])["data"]["folder"] == str(song / "bundles" / "d")
    assert payload(results["reload"])["text"].startswith("Loaded Version A and the reference.")
    assert payload(results["measure"])["text"].startswith("bass: ")
    assert sorted(p.name for p in (song / "version_a").iterdir()) == sorted(p.name for p in (demo_dir / "version_a").iterdir())
    assert workspace.applied == []


def test_an_audio_language_advice_sends_progress_stem_by_stem(tmp_path: Path, demo_dir: Path) -> None:
    pytest.importorskip("torch", reason="the audio-language model needs the [alm] extra (torch, transformers)")
    server, _ = in_memory(tmp_path)
    notes: list[tuple[float, str | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        notes.append((done, message))

    async def session() -> dict[str, Any]:
        async with Client(server) as client:
            payload(await client.call_tool("load", {"stems": str(demo_dir / "version_a"),
                                                    "reference": str(demo_dir / "version_b")}))
            return payload(await client.call_tool("advise", {"advisor": "alm"}, progress_callback=progress))
    advised = anyio.run(session)
    heard = [message for _, message in notes if message and message.startswith("the model")]
    assert heard == [f"the model hears the {stem} ({index}/5)" for index, stem in
                     enumerate(["bass", "drums", "guitar", "keys", "vocals"])] + ["the model has heard every stem (5/5)"]
    assert [done for done, _ in notes] == [float(step) for step in range(1, len(notes) + 1)]  # always increasing
    assert advised["advisor"].startswith("alm:")
    stated = {m["stem"] for m in advised["moves"]}
    for stem in ["bass", "drums", "guitar", "keys", "vocals"]:  # the text says of every stem what the moves hold
        assert (f"the {stem} by about" in advised["text"]) == (stem in stated), advised["text"]


def test_a_project_problem_is_said_in_words_an_mcp_client_can_act_on(tmp_path: Path, demo_dir: Path) -> None:
    text = reaper_project_text().replace("NAME Keys", 'NAME "Synth Pad"')
    project = write_project_with_stems(tmp_path / "song", text, ".RPP", demo_dir / "version_a")
    server, _ = in_memory(tmp_path)

    async def session() -> str:
        async with Client(server) as client:
            return error_text(await client.call_tool("load", {"stems": str(project)}))
    message = anyio.run(session)
    assert message == (f"Error executing tool load: {project}: track 6 'Synth Pad' has no bounced stem (looked for a "
                       f"file named like it, or '06 Synth Pad.wav', in {project.parent} and its stems, bounces, "
                       "renders, export folders); "
                       f"bounce it there, or map it in {project.parent}/song.stems.yaml (null leaves it out)")
    assert "--" not in message
