"""The control endpoint over a real Unix socket, and the `station status` / `station sim` CLI end to end."""
from __future__ import annotations

import argparse
import asyncio
import json
import socket
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hal.clock import ManualClock
from hal.driver import DriverContext
from hal.sim.board import SimBoard
from hal.sim.world import SimWorld
from station import control_cli
from station.control import LINE_LIMIT, WATCH_QUEUE_LEN, ControlError, ControlServer
from station.control_client import StationUnreachable, call, watch


def run_cli(argv: list[str]) -> int:
    """`station ARGV` as the user runs it; falls back to our own sub-commands only while the
    other parts of station.cli (runtime, config) are not importable yet."""
    try:
        from station.cli import main
    except ImportError:
        parser = argparse.ArgumentParser(prog="station")
        control_cli.register(parser.add_subparsers(dest="command", required=True))
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    return main(argv)


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(run_cli, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def fake_status(args: dict[str, Any]) -> dict[str, Any]:
    return {
        "station": {"id": "CP-TEST"},
        "evses": [
            {"id": 1, "state": "Charging", "connector_status": "Occupied", "contactor_closed": True,
             "current_limit_a": 16.0, "energy_wh": 1234.5, "link_up": True,
             "faults": [{"code": "RCD_TRIPPED", "description": "residual current"}], "extra_key": "shown"},
            {"id": 2},  # a minimal EVSE must not break the table
        ],
    }


async def boom(args: dict[str, Any]) -> None:
    raise RuntimeError("handler bug")


async def echo(args: dict[str, Any]) -> dict[str, Any]:
    return args


@pytest.fixture
async def server(tmp_path: Path) -> Any:
    ctx = DriverContext(evse_id=1, clock=ManualClock(), shared={}, evse_info={"phases": 3})
    board = SimBoard(SimBoard.Settings(), ctx)
    await board.start()
    SimBoard(SimBoard.Settings(), DriverContext(evse_id=2, clock=ctx.clock, shared=ctx.shared))
    world: SimWorld = ctx.shared["sim.world"]
    srv = ControlServer(tmp_path / "run" / "c.sock", {"status": fake_status, "boom": boom, "echo": echo})
    srv.add_handlers(world.control_handlers())
    await srv.start()
    yield srv
    await srv.stop()


async def exchange(path: Path, *lines: bytes) -> list[dict[str, Any]]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    replies = []
    for line in lines:
        writer.write(line)
        await writer.drain()
        replies.append(json.loads(await asyncio.wait_for(reader.readline(), 2)))
    writer.close()
    return replies


async def test_socket_created_with_group_permissions(server: ControlServer) -> None:
    mode = server.path.stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o660


async def test_call_and_reply_echo_id(server: ControlServer) -> None:
    replies = await exchange(server.path, b'{"cmd": "echo", "a": 1, "id": 7}\n', b'{"cmd": "echo", "id": "x"}\n')
    assert replies == [{"ok": True, "result": {"a": 1}, "id": 7}, {"ok": True, "result": {}, "id": "x"}]
    assert await call(server.path, "echo", b=[1, 2]) == {"b": [1, 2]}


async def test_bad_requests_get_errors_and_the_connection_goes_on(server: ControlServer) -> None:
    replies = await exchange(
        server.path,
        b"{not json\n",
        b"[1, 2]\n",
        b'{"id": 3}\n',
        b'{"cmd": "fly", "id": 4}\n',
        b'{"cmd": "boom"}\n',
        b'{"cmd": "sim.plug", "evse": 1, "profile": "tesla"}\n',
        b'{"cmd": "echo", "ok": 1}\n',
    )
    assert [r["ok"] for r in replies] == [False] * 6 + [True]
    assert replies[0]["error"].startswith("malformed JSON")
    assert "JSON object" in replies[1]["error"]
    assert '"cmd"' in replies[2]["error"] and replies[2]["id"] == 3
    assert "unknown command 'fly'" in replies[3]["error"] and "sim.plug" in replies[3]["error"]
    assert "watch" in replies[3]["error"] and replies[3]["id"] == 4
    assert replies[4]["error"] == "internal error: RuntimeError: handler bug"
    assert "unknown EV profile 'tesla'" in replies[5]["error"]


async def test_overlong_line_is_refused_and_server_goes_on(server: ControlServer) -> None:
    reader, writer = await asyncio.open_unix_connection(str(server.path))
    writer.write(b'{"cmd": "echo", "x": "' + b"a" * (LINE_LIMIT + 10) + b'"}\n')
    await writer.drain()
    reply = json.loads(await asyncio.wait_for(reader.readline(), 2))
    assert not reply["ok"] and "longer than" in reply["error"]
    assert await asyncio.wait_for(reader.read(), 2) == b""  # closed cleanly
    writer.close()
    assert await call(server.path, "echo", y=1) == {"y": 1}


async def test_client_errors(server: ControlServer, tmp_path: Path) -> None:
    with pytest.raises(ControlError, match="unknown EVSE|no simulated EVSE 5"):
        await call(server.path, "sim.unplug", evse=5)
    missing = tmp_path / "nope.sock"
    with pytest.raises(StationUnreachable, match=f"no station is listening on {missing} .is it running"):
        await call(missing, "status")


async def test_watch_streams_published_events(server: ControlServer) -> None:
    async with watch(server.path) as events:
        server.publish({"type": "cp", "evse": 1, "state": "B"})
        server.publish({"type": "cp", "evse": 1, "state": "C"})
        got = [await asyncio.wait_for(events.__anext__(), 2) for _ in range(2)]
    assert [e["state"] for e in got] == ["B", "C"]
    await asyncio.sleep(0.05)
    assert not server._watchers  # the disconnect ended the subscription


async def test_slow_watcher_never_blocks_publish(server: ControlServer) -> None:
    reader, writer = await asyncio.open_unix_connection(str(server.path))
    writer.write(b'{"cmd": "watch"}\n')
    assert json.loads(await reader.readline())["ok"]
    payload = "x" * 1000
    started = time.perf_counter()
    for i in range(3 * WATCH_QUEUE_LEN):  # the watcher reads nothing meanwhile
        server.publish({"n": i, "pad": payload})
    assert time.perf_counter() - started < 1.0
    assert server.dropped_events >= WATCH_QUEUE_LEN
    for _ in range(20):
        await asyncio.sleep(0.01)
    server.publish({"n": "late"})
    seen, dropped = [], 0
    while True:
        msg = json.loads(await asyncio.wait_for(reader.readline(), 2))
        event = msg["event"]
        if event.get("event") == "WatchDropped":
            dropped += event["dropped"]
        else:
            seen.append(event["n"])
        if event.get("n") == "late":
            break
    assert seen[:3] == [0, 1, 2] and dropped == server.dropped_events
    writer.close()


async def test_stale_socket_is_replaced_but_live_one_and_files_are_not(tmp_path: Path) -> None:
    stale = tmp_path / "s.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(stale))
    sock.close()  # left behind: nobody listening
    srv = ControlServer(stale, {"echo": echo})
    await srv.start()
    try:
        assert await call(stale, "echo", a=1) == {"a": 1}
        with pytest.raises(ControlError, match="already listening"):
            await ControlServer(stale).start()
    finally:
        await srv.stop()
    assert not stale.exists()
    plain = tmp_path / "file"
    plain.write_text("keep me")
    with pytest.raises(ControlError, match="not a socket"):
        await ControlServer(plain).start()
    assert plain.read_text() == "keep me"


def test_duplicate_handler_names_are_refused(tmp_path: Path) -> None:
    srv = ControlServer(tmp_path / "x.sock", {"echo": echo})
    with pytest.raises(ValueError, match="already registered"):
        srv.add_handlers({"echo": echo})
    with pytest.raises(ValueError, match="already registered"):
        srv.add_handlers({"watch": echo})


# --- the CLI end to end -------------------------------------------------------------------------

async def test_cli_sim_commands(server: ControlServer, capsys: pytest.CaptureFixture[str]) -> None:
    sock = str(server.path)
    code, out, err = await cli(capsys, "sim", "plug", "1", "--profile", "ac-1ph-32a", "--soc", "42", "--socket", sock)
    assert code == 0 and "EV ac-1ph-32a" in out and "SoC 42" in out and "PP 32 A" in out, err
    code, out, _ = await cli(capsys, "sim", "state", "1", "--json", "--socket", sock)
    state = json.loads(out)
    assert code == 0 and state["cp"] == "B" and state["ev"]["soc"] == 42
    code, out, _ = await cli(capsys, "sim", "fault", "1", "rcd", "--socket", sock)
    assert code == 0 and "RCD tripped" in out and "RCD_TRIPPED" in out
    code, out, _ = await cli(capsys, "sim", "fault", "1", "rcd", "--clear", "--socket", sock)
    assert code == 0 and "injected faults: none" in out and "RCD tripped" in out  # latched until reset
    code, out, _ = await cli(capsys, "sim", "ev", "1", "pause", "--socket", sock)
    assert code == 0 and "(paused)" in out
    code, out, _ = await cli(capsys, "sim", "state", "--socket", sock)
    assert code == 0 and "EVSE 1:" in out and "EVSE 2:" in out
    code, out, _ = await cli(capsys, "sim", "unplug", "1", "--socket", sock)
    assert code == 0 and "no EV plugged in" in out
    code, out, _ = await cli(capsys, "sim", "profiles", "--socket", sock)
    assert code == 0 and "dc-ccs" in out and "ignore-pwm-stop" in out
    code, _, err = await cli(capsys, "sim", "bay", "1", "occupied", "--socket", sock)
    assert code == 1 and "no bay sensor" in err  # this board has none


async def test_cli_sim_token_reaches_a_sim_reader(server: ControlServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = await cli(capsys, "sim", "token", "AB12", "--socket", str(server.path))
    assert code == 1 and "no simulated token reader" in err and err.count("\n") == 1


async def test_cli_errors_and_exit_codes(server: ControlServer, capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    sock = str(server.path)
    code, out, err = await cli(capsys, "sim", "plug", "1", "--profile", "tesla", "--socket", sock)
    assert code == 1 and out == "" and err.startswith("station: unknown EV profile 'tesla'")
    code, _, err = await cli(capsys, "sim", "fault", "3", "weld", "--socket", sock)
    assert code == 1 and "no simulated EVSE 3" in err
    code, _, err = await cli(capsys, "status", "--socket", str(tmp_path / "none.sock"))
    assert code == 2 and "no station is listening" in err and err.count("\n") == 1


async def test_cli_status_table_and_json(server: ControlServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await cli(capsys, "status", "--socket", str(server.path))
    assert code == 0
    assert "station id=CP-TEST" in out and "EVSE 1" in out and "EVSE 2" in out
    assert "Charging" in out and "RCD_TRIPPED (residual current)" in out and "extra_key" in out
    lines = out.splitlines()
    assert lines.index("EVSE 1") < [i for i, line in enumerate(lines) if "state" in line][0]
    code, out, _ = await cli(capsys, "status", "--json", "--socket", str(server.path))
    assert code == 0 and json.loads(out) == await fake_status({})


async def test_cli_status_watch_prints_events(server: ControlServer, capsys: pytest.CaptureFixture[str]) -> None:
    done: list[int] = []
    thread = threading.Thread(target=lambda: done.append(run_cli(["status", "--watch", "--socket", str(server.path)])))
    thread.start()
    for _ in range(200):
        if server._watchers:
            break
        await asyncio.sleep(0.01)
    assert server._watchers
    server.publish({"event": "StateChanged", "evse_id": 1, "state": "Charging"})
    await asyncio.sleep(0.1)
    await server.stop()  # the CLI ends when the station goes away
    await asyncio.to_thread(thread.join, 5)
    out, err = capsys.readouterr()
    assert done == [2] and "station id=CP-TEST" in out
    assert "event=StateChanged evse_id=1 state=Charging" in out and "closed the connection" in err


async def test_cli_finds_socket_through_config(server: ControlServer, capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    config = pytest.importorskip("station.config")
    if not hasattr(config, "load_config"):
        pytest.skip("station.config.load_config not written yet")
    cfg = tmp_path / "station.toml"
    cfg.write_text(
        f'[station]\nid = "CP-TEST"\nvendor = "V"\nmodel = "M"\n\n[control]\nsocket = "{server.path}"\n\n'
        '[[evse]]\nid = 1\nboard = { driver = "sim" }\n[[evse.connector]]\nid = 1\n'
    )
    code, out, err = await cli(capsys, "status", "--config", str(cfg))
    assert code == 0 and "CP-TEST" in out, err
    code, _, err = await cli(capsys, "status", "--config", str(tmp_path / "missing.toml"))
    assert code == 2 and err.count("\n") == 1


def test_socket_path_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STATION_CONTROL_SOCKET", str(tmp_path / "env.sock"))
    args = argparse.Namespace(socket=None, config=None)
    assert control_cli.socket_path(args) == tmp_path / "env.sock"
    args.socket = tmp_path / "given.sock"
    assert control_cli.socket_path(args) == tmp_path / "given.sock"
