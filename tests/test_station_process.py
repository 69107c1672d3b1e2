"""The station as a separate process, driven from outside through `station sim` and `station status`,
the way field engineers, demos and other tests do."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STATION = [sys.executable, "-m", "station"]


def cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STATION, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


@pytest.fixture
def running_station(tmp_path: Path):
    text = (ROOT / "profiles" / "sim-ac-2evse.toml").read_text()
    text = text.replace('# state_dir = "/var/lib/station"', f'state_dir = "{tmp_path}"', 1)
    assert f'state_dir = "{tmp_path}"' in text
    config = tmp_path / "station.toml"
    config.write_text(text)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("NOTIFY_SOCKET", None)
    proc = subprocess.Popen([*STATION, "run", "--config", str(config)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sock = tmp_path / "control.sock"
    deadline = time.monotonic() + 20
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"station did not start: {proc.stdout.read() if proc.stdout else ''}")
        time.sleep(0.05)
    yield config
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, out
    assert not sock.exists(), "the control socket is removed on a clean stop"


def status(config: Path) -> dict:
    result = cli("status", "--config", str(config), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def wait_status(config: Path, evse: int, key: str, value: object, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        current = status(config)["evses"][evse - 1]
        if current[key] == value:
            return current
        if time.monotonic() > deadline:
            pytest.fail(f"EVSE {evse} {key} stayed {current[key]!r}, wanted {value!r}: {current}")
        time.sleep(0.1)


def test_session_driven_from_outside(running_station: Path) -> None:
    config = str(running_station)
    first = status(running_station)
    assert [e["connector_status"] for e in first["evses"]] == ["Available", "Available"]

    assert cli("sim", "plug", "1", "--profile", "ac-3ph-16a", "--config", config).returncode == 0
    charging = wait_status(running_station, 1, "charging_state", "Charging")
    assert charging["state"] == "C2" and charging["pilot"] == "PWM 53.33%"
    wait_status(running_station, 1, "contactor_closed", True)

    # A fault injected from outside opens the relay and shows in status.
    assert cli("sim", "fault", "1", "rcd", "--config", config).returncode == 0
    faulted = wait_status(running_station, 1, "connector_status", "Faulted")
    assert "RCDTripped" in [f["code"] for f in faulted["faults"]] and not faulted["power_allowed"]
    assert cli("sim", "fault", "1", "rcd", "--clear", "--config", config).returncode == 0

    assert cli("sim", "unplug", "1", "--config", config).returncode == 0
    wait_status(running_station, 1, "charging_state", "Idle")
    # The RCD stays latched until an operator resets it: never Available on its own.
    assert status(running_station)["evses"][0]["connector_status"] == "Faulted"
    assert cli("evse", "reset", "1", "--config", config).returncode == 0
    wait_status(running_station, 1, "connector_status", "Available")

    assert cli("evse", "disable", "2", "--config", config).returncode == 0
    wait_status(running_station, 2, "connector_status", "Unavailable")
    assert cli("evse", "enable", "2", "--config", config).returncode == 0
    wait_status(running_station, 2, "connector_status", "Available")
    assert cli("evse", "limit", "2", "10", "--config", config).returncode == 0
    wait_status(running_station, 2, "current_limit_a", 10.0)
    bad = cli("evse", "limit", "2", "-3", "--config", config)
    assert bad.returncode == 2 and "amps must be >= 0" in bad.stderr

    human = cli("status", "--config", config)
    assert human.returncode == 0 and "EVSE 1" in human.stdout


def test_bad_commands_get_clear_errors_and_change_nothing(running_station: Path) -> None:
    config = str(running_station)
    before = status(running_station)
    result = cli("sim", "plug", "7", "--config", config)
    assert result.returncode == 1 and "no simulated EVSE 7" in result.stderr
    result = cli("sim", "plug", "1", "--profile", "warp-drive", "--config", config)
    assert result.returncode == 1 and "unknown EV profile 'warp-drive'" in result.stderr
    after = status(running_station)
    assert [e["state"] for e in after["evses"]] == [e["state"] for e in before["evses"]]


def test_status_without_a_station_says_so(tmp_path: Path) -> None:
    result = cli("status", "--socket", str(tmp_path / "none.sock"))
    assert result.returncode == 2 and "no station is listening" in result.stderr


def test_run_with_a_bad_config_names_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[station]\nid = "X"\nvendor = "v"\nmodel = "m"\n\n[[evse]]\nid = 1\nmax_current_a = 120\n'
                   '[evse.board]\ndriver = "sim"\n[[evse.connector]]\nid = 1\n')
    result = cli("run", "--config", str(bad))
    assert result.returncode == 2
    assert "evse[1].max_current_a = 120" in result.stderr


def test_demo_runs_a_whole_session() -> None:
    result = cli("demo", "--charge-seconds", "1", timeout=150)
    assert result.returncode == 0, result.stdout + result.stderr
    log = result.stderr + result.stdout
    from station import simnet

    if simnet.skip_reason() is None:  # root with namespaces: the ISO 15118 DC phase runs too
        for expected in ("SLAC matched", "DC_ChargeLoopReq", "ISO 15118 DC session OK", "all phases complete"):
            assert expected in log, expected
    else:
        assert "ISO 15118 DC session skipped" in log
    for expected in ("EV connected", "B2 -> C2", "contactor closed", "energy transfer started",
                     "EV disconnected", "demo: session complete",
                     # The dev CSMS side: the station booted against it and reported the sessions.
                     "-> BootNotification", "StatusNotification EVSE 1/1 Occupied", "the CSMS received",
                     "TransactionEvent Started", "TransactionEvent Ended"):
        assert expected in log, expected
