"""EVSE-side SLAC (station/slac) against the simulated EV's SLAC (hal/sim/slac_ev.py) over a veth
pair: real AF_PACKET sockets, the standard's timers, retries and failures."""
from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

import pytest

from hal.driver import DriverContext
from hal.plc_homeplug import (
    CM_SLAC_PARM, REQ, Mme, MmeError, RawLink, nid_from_nmk, parse_slac_match_cnf, slac_match_cnf,
    slac_parm_req,
)
from hal.plc_sim import SimPlcModem
from hal.sim.slac_ev import EvSlac, EvSlacOptions, SlacFailed
from station.slac import SlacMatcher, SlacTimers
from station import simnet as netns

pytestmark = pytest.mark.skipif(netns.skip_reason() is not None, reason=str(netns.skip_reason()))


@pytest.fixture
async def wire() -> AsyncIterator[tuple[SimPlcModem, RawLink]]:
    with netns.veth_pair() as w:
        modem = SimPlcModem(SimPlcModem.Settings(interface=w.host_if), DriverContext(evse_id=1))
        await modem.start()
        ev = RawLink(w.ev_if)
        ev.open()
        try:
            yield modem, ev
        finally:
            ev.close()
            await modem.stop()


def fast(**overrides: Any) -> SlacTimers:
    return SlacTimers(**{"init_timeout_s": 2.0, "match_session_s": 3.0, **overrides})


async def test_match_gives_the_ev_our_network_key(wire: tuple[SimPlcModem, RawLink]) -> None:
    modem, ev_link = wire
    matcher = SlacMatcher(modem, fast())
    evse_side = asyncio.create_task(matcher.match())
    ev = await EvSlac(ev_link).run()
    result = await evse_side
    assert result.matched and result.attempts == 1, result
    assert ev.nmk == modem.nmk == result.nmk and len(ev.nmk) == 16
    assert ev.nid == nid_from_nmk(ev.nmk) == modem.nid
    assert ev.evse_mac == modem.mac and result.ev_mac == ev_link.mac
    assert 15 <= (result.attenuation_db or 0) <= 25  # the EV modem's profile averaged
    assert result.duration_s < 2.0


async def test_no_ev_times_out_after_init_timeout(wire: tuple[SimPlcModem, RawLink]) -> None:
    modem, _ = wire
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await SlacMatcher(modem, fast(init_timeout_s=0.5)).match()
    assert not result.matched and "TT_EVSE_SLAC_init" in result.reason
    assert 0.45 <= loop.time() - started < 1.5


async def test_lost_atten_char_rsp_is_retried(wire: tuple[SimPlcModem, RawLink]) -> None:
    modem, ev_link = wire
    evse_side = asyncio.create_task(SlacMatcher(modem, fast()).match())
    await EvSlac(ev_link, EvSlacOptions(skip_once={"ATTEN_CHAR.RSP"})).run()
    result = await evse_side
    assert result.matched and result.attempts == 1


async def test_ev_that_never_confirms_fails_after_retries(wire: tuple[SimPlcModem, RawLink]) -> None:
    modem, ev_link = wire
    evse_side = asyncio.create_task(SlacMatcher(modem, fast(max_attempts=2)).match())
    with pytest.raises(SlacFailed):
        await EvSlac(ev_link, EvSlacOptions(skip={"ATTEN_CHAR.RSP"})).run()
    # The EV tries a second run; it fails the same way, and the EVSE gives up after max_attempts.
    with pytest.raises(SlacFailed):
        await EvSlac(ev_link, EvSlacOptions(skip={"ATTEN_CHAR.RSP"})).run()
    result = await evse_side
    assert not result.matched and result.attempts == 2
    assert "CM_ATTEN_CHAR.RSP" in result.reason and "C_conn_max_match" in result.reason


async def test_ev_restart_mid_run_starts_over(wire: tuple[SimPlcModem, RawLink]) -> None:
    modem, ev_link = wire
    evse_side = asyncio.create_task(SlacMatcher(modem, fast()).match())
    ev_link.send(b"\xff" * 6, CM_SLAC_PARM | REQ, slac_parm_req(b"\x01" * 8))  # a run the EV abandons
    await asyncio.sleep(0.05)
    ev = await EvSlac(ev_link).run()
    result = await evse_side
    assert result.matched and result.run_id == ev.run_id


async def test_garbage_frames_are_ignored(wire: tuple[SimPlcModem, RawLink]) -> None:
    modem, ev_link = wire
    evse_side = asyncio.create_task(SlacMatcher(modem, fast()).match())
    ev_link.send(modem.mac, CM_SLAC_PARM | REQ, b"\x00")  # truncated payload
    ev_link.send(modem.mac, 0x1234, b"junk")
    ev = await EvSlac(ev_link).run()
    assert (await evse_side).matched and ev.nmk == modem.nmk


def test_codec_round_trip_and_errors() -> None:
    cnf = Mme(b"\x02" * 6, b"\x04" * 6, 0x607D, slac_match_cnf(b"\x02" * 6, b"\x04" * 6, b"R" * 8, b"N" * 7, b"K" * 16))
    parsed = Mme.from_frame(cnf.to_frame())
    assert parsed.mmtype == 0x607D and len(cnf.to_frame()) >= 60
    match = parse_slac_match_cnf(parsed.payload)
    assert (match.ev_mac, match.evse_mac, match.run_id, match.nid, match.nmk) == (
        b"\x02" * 6, b"\x04" * 6, b"R" * 8, b"N" * 7, b"K" * 16)
    with pytest.raises(MmeError):
        Mme.from_frame(b"\x00" * 10)
    with pytest.raises(MmeError):
        parse_slac_match_cnf(b"\x00" * 20)
