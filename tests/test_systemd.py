"""systemd integration: the unit file, sysusers, sd_notify, journald logging, install-service."""
from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from hal.clock import ManualClock
from station import logs, sdnotify

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "station.service"
SLAC_DROPIN = ROOT / "systemd" / "station.service.d" / "slac.conf.example"
SYSUSERS = ROOT / "systemd" / "station.sysusers.conf"
INSTALL = ROOT / "scripts" / "install-service"

needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed (apt install systemd)"
)


# --- unit file ----------------------------------------------------------------------------------

def unit_settings(text: str) -> dict[str, list[str]]:
    """KEY -> every value assigned to it, in order (systemd keys may repeat)."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def staged_unit(tmp_path: Path, *, with_slac: bool = False, extra: str = "") -> Path:
    """The unit copied to tmp with ExecStart pointing at an executable that exists here, so
    verify checks our lines rather than complaining that /opt/station isn't installed."""
    exe = Path(sys.executable).parent / "station"
    if not exe.exists():
        exe = Path(sys.executable)
    text = re.sub(r"(?m)^ExecStart=\S+", f"ExecStart={exe}", UNIT.read_text())
    unit = tmp_path / "station.service"
    unit.write_text(text + extra)
    if with_slac:
        dropin = tmp_path / "station.service.d"
        dropin.mkdir()
        shutil.copy(SLAC_DROPIN, dropin / "slac.conf")
    return unit


def verify(unit: Path) -> tuple[int, list[str]]:
    """Exit status and the diagnostics that concern our unit or drop-in (verify also loads
    system units such as network.target, whose complaints are not ours)."""
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=30,
        cwd=unit.parent,
    )
    ours = [
        line for line in (proc.stdout + proc.stderr).splitlines()
        if "station.service" in line or "slac.conf" in line
    ]
    return proc.returncode, ours


def test_unit_key_settings():
    s = unit_settings(UNIT.read_text())
    assert s["Type"] == ["notify"]
    assert s["NotifyAccess"] == ["main"]
    assert s["WatchdogSec"] == ["10s"]
    assert s["Restart"] == ["on-failure"]
    assert s["ExecStart"] == ["/opt/station/venv/bin/station run --config /etc/station/station.toml"]
    assert s["User"] == ["station"] and s["Group"] == ["station"]
    assert s["SupplementaryGroups"] == ["dialout"]
    assert "DynamicUser" not in s
    for key in ("ConfigurationDirectory", "StateDirectory", "RuntimeDirectory"):
        assert s[key] == ["station"], key
    assert s["ProtectSystem"] == ["strict"]
    assert s["NoNewPrivileges"] == ["yes"]
    assert s["CapabilityBoundingSet"] == [""]
    assert s["AmbientCapabilities"] == [""]
    families = " ".join(s["RestrictAddressFamilies"]).split()
    assert "AF_PACKET" not in families
    assert {"AF_UNIX", "AF_INET", "AF_INET6", "AF_CAN", "AF_NETLINK"} <= set(families)
    assert s["SystemCallFilter"][0] == "@system-service"
    assert s["DevicePolicy"] == ["closed"]
    assert set(s["DeviceAllow"]) == {f"char-{t} rw" for t in ("ttyS", "ttyUSB", "ttyACM", "ttyAMA")}
    assert s["UMask"] == ["0027"]


def test_slac_dropin_adds_only_raw_network():
    s = unit_settings(SLAC_DROPIN.read_text())
    assert s["CapabilityBoundingSet"] == ["CAP_NET_RAW"]
    assert s["AmbientCapabilities"] == ["CAP_NET_RAW"]
    assert s["RestrictAddressFamilies"] == ["AF_PACKET"]


@needs_analyze
def test_unit_verifies_without_warnings(tmp_path):
    # verify doesn't look users up: User=station passes on a machine without that user (systemd
    # 252 prints nothing; only a name breaking the naming rules draws "Accepting user/group
    # name ..."). A missing ExecStart binary fails with exit 1, hence staged_unit.
    rc, ours = verify(staged_unit(tmp_path))
    assert rc == 0
    assert ours == []


@needs_analyze
def test_verify_check_catches_a_bad_line(tmp_path):
    # Guards the test above: verify only warns (exit 0) on unknown keys and bad values.
    rc, ours = verify(staged_unit(tmp_path, extra="[Service]\nWatchdogSecs=5\nRestrictAddressFamilies=AF_FOO\n"))
    assert any("WatchdogSecs" in line for line in ours)
    assert any("AF_FOO" in line for line in ours)


@needs_analyze
def test_unit_with_slac_dropin_verifies(tmp_path):
    rc, ours = verify(staged_unit(tmp_path, with_slac=True))
    assert rc == 0
    assert ours == []


def security_report(unit: Path) -> str:
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(unit)],
        capture_output=True, text=True, timeout=30, cwd=unit.parent,
    )
    if "offline" in proc.stderr and proc.returncode != 0:
        pytest.skip("systemd-analyze security --offline needs systemd >= 250")
    return proc.stdout


@needs_analyze
def test_packet_sockets_only_with_slac_dropin(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "slac").mkdir()
    base = security_report(staged_unit(tmp_path / "base"))
    with_slac = security_report(staged_unit(tmp_path / "slac", with_slac=True))
    packet = re.compile(r"^(\S+)\s+RestrictAddressFamilies=~AF_PACKET", re.M)
    raw_cap = re.compile(r"^(\S+)\s+CapabilityBoundingSet=~CAP_NET_\(BIND_SERVICE\|BROADCAST\|RAW\)", re.M)
    assert packet.search(base).group(1) == "✓"
    assert packet.search(with_slac).group(1) == "✗"
    assert raw_cap.search(base).group(1) == "✓"
    assert raw_cap.search(with_slac).group(1) == "✗"
    exposure = float(re.search(r"Overall exposure level for station\.service: ([\d.]+)", base).group(1))
    assert exposure <= 2.5  # "OK" band; a dropped hardening line shows up here


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="systemd-sysusers not installed")
def test_sysusers_creates_system_user_in_a_scratch_root(tmp_path):
    (tmp_path / "etc").mkdir()
    subprocess.run(["systemd-sysusers", f"--root={tmp_path}", str(SYSUSERS)], check=True,
                   capture_output=True, timeout=30)
    passwd = {line.split(":")[0]: line.split(":") for line in (tmp_path / "etc/passwd").read_text().splitlines()}
    name, _, uid, gid, _, home, shell = passwd["station"]
    assert int(uid) < 1000  # a system user
    assert home == "/var/lib/station"
    assert shell.endswith("nologin")
    groups = {line.split(":")[0]: line.split(":")[2] for line in (tmp_path / "etc/group").read_text().splitlines()}
    assert groups["station"] == gid


# --- sd_notify ----------------------------------------------------------------------------------

@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    """A real datagram socket standing in for systemd's, at a path in tmp_path."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def received(sock: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096))
        except BlockingIOError:
            return out


def test_notify_sends_one_datagram_per_call(notify_socket):
    assert sdnotify.ready("2 EVSEs up\nOCPP offline") is True
    assert sdnotify.status("evse1 charging") is True
    assert sdnotify.watchdog_ping() is True
    assert sdnotify.stopping() is True
    assert received(notify_socket) == [
        b"READY=1\nSTATUS=2 EVSEs up OCPP offline",
        b"STATUS=evse1 charging",
        b"WATCHDOG=1",
        b"STOPPING=1",
    ]


def test_notify_abstract_namespace(monkeypatch):
    name = f"station-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.notify("READY=1", "STATUS=ok") is True
        assert received(sock) == [b"READY=1\nSTATUS=ok"]


def test_notify_outside_systemd_is_a_quiet_no_op(monkeypatch, tmp_path):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.ready() is False
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    assert sdnotify.watchdog_ping() is False
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    assert sdnotify.status("x") is False


def test_notify_rejects_malformed_fields(notify_socket):
    for bad in ("READY", "=1", "STATUS=a\nWATCHDOG=1"):
        with pytest.raises(ValueError):
            sdnotify.notify(bad)
    assert received(notify_socket) == []


def test_watchdog_interval_from_environment(monkeypatch):
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert sdnotify.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")
    assert sdnotify.watchdog_interval() == 5.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdnotify.watchdog_interval() == 5.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))  # meant for another process
    assert sdnotify.watchdog_interval() is None
    monkeypatch.delenv("WATCHDOG_PID")
    for bad in ("0", "-5", "ten"):
        monkeypatch.setenv("WATCHDOG_USEC", bad)
        assert sdnotify.watchdog_interval() is None


async def test_run_watchdog_pings_only_while_healthy(notify_socket, caplog):
    clock = ManualClock()
    health = {"ok": True}
    task = asyncio.create_task(sdnotify.run_watchdog(lambda: health["ok"], 1.0, clock=clock))
    try:
        await clock.advance(0)
        assert received(notify_socket) == [b"WATCHDOG=1"]  # first ping at once
        await clock.advance(2.0)
        assert received(notify_socket) == [b"WATCHDOG=1"] * 2

        health["ok"] = False
        with caplog.at_level(logging.ERROR, logger="station.sdnotify"):
            await clock.advance(5.0)
        assert received(notify_socket) == []
        stopped = [r for r in caplog.records if "stopping watchdog pings" in r.getMessage()]
        assert len(stopped) == 1  # logged once, not every interval

        health["ok"] = True
        await clock.advance(1.0)
        assert received(notify_socket) == [b"WATCHDOG=1"]
    finally:
        task.cancel()


async def test_run_watchdog_treats_a_raising_check_as_unhealthy(notify_socket):
    clock = ManualClock()

    def broken() -> bool:
        raise RuntimeError("evse task table gone")

    task = asyncio.create_task(sdnotify.run_watchdog(broken, 1.0, clock=clock))
    await clock.advance(3.0)
    assert received(notify_socket) == []
    assert not task.done()  # keeps checking; systemd does the restart
    task.cancel()


async def test_run_watchdog_real_time_from_watchdog_usec(notify_socket, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "60000")  # 60 ms -> ping every 30 ms
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    task = asyncio.create_task(sdnotify.run_watchdog(lambda: True))
    await asyncio.sleep(0.2)
    task.cancel()
    assert len(received(notify_socket)) >= 3


async def test_run_watchdog_without_watchdog_returns(monkeypatch):
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    await asyncio.wait_for(sdnotify.run_watchdog(lambda: True), 0.5)


# --- logging ------------------------------------------------------------------------------------

@pytest.fixture
def clean_logging(monkeypatch):
    """setup_logging changes process-wide state: put it back after each test."""
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    root = logging.getLogger()
    saved = (root.handlers[:], root.level,
             {n: logging.getLogger(n).level for n in ("transitions", "websockets")})
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)
    logging.captureWarnings(False)


def journal_file(tmp_path, monkeypatch):
    f = open(tmp_path / "journal", "w+")
    st = os.fstat(f.fileno())
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    return f


def test_terminal_format(clean_logging):
    out = io.StringIO()
    logs.setup_logging("info", out)
    logging.getLogger("station.evse1").info("plugged in")
    logging.getLogger("station.evse1").debug("hidden at info")
    line = out.getvalue()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} INFO    evse1  plugged in\n", line), line


def test_journal_format_with_priorities_and_indented_traceback(clean_logging, tmp_path, monkeypatch):
    f = journal_file(tmp_path, monkeypatch)
    logs.setup_logging("debug", f)
    log = logging.getLogger("station.evse2")
    log.warning("RCD tripped")
    log.debug("cp=B")
    try:
        raise RuntimeError("board link lost")
    except RuntimeError:
        log.exception("session aborted")
    f.flush()
    lines = (tmp_path / "journal").read_text().splitlines()
    assert lines[0] == "<4>evse2: RCD tripped"
    assert lines[1] == "<7>evse2: cp=B"
    assert lines[2] == "<3>evse2: session aborted"
    assert lines[3] == "<3>    Traceback (most recent call last):"
    assert all(line.startswith("<3>    ") for line in lines[3:])
    assert lines[-1] == "<3>    RuntimeError: board link lost"
    f.close()


def test_journal_stream_of_another_file_means_terminal_format(clean_logging, tmp_path, monkeypatch):
    other = journal_file(tmp_path, monkeypatch)  # JOURNAL_STREAM names this file...
    with open(tmp_path / "redirected", "w+") as f:  # ...but we log to a different one
        logs.setup_logging("info", f)
        logging.getLogger("station").info("hello")
        f.flush()
        assert re.match(r"\d{4}-.* INFO    station  hello$", (tmp_path / "redirected").read_text())
    other.close()


def test_setup_logging_twice_keeps_one_handler(clean_logging):
    first, second = io.StringIO(), io.StringIO()
    logs.setup_logging("info", first)
    logs.setup_logging("warning", second)
    logging.getLogger("station").warning("once")
    logging.getLogger("station").info("filtered")
    assert first.getvalue() == ""
    assert second.getvalue().count("once") == 1
    assert "filtered" not in second.getvalue()
    ours = [h for h in logging.getLogger().handlers if isinstance(h.formatter, logs.TerminalFormatter)]
    assert len(ours) == 1


def test_noisy_libraries_are_quieted(clean_logging):
    out = io.StringIO()
    logs.setup_logging("info", out)
    logging.getLogger("transitions.core").info("Entered state B")
    logging.getLogger("websockets.client").debug("> TEXT frame")
    assert out.getvalue() == ""
    logs.setup_logging("debug", out)
    logging.getLogger("transitions.core").debug("Entered state C")
    logging.getLogger("websockets.client").debug("> TEXT frame")
    assert "Entered state C" in out.getvalue()
    assert "TEXT frame" not in out.getvalue()  # websockets stays at INFO even in debug
    logs.setup_logging("error", out)
    assert logging.getLogger("websockets").level == logging.ERROR  # never louder than asked


def test_bad_level_is_rejected_and_changes_nothing(clean_logging):
    before = logging.getLogger().handlers[:]
    with pytest.raises(ValueError, match="debug, info, warning, error"):
        logs.setup_logging("verbose")
    assert logging.getLogger().handlers == before


# --- scripts/install-service (only ever --dry-run here: tests may run as root) --------------------

def install_service(*args: str) -> subprocess.CompletedProcess:
    assert "--dry-run" in args or "--help" in args
    return subprocess.run(["bash", str(INSTALL), *args], capture_output=True, text=True, timeout=30)


def test_install_service_is_valid_bash():
    subprocess.run(["bash", "-n", str(INSTALL)], check=True, timeout=10)
    assert os.access(INSTALL, os.X_OK)


def system_state() -> dict[str, bool]:
    paths = ["/opt/station", "/etc/station/station.toml", "/etc/systemd/system/station.service",
             "/etc/sysusers.d/station.conf"]
    return {p: os.path.exists(p) for p in paths}


def test_install_service_dry_run_prints_actions_and_changes_nothing(tmp_path):
    profile = tmp_path / "site.toml"
    profile.write_text("[station]\n")
    prefix = tmp_path / "opt"
    before = system_state()
    proc = install_service("--dry-run", "--slac", "--start", "--prefix", str(prefix), str(profile))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert system_state() == before
    assert not prefix.exists()
    assert not re.search(r"(?m)^run:", out)  # nothing executed
    assert f"would run: python3 -m venv {prefix}/venv" in out
    assert re.search(rf"(?m)^would run: {prefix}/venv/bin/python -m pip install .*--upgrade ", out)
    assert "would run: systemd-sysusers /etc/sysusers.d/station.conf" in out
    assert re.search(r"(?m)^would run: install .* /etc/systemd/system/station\.service$", out)
    assert re.search(r"(?m)^would run: install .* /etc/systemd/system/station\.service\.d/slac\.conf$", out)
    assert f"would run: {prefix}/venv/bin/station check-config /etc/station/station.toml" in out
    assert "would run: systemctl enable station.service" in out
    assert "would run: systemctl restart station.service" in out
    if not before["/etc/station/station.toml"]:
        assert f"would run: install -m 0640 -o root -g station {profile} /etc/station/station.toml" in out


def test_install_service_without_start_starts_nothing(tmp_path):
    profile = tmp_path / "site.toml"
    profile.write_text("[station]\n")
    proc = install_service("--dry-run", str(profile))
    assert proc.returncode == 0, proc.stderr
    actions = [line for line in proc.stdout.splitlines() if line.startswith("would run:")]
    assert actions  # it does plan the install...
    assert not [a for a in actions if "systemctl enable" in a or "systemctl restart" in a]
    assert not [a for a in actions if "slac.conf" in a]  # ...but no SLAC drop-in unless asked
    assert "systemctl enable --now station" in proc.stdout  # told as a next step instead


@pytest.mark.skipif(os.path.exists("/etc/station/station.toml"), reason="this machine has a station config")
def test_install_service_needs_a_profile_on_first_install():
    proc = install_service("--dry-run")
    assert proc.returncode == 2
    assert "give a PROFILE" in proc.stderr
    assert "would run" not in proc.stdout


@pytest.mark.parametrize("args, message", [
    (("--dry-run", "/nonexistent/site.toml"), "not found"),
    (("--dry-run", "--bogus"), "unknown option --bogus"),
    (("--dry-run", "--prefix", "relative/dir", "x.toml"), "absolute path"),
])
def test_install_service_bad_arguments(args, message):
    proc = install_service(*args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "would run" not in proc.stdout
