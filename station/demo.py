"""`station demo`: a whole simulated charging session, driven through the control endpoint the way a
field engineer or a test would, with every state change printed as it happens."""
from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from station import control_client
from station.config_model import StationConfig
from station.session import (
    EnergyTransferStarted, EVDisconnected, EvseEvent, PowerPathClosed,
)
from station.station import Station

log = logging.getLogger("demo")
AC_PROFILES = ["ac-3ph-16a", "ac-1ph-32a"]


def default_profile(name: str = "sim-ac-2evse.toml") -> Path:
    here = Path(__file__).resolve().parent.parent / "profiles" / name
    return here if here.exists() else Path("profiles") / name


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


def _load_dev_csms() -> Any | None:
    """scripts/dev_csms.py from the checkout (it is a script, not part of the installed package)."""
    path = Path(__file__).resolve().parent.parent / "scripts" / "dev_csms.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("dev_csms", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["dev_csms"] = module
    spec.loader.exec_module(module)
    return module


async def run_demo(config: StationConfig, charge_seconds: float = 4.0, dc_config: StationConfig | None = None) -> int:
    """The AC phase (station + CSMS), then with `dc_config` the ISO 15118 DC phase (station/demo_hlc.py)."""
    result = await _run_ac_demo(config, charge_seconds)
    if result == 0 and dc_config is not None:
        from station.demo_hlc import run_hlc_demo

        result = await run_hlc_demo(dc_config, Path(tempfile.mkdtemp(prefix="station-demo-dc-")))
    log.info("demo: %s", "all phases complete" if result == 0 else "FAILED")
    return result


async def _run_ac_demo(config: StationConfig, charge_seconds: float) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="station-demo-"))
    station_info = config.station.copy(update={"state_dir": workdir})
    config = config.copy(update={"station": station_info})
    csms = None
    if config.ocpp is not None:
        dev_csms = _load_dev_csms()
        if dev_csms is None:
            log.warning("demo: scripts/dev_csms.py not found: running without a CSMS")
        else:
            # The profile's [ocpp] table, pointed at a dev CSMS on a free loopback port.
            password = config.ocpp.basic_auth_password or dev_csms.DEV_PASSWORD
            csms = await dev_csms.DevCsms(port=0, default_password=password, heartbeat_interval=60).start()
            config = config.copy(update={"ocpp": config.ocpp.copy(update={"csms_url": csms.url})})
            log.info("demo: dev CSMS listening on %s", csms.url)
    station = Station(config, control_socket=workdir / "control.sock")
    seen: list[EvseEvent] = []
    station.listeners.append(seen.append)
    await station.start()
    sock = station.control_socket
    try:
        if csms is not None:
            await csms.station(config.station.id, timeout=15)
            cp = csms.stations[config.station.id]
            await cp.wait_for("BootNotification", timeout=15)
        return await _session(station, config, sock, seen, charge_seconds, csms)
    finally:
        await station.stop()
        if csms is not None:
            await csms.stop()


async def _session(station: Station, config: StationConfig, sock: Path, seen: list[EvseEvent],
                   charge_seconds: float, csms: Any | None) -> int:

    def charging(evse_id: int, value: str = "Charging") -> Callable[[], bool]:
        return lambda: station.evses[evse_id].charging_state.value == value

    ac = [e for e in sorted(station.evses) if not station.evses[e].hlc]
    skipped = [e for e in sorted(station.evses) if station.evses[e].hlc]
    try:
        log.info("demo: station %s on the simulator, control endpoint %s", config.station.id, sock)
        for evse_id in skipped:
            log.info("demo: EVSE %d offers ISO 15118 only (5 %% PWM); its session comes with the SECC", evse_id)
        for n, evse_id in enumerate(ac):
            profile = AC_PROFILES[n % len(AC_PROFILES)]
            log.info("demo: plugging an EV (%s) into EVSE %d", profile, evse_id)
            await control_client.call(sock, "sim.plug", evse=evse_id, profile=profile)
            await wait_until(charging(evse_id), 10, f"EVSE {evse_id} to charge")
        await _show(sock, charge_seconds)
        if ac:
            first = ac[0]
            log.info("demo: EV on EVSE %d pauses (opens S2), then resumes", first)
            await control_client.call(sock, "sim.ev", evse=first, action="pause")
            await wait_until(charging(first, "SuspendedEV"), 10, f"EVSE {first} to suspend")
            await control_client.call(sock, "sim.ev", evse=first, action="resume")
            await wait_until(charging(first), 10, f"EVSE {first} to charge again")
            await _show(sock, min(2.0, charge_seconds))
        for evse_id in ac:
            log.info("demo: EV on EVSE %d ends charging (opens S2), then the driver unplugs", evse_id)
            await control_client.call(sock, "sim.ev", evse=evse_id, action="pause")
            await wait_until(lambda e=evse_id: station.evses[e].state in ("B1", "B2"), 10, f"EVSE {evse_id} in B")
            await control_client.call(sock, "sim.unplug", evse=evse_id)
            await wait_until(lambda e=evse_id: station.evses[e].connector_status.value == "Available", 10,
                            f"EVSE {evse_id} to be Available")
        if csms is not None:  # the last StatusNotifications travel while we wrap up
            cp = csms.stations[config.station.id]
            await wait_until(lambda: _csms_sees_all_available(cp, station) and _csms_ended(cp) >= len(ac), 10,
                            "the CSMS to see every connector Available and every transaction Ended")
    except (TimeoutError, asyncio.TimeoutError, control_client.ControlError) as exc:
        log.error("demo failed: %s", exc)
        return 1
    verdict = _verdict(seen, ac)
    if csms is not None:
        received = [action for action, _ in csms.stations[config.station.id].received]
        counts = {a: received.count(a) for a in dict.fromkeys(received)}
        log.info("demo: the CSMS received %s", ", ".join(f"{n} {a}" for a, n in counts.items()))
        received_calls = csms.stations[config.station.id].received
        occupied = [p for a, p in received_calls if a == "StatusNotification" and p["connector_status"] == "Occupied"]
        started = sum(1 for a, p in received_calls if a == "TransactionEvent" and p.get("event_type") == "Started")
        if "BootNotification" not in counts or len(occupied) < len(ac) or started < len(ac):
            log.error("demo: the CSMS did not see the sessions (statuses and started/ended transactions)")
            return 1
    return verdict


async def _show(sock: Path, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))
        status = await control_client.call(sock, "status")
        for evse in status["evses"]:
            session = evse.get("session") or {}
            log.info("demo: EVSE %s %-10s %-13s %5.1f A limit, %7.0f W, session %6.1f Wh", evse["id"],
                     evse["state"], evse["charging_state"], evse["current_limit_a"], evse.get("power_w") or 0.0,
                     session.get("energy_wh", 0.0))


def _csms_ended(cp: Any) -> int:
    return sum(1 for p in cp.of("TransactionEvent") if p.get("event_type") == "Ended")


def _csms_sees_all_available(cp: Any, station: Station) -> bool:
    # The ocpp package hands handlers snake_case payloads.
    latest = {(p["evse_id"], p["connector_id"]): p["connector_status"] for p in cp.of("StatusNotification")}
    wanted = {(evse.id, c.id) for evse in station.evses.values() for c in evse.config.connectors}
    return all(latest.get(key) == "Available" for key in wanted)


def _verdict(seen: list[EvseEvent], evse_ids: list[int]) -> int:
    ok = True
    for evse_id in evse_ids:
        kinds = {type(e) for e in seen if e.evse_id == evse_id}
        ended = [e for e in seen if isinstance(e, EVDisconnected) and e.evse_id == evse_id]
        energy = ended[-1].energy_wh if ended else 0.0
        good = {PowerPathClosed, EnergyTransferStarted, EVDisconnected} <= kinds and energy > 0
        ok &= good
        log.info("demo: EVSE %d %s: %.1f Wh delivered", evse_id, "OK" if good else "FAILED", energy)
    log.info("demo: %s", "session complete" if ok else "FAILED")
    return 0 if ok else 1
