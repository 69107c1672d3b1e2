"""EVSE-side SLAC matching (ISO 15118-3, Annex A.9 sequence), over a PlcModem's MME link.

One `match()` call is one matching process: a fresh NMK is programmed into our modem, then we
wait for the EV's CM_SLAC_PARM.REQ and run parameter exchange -> attenuation characterisation
(the EV's M-sounds, averaged from CM_ATTEN_PROFILE.IND) -> CM_ATTEN_CHAR.IND/RSP -> CM_SLAC_MATCH,
answering the match with our NID and NMK. A failed attempt (timeout, wrong run id) is retried up
to `max_attempts` times (C_conn_max_match) while the EV restarts with a new CM_SLAC_PARM.REQ.
Nothing here loops forever: every wait has a deadline, and the caller cancels on unplug.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from hal.plc import PlcModem
from hal.plc_homeplug import (
    CM_ATTEN_CHAR, CM_ATTEN_PROFILE, CM_MNBC_SOUND, CM_SLAC_MATCH, CM_SLAC_PARM, CM_START_ATTEN_CHAR, CNF, IND,
    REQ, RSP, Mme, MmeError, atten_char_ind, mac_str, new_nmk, nid_from_nmk, parse_atten_char_rsp,
    parse_atten_profile_ind, parse_mnbc_sound_ind, parse_slac_match_req, parse_slac_parm_req,
    parse_start_atten_char_ind, slac_match_cnf, slac_parm_cnf,
)

log = logging.getLogger("station.slac")


@dataclass(frozen=True)
class SlacTimers:
    """ISO 15118-3 Table A.1 values (seconds); every one configurable per EVSE."""

    init_timeout_s: float = 50.0  # TT_EVSE_SLAC_init: 20-50 s for the EV's first CM_SLAC_PARM.REQ
    match_sequence_s: float = 0.4  # TT_match_sequence: between messages of one run
    match_response_s: float = 0.2  # TT_match_response: EV's CM_ATTEN_CHAR.RSP
    mnbc_s: float = 0.6  # TT_EVSE_match_MNBC: collecting M-sounds
    match_session_s: float = 10.0  # TT_EVSE_match_session: whole run, PARM.CNF to MATCH.CNF
    max_attempts: int = 3  # C_conn_max_match
    atten_char_retries: int = 2  # C_EV_match_retry: repeats of CM_ATTEN_CHAR.IND
    num_sounds: int = 10  # C_EV_match_MNBC: M-sounds the EV is asked to send


@dataclass
class MatchResult:
    matched: bool
    reason: str = ""
    ev_mac: bytes = b""
    run_id: bytes = b""
    nid: bytes = b""
    nmk: bytes = b""
    attempts: int = 0
    duration_s: float = 0.0
    attenuation_db: float | None = None


class AttemptFailed(Exception):
    pass


class Restart(Exception):
    """The EV began a new run (a CM_SLAC_PARM.REQ with another run id)."""

    def __init__(self, request: Mme) -> None:
        self.request = request


class SlacMatcher:
    def __init__(self, modem: PlcModem, timers: SlacTimers | None = None, *, name: str = "slac") -> None:
        self.modem = modem
        self.timers = timers or SlacTimers()
        self.log = logging.getLogger(f"station.slac.{name}")
        self.nmk = b""
        self.nid = b""
        self.state = "idle"
        #: A CM_SLAC_PARM.REQ already received (the EV restarted SLAC): the next match() starts with it.
        self.requeue: Mme | None = None

    async def new_key(self) -> None:
        """Program a fresh NMK into our modem: each plug-in gets its own logical network."""
        self.nmk = new_nmk()
        self.nid = nid_from_nmk(self.nmk)
        await self.modem.set_nmk(self.nmk, self.nid)

    async def match(self, init_timeout_s: float | None = None) -> MatchResult:
        started = time.monotonic()
        link = self.modem.link
        result = MatchResult(False)
        self.state = "waiting"
        if not self.nmk:
            await self.new_key()
        init = self.timers.init_timeout_s if init_timeout_s is None else init_timeout_s
        request, self.requeue = self.requeue, None
        if request is None:
            request = await self._wait_for(CM_SLAC_PARM | REQ, time.monotonic() + init)
        if request is None:
            result.reason = f"no CM_SLAC_PARM.REQ from the EV within {init:g} s (TT_EVSE_SLAC_init)"
        while request is not None:
            result.attempts += 1
            self.state = "matching"
            try:
                await self._attempt(request, result)
                result.matched = True
                result.nid, result.nmk = self.nid, self.nmk
                self.state = "matched"
                break
            except Restart as restart:
                request = restart.request
                result.attempts -= 1  # the EV restarted on its own: not a failed attempt of ours
                continue
            except AttemptFailed as exc:
                result.reason = str(exc)
                self.log.info("SLAC attempt %d failed: %s", result.attempts, exc)
            if result.attempts >= self.timers.max_attempts:
                result.reason += f" (gave up after {result.attempts} attempts, C_conn_max_match)"
                break
            request = await self._wait_for(CM_SLAC_PARM | REQ, time.monotonic() + self.timers.match_session_s)
            if request is None:
                result.reason += "; the EV did not retry"
        result.duration_s = time.monotonic() - started
        if not result.matched:
            self.state = "failed"
        link.flush()
        return result

    async def _wait_for(self, mmtype: int, deadline: float) -> Mme | None:
        link = self.modem.link
        while True:
            mme = await link.receive(deadline - time.monotonic())
            if mme is None:
                return None
            if mme.mmtype == mmtype:
                return mme

    async def _attempt(self, request: Mme, result: MatchResult) -> None:
        t = self.timers
        link = self.modem.link
        try:
            run_id = parse_slac_parm_req(request.payload)
        except MmeError as exc:
            raise AttemptFailed(f"bad CM_SLAC_PARM.REQ: {exc}") from None
        ev_mac = request.src
        result.ev_mac, result.run_id = ev_mac, run_id
        session_end = time.monotonic() + t.match_session_s
        timeout_100ms = max(1, round(t.mnbc_s * 10))
        cnf = slac_parm_cnf(ev_mac, run_id, t.num_sounds, timeout_100ms)
        link.send(ev_mac, CM_SLAC_PARM | CNF, cnf)
        self.log.debug("CM_SLAC_PARM.CNF to %s run %s", mac_str(ev_mac), run_id.hex())

        # Parameter exchange done: wait for CM_START_ATTEN_CHAR.IND (the EV repeats PARM.REQ if our CNF got lost).
        deadline = min(session_end, time.monotonic() + t.match_sequence_s)
        while True:
            mme = await link.receive(deadline - time.monotonic())
            if mme is None:
                raise AttemptFailed(f"no CM_START_ATTEN_CHAR.IND within {t.match_sequence_s:g} s (TT_match_sequence)")
            if mme.mmtype == CM_SLAC_PARM | REQ:
                if self._run_of(mme, parse_slac_parm_req) != run_id:
                    raise Restart(mme)
                link.send(ev_mac, CM_SLAC_PARM | CNF, cnf)
                continue
            if mme.mmtype == CM_START_ATTEN_CHAR | IND and mme.src == ev_mac:
                start = self._parse(mme, parse_start_atten_char_ind)
                if start.run_id == run_id:
                    break

        # Attenuation characterisation: M-sounds and our modem's per-sound profiles for TT_EVSE_match_MNBC.
        sounds = 0
        profiles: list[list[int]] = []
        collect_end = time.monotonic() + max(t.mnbc_s, start.timeout_100ms / 10.0)
        while time.monotonic() < collect_end and len(profiles) < start.num_sounds:
            mme = await link.receive(collect_end - time.monotonic())
            if mme is None:
                break
            if mme.mmtype == CM_MNBC_SOUND | IND:
                count_left, sound_run = self._parse(mme, parse_mnbc_sound_ind)
                if sound_run == run_id:
                    sounds += 1
            elif mme.mmtype == CM_ATTEN_PROFILE | IND:
                pev_mac, groups = self._parse(mme, parse_atten_profile_ind)
                if pev_mac == ev_mac and groups:
                    profiles.append(groups)
            elif mme.mmtype == CM_SLAC_PARM | REQ and self._run_of(mme, parse_slac_parm_req) != run_id:
                raise Restart(mme)
        if not profiles:
            raise AttemptFailed(f"no attenuation profiles (M-sounds: {sounds}) within {t.mnbc_s:g} s (TT_EVSE_match_MNBC)")
        n_groups = min(len(p) for p in profiles)
        average = [round(sum(p[g] for p in profiles) / len(profiles)) for g in range(n_groups)]
        result.attenuation_db = sum(average) / len(average)

        # Tell the EV what we heard; it must confirm within TT_match_response (repeats: C_EV_match_retry).
        ind = atten_char_ind(ev_mac, run_id, len(profiles), average)
        for _ in range(1 + t.atten_char_retries):
            link.send(ev_mac, CM_ATTEN_CHAR | IND, ind)
            rsp = await self._expect_from(ev_mac, CM_ATTEN_CHAR | RSP, t.match_response_s, session_end)
            if rsp is not None:
                rsp_run, rsp_result = self._parse(rsp, parse_atten_char_rsp)
                if rsp_run == run_id and rsp_result == 0:
                    break
                raise AttemptFailed(f"EV rejected CM_ATTEN_CHAR (result {rsp_result})")
        else:
            raise AttemptFailed(f"no CM_ATTEN_CHAR.RSP within {t.match_response_s:g} s, "
                                f"{1 + t.atten_char_retries} tries (TT_match_response)")

        # The EV picks the EVSE with the best attenuation and asks us to match.
        while True:
            mme = await link.receive(session_end - time.monotonic())
            if mme is None:
                raise AttemptFailed(f"no CM_SLAC_MATCH.REQ within {t.match_session_s:g} s (TT_EVSE_match_session)")
            if mme.mmtype == CM_SLAC_PARM | REQ and self._run_of(mme, parse_slac_parm_req) != run_id:
                raise Restart(mme)
            if mme.mmtype == CM_SLAC_MATCH | REQ and mme.src == ev_mac:
                req = self._parse(mme, parse_slac_match_req)
                if req.run_id != run_id:
                    continue
                self.answer_match(ev_mac, run_id)
                return

    def answer_match(self, ev_mac: bytes, run_id: bytes) -> None:
        """CM_SLAC_MATCH.CNF with our network's NID and NMK (also for a repeated MATCH.REQ)."""
        self.modem.link.send(ev_mac, CM_SLAC_MATCH | CNF,
                             slac_match_cnf(ev_mac, self.modem.mac, run_id, self.nid, self.nmk))

    async def _expect_from(self, src: bytes, mmtype: int, timeout: float, session_end: float) -> Mme | None:
        deadline = min(session_end, time.monotonic() + timeout)
        while True:
            mme = await self.modem.link.receive(deadline - time.monotonic())
            if mme is None or (mme.mmtype == mmtype and mme.src == src):
                return mme

    @staticmethod
    def _parse(mme: Mme, parser):  # type: ignore[no-untyped-def]
        try:
            return parser(mme.payload)
        except MmeError as exc:
            raise AttemptFailed(str(exc)) from None

    @staticmethod
    def _run_of(mme: Mme, parser) -> bytes | None:  # type: ignore[no-untyped-def]
        try:
            return parser(mme.payload)
        except MmeError:
            return None
