"""A simulated EV's side of SLAC (ISO 15118-3 Annex A), for tests and the simulator.

It plays the EV's host and also the part of the EVSE's modem that a veth pair lacks: for every
M-sound it sends the CM_ATTEN_PROFILE.IND the EVSE's modem would report to its host. Runs on any
MME link (hal.plc_homeplug.RawLink on one end of a veth pair). `skip` drops chosen messages to
exercise the EVSE's timers and retries.
"""
from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from dataclasses import dataclass, field

from hal.plc_homeplug import (
    BROADCAST, CM_ATTEN_CHAR, CM_ATTEN_PROFILE, CM_MNBC_SOUND, CM_SLAC_MATCH, CM_SLAC_PARM, CM_START_ATTEN_CHAR, CNF,
    IND, NUM_GROUPS, REQ, RSP, Mme, RawLink, atten_char_rsp, atten_profile_ind, mnbc_sound_ind, parse_atten_char_ind,
    parse_slac_match_cnf, parse_slac_parm_cnf, slac_match_req, slac_parm_req, start_atten_char_ind,
)

log = logging.getLogger("hal.sim.slac_ev")


class SlacFailed(Exception):
    pass


@dataclass
class EvSlacOptions:
    attenuation_db: int = 20
    sound_interval_s: float = 0.02  # 20-50 ms between M-sounds
    response_timeout_s: float = 0.2  # TT_match_response
    atten_results_s: float = 1.2  # TT_EV_atten_results
    retries: int = 2  # C_EV_match_retry
    #: Message names not to send the first time (e.g. {"ATTEN_CHAR.RSP"}) to test EVSE retries.
    skip_once: set[str] = field(default_factory=set)
    #: Message names never to send (e.g. {"SLAC_MATCH.REQ"}): the EVSE must time out.
    skip: set[str] = field(default_factory=set)


@dataclass
class EvSlacResult:
    evse_mac: bytes
    run_id: bytes
    nid: bytes
    nmk: bytes
    duration_s: float


class EvSlac:
    def __init__(self, link: RawLink, options: EvSlacOptions | None = None) -> None:
        self.link = link
        self.o = options or EvSlacOptions()
        self._skipped: set[str] = set()

    def _send(self, name: str, dst: bytes, mmtype: int, payload: bytes) -> None:
        if name in self.o.skip:
            return
        if name in self.o.skip_once and name not in self._skipped:
            self._skipped.add(name)
            return
        self.link.send(dst, mmtype, payload)

    async def _expect(self, mmtype: int, timeout: float, src: bytes | None = None) -> Mme | None:
        deadline = time.monotonic() + timeout
        while True:
            mme = await self.link.receive(deadline - time.monotonic())
            if mme is None or (mme.mmtype == mmtype and (src is None or mme.src == src)):
                return mme

    async def run(self) -> EvSlacResult:
        started = time.monotonic()
        o = self.o
        run_id = os.urandom(8)
        ev_mac = self.link.mac
        # Parameter exchange.
        cnf = None
        for _ in range(1 + o.retries):
            self._send("SLAC_PARM.REQ", BROADCAST, CM_SLAC_PARM | REQ, slac_parm_req(run_id))
            cnf = await self._expect(CM_SLAC_PARM | CNF, o.response_timeout_s)
            if cnf is not None and parse_slac_parm_cnf(cnf.payload).run_id == run_id:
                break
            cnf = None
        if cnf is None:
            raise SlacFailed("no CM_SLAC_PARM.CNF")
        evse_mac = cnf.src
        params = parse_slac_parm_cnf(cnf.payload)
        # Attenuation characterisation: START_ATTEN_CHAR x3, then the M-sounds.
        for _ in range(3):
            self._send("START_ATTEN_CHAR.IND", BROADCAST, CM_START_ATTEN_CHAR | IND,
                       start_atten_char_ind(params.num_sounds, params.timeout_100ms, ev_mac, run_id))
        for left in range(params.num_sounds - 1, -1, -1):
            await asyncio.sleep(o.sound_interval_s)
            self._send("MNBC_SOUND.IND", BROADCAST, CM_MNBC_SOUND | IND, mnbc_sound_ind(left, run_id))
            groups = [max(0, min(255, o.attenuation_db + random.randint(-2, 2))) for _ in range(NUM_GROUPS)]
            self._send("ATTEN_PROFILE.IND", evse_mac, CM_ATTEN_PROFILE | IND, atten_profile_ind(ev_mac, groups))
        ind = await self._expect(CM_ATTEN_CHAR | IND, o.atten_results_s + params.timeout_100ms / 10, evse_mac)
        if ind is None:
            raise SlacFailed("no CM_ATTEN_CHAR.IND")
        char = parse_atten_char_ind(ind.payload)
        if char.run_id != run_id:
            raise SlacFailed("CM_ATTEN_CHAR.IND for another run")
        self._send("ATTEN_CHAR.RSP", evse_mac, CM_ATTEN_CHAR | RSP, atten_char_rsp(ev_mac, run_id))
        # A repeated IND means our RSP was lost: answer it again.
        again = await self._expect(CM_ATTEN_CHAR | IND, o.response_timeout_s + 0.05, evse_mac)
        while again is not None:
            self._send("ATTEN_CHAR.RSP", evse_mac, CM_ATTEN_CHAR | RSP, atten_char_rsp(ev_mac, run_id))
            again = await self._expect(CM_ATTEN_CHAR | IND, o.response_timeout_s + 0.05, evse_mac)
        # Matching.
        for _ in range(1 + o.retries):
            self._send("SLAC_MATCH.REQ", evse_mac, CM_SLAC_MATCH | REQ, slac_match_req(ev_mac, evse_mac, run_id))
            match = await self._expect(CM_SLAC_MATCH | CNF, o.response_timeout_s, evse_mac)
            if match is not None:
                m = parse_slac_match_cnf(match.payload)
                if m.run_id == run_id:
                    return EvSlacResult(evse_mac, run_id, m.nid, m.nmk, time.monotonic() - started)
        raise SlacFailed("no CM_SLAC_MATCH.CNF")
