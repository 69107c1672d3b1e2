"""The demo's ISO 15118 DC phase: profiles/sim-dc.toml with its EVSE's PLC interface on one end of a veth
pair and the simulated EV (its SLAC and the iso15118 package's EVCC) in a network namespace on the other,
so SLAC, SDP and the V2G session run over a real network link. Needs root (namespaces, raw sockets);
elsewhere the demo says so and skips this phase."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hal.sim.ev import profile as ev_profile
from station import simnet
from station.config_model import StationConfig
from station.demo import wait_until
from station.sim_ev_process import EvProcess
from station.station import Station

log = logging.getLogger("demo")


def _show_v2g(station: Station) -> None:
    """What the SECC answered, per request type, and how fast (its codec wrapper times each one)."""
    service = next((s for s in station.services if type(s).__name__ == "Iso15118Service"), None)
    stats = getattr(getattr(service, "codec", None), "stats", {})
    parts = []
    for request, times in sorted(stats.items(), key=lambda kv: -len(kv[1])):
        ordered = sorted(times)
        parts.append(f"{request} x{len(ordered)} ({ordered[len(ordered) // 2] * 1000:.1f} ms)")
    if parts:
        log.info("demo: V2G requests the SECC answered (median response time): %s", ", ".join(parts))


def _with_hlc(config: StationConfig, wire: simnet.Wire, workdir: Path) -> StationConfig:
    data = config.dict(by_alias=True, exclude_none=True)
    data["station"]["state_dir"] = str(workdir)
    data.pop("ocpp", None)
    evse = data["evse"][0]
    evse["iso15118"] = {
        "plc_modem": {"driver": "sim", "interface": wire.host_if},
        "protocols": ["ISO_15118_20_DC", "ISO_15118_2", "DIN_SPEC_70121"],
        "power_supply": {"driver": "sim"},
        "isolation_monitor": {"driver": "sim"},
    }
    return StationConfig.parse_obj(data)


async def run_hlc_demo(config: StationConfig, workdir: Path, protocol: str = "iso20-dc") -> int:
    """0: the DC session ran (or could not run here, said why); 1: it failed."""
    reason = simnet.skip_reason()
    if reason is not None:
        log.info("demo: ISO 15118 DC session skipped: %s. Without HLC a DC EVSE cannot charge (it stays at "
                 "5 %% PWM) and an AC EVSE falls back to basic PWM charging; run the demo as root to see it.", reason)
        return 0
    with simnet.ev_namespace() as wire:
        station = Station(_with_hlc(config, wire, workdir), control_socket=workdir / "hlc.sock")
        ev = await EvProcess(wire, "--protocol", protocol, "--patience", "3", "--loop-period", "0.2",
                             "--loops", "15").start()
        try:
            log.info("demo: ISO 15118 DC phase: station %s, PLC interface %s, the EV in network namespace %s",
                     config.station.id, wire.host_if, wire.netns)
            await station.start()
            return await _dc_session(station, ev)
        except (TimeoutError, AssertionError) as exc:
            log.error("demo: ISO 15118 DC session failed: %s", exc)
            return 1
        finally:
            await ev.close()
            await station.stop()


async def _dc_session(station: Station, ev: EvProcess) -> int:
    evse = station.evses[1]
    port: Any = station.shared["sim.world"].port(1)
    await ev.wait_for("ready", 60)
    log.info("demo: plugging a CCS EV (dc-ccs) into EVSE 1")
    port.plug(ev_profile("dc-ccs"))
    await wait_until(lambda: evse.state == "B2", 5, "5 % PWM")
    ev.go()
    matched = await ev.wait_for("matched", 15)
    log.info("demo: SLAC matched in %.2f s; the EV starts SDP and its V2G session", matched.get("duration_s", 0.0))
    port.ev_action("hlc-start")  # the EV's HLC layer closes S2 (state C) for the session
    done = await ev.wait_for("done", 90)
    energy_wh = evse.session.energy_wh if evse.session is not None else 0.0
    await wait_until(lambda: not evse.board.inputs.contactor_closed, 5, "contactors open")
    port.ev_action("hlc-stop")  # the EV opens S2 when its session is over
    await wait_until(lambda: evse.state == "B2", 5, "state B after the session")
    _show_v2g(station)
    port.unplug()
    await wait_until(lambda: evse.connector_status.value == "Available", 5, "Available")
    ok = bool(done.get("ok")) and energy_wh > 0
    log.info("demo: ISO 15118 DC session %s: %.2f Wh delivered", "OK" if ok else "FAILED", energy_wh)
    return 0 if ok else 1
