"""End to end on the simulator: plug in -> SLAC -> SDP -> a full session with the iso15118 package's
EVCC -> energy on the simulated meter -> stop -> unplug, for each protocol the station offers.
The EV runs in its own network namespace on one end of a veth pair (station/simnet.py)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from station.session import PowerPathClosed
from station import simnet as netns
from tests.iso15118_rig import HlcRig, station_config

pytestmark = pytest.mark.skipif(netns.skip_reason() is not None, reason=str(netns.skip_reason()))


@pytest.fixture
async def wire() -> AsyncIterator[netns.Wire]:
    with netns.ev_namespace() as w:
        yield w


def make_test_pki(tmp_path: Path) -> Path:
    from station.iso15118 import package

    package.load()  # never import iso15118 directly: it reconfigures the root logger
    import iso15118.shared.settings as settings

    pki = tmp_path / "pki"
    shutil.copytree(Path(settings.SHARED_CWD) / "pki", pki)
    subprocess.run(["bash", "create_certs.sh", "-v", "iso-2"], cwd=pki, check=True, capture_output=True, timeout=60)
    return pki


def iec_path(rig: HlcRig) -> list[str]:
    return [e.new for e in rig.events if e.name == "IecStateChanged"]  # type: ignore[attr-defined]


async def full_session(rig: HlcRig, profile: str) -> dict[str, Any]:
    closed_when: list[tuple[list[Any], bool]] = []
    controller = rig.hlc.controller

    def on_event(event: Any) -> None:
        if isinstance(event, PowerPathClosed):
            closed_when.append((list(controller.contactor_log), controller.hlc_charging))

    rig.evse.listeners.append(on_event)
    ev = await rig.session(profile=profile)
    assert rig.hlc.slac_state == "matched"
    done = await ev.wait_for("done", 90)
    assert done["ok"], await ev.stderr()
    await rig.until(lambda: not rig.evse.board.inputs.contactor_closed, 3, "contactor open after the session")
    energy_wh = rig.evse.session.energy_wh
    assert not rig.port.dc_output[0], "power modules off after the session"
    rig.port.ev_action("hlc-stop")  # the EV opens S2 when its session is over
    await rig.until(lambda: rig.evse.state == "B2", 3, "state B after the session")
    rig.port.unplug()
    await rig.until(lambda: rig.evse.connector_status.value == "Available", 3, "Available after unplug")
    return {"closed_when": closed_when, "energy_wh": energy_wh, "log": list(controller.contactor_log)}


@pytest.mark.parametrize("protocol", ["din", "iso2-dc", "iso20-dc"])
async def test_dc_session(protocol: str, wire: netns.Wire, tmp_path: Path) -> None:
    async with HlcRig(station_config(tmp_path, wire, kind="dc"), wire, tmp_path, (protocol,)) as rig:
        result = await full_session(rig, "dc-ccs")
        assert iec_path(rig) == ["B2", "C2", "B2", "A"]
        # Contactors closed for the first time during the cable check (IEC 61851-23: relays closed for the
        # insulation test), never before the SECC asked, and opened at PowerDelivery(Stop) / session end.
        [(log_at_close, _)] = result["closed_when"][:1]
        assert log_at_close and log_at_close[0][:2] == ("CableCheck", "close")
        assert result["energy_wh"] > 0.1
        assert rig.port.meter_wh >= result["energy_wh"]
        assert result["log"][-2:] == [("PowerDelivery", "open"), ("PowerDelivery", "opened", True)]


async def test_dc_session_with_the_java_codec_fallback(wire: netns.Wire, tmp_path: Path) -> None:
    """exi_codec = "java" (the package's jar) stays a working fallback for the native codec."""
    cfg = station_config(tmp_path, wire, kind="dc", exi_codec="java")
    async with HlcRig(cfg, wire, tmp_path, ("din",)) as rig:
        service = next(s for s in rig.station.services if type(s).__name__ == "Iso15118Service")
        assert type(service.codec.inner).__name__ == "JvmExiCodec"
        result = await full_session(rig, "dc-ccs")
        assert iec_path(rig) == ["B2", "C2", "B2", "A"] and result["energy_wh"] > 0.1


async def test_iso2_dc_session_over_tls(wire: netns.Wire, tmp_path: Path) -> None:
    """The EV asks for TLS in SDP; the SECC serves it with the PKI at tls.pki_path (a test PKI made by the
    package's own create_certs.sh; the EV trusts the same one)."""
    pki = make_test_pki(tmp_path)
    cfg = station_config(tmp_path, wire, kind="dc", tls={"pki_path": str(pki)})
    async with HlcRig(cfg, wire, tmp_path, ("iso2-dc", "--tls", "--pki-path", str(pki))) as rig:
        await rig.session()
        assert rig.ev is not None
        assert (await rig.ev.wait_for("done", 90))["ok"], await rig.ev.stderr()
        assert rig.hlc.handler.tcp_server.is_tls_enabled
        assert rig.evse.session.energy_wh > 0.1


@pytest.mark.parametrize("protocol", ["iso2-ac", "iso20-ac"])
async def test_ac_session(protocol: str, wire: netns.Wire, tmp_path: Path) -> None:
    cfg = station_config(tmp_path, wire, kind="ac", protocols=["ISO_15118_2", "ISO_15118_20_AC"])
    async with HlcRig(cfg, wire, tmp_path, (protocol,)) as rig:
        result = await full_session(rig, "ac-3ph-16a-hlc")
        assert iec_path(rig) == ["B2", "C2", "B2", "A"]
        # AC: the contactor closes only at PowerDelivery(Start) (hlc_charging set), opens at PowerDelivery(Stop).
        [(log_at_close, hlc_charging)] = result["closed_when"][:1]
        assert hlc_charging and log_at_close == [("PowerDelivery", "close")]
        assert result["log"][-2:] == [("PowerDelivery", "open"), ("PowerDelivery", "opened", True)]
        # The test EV runs a fixed number of charge-loop cycles: how long that takes (and so the energy)
        # depends on the codec's speed; that energy flowed through the metered power path is the point.
        assert result["energy_wh"] > 0.1
        await rig.until(lambda: rig.hlc.controller.ended, 8, "the package's session_ended")
        assert rig.hlc.controller.ended[-1][0] == "SessionStop"  # a clean stop by the EV
